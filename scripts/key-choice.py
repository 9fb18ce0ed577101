#!/usr/bin/env python3
# Issue 13's key choice: a TEXT UUID primary key (WITHOUT ROWID) vs an INTEGER rowid key with the UUID as a
# unique column (what 0004 chose). The delegations table with 0006's indexes and the status-audit trigger
# into an events table, through Python's sqlite3 (the same libsqlite3).
#   python3 scripts/key-choice.py        WAL pages and time per enqueue/claim/complete, one commit each (NORMAL)
#   python3 scripts/key-choice.py cpu    the SQL's CPU per delegation in one transaction, beside 100,000 finished rows
import sqlite3, os, sys, tempfile, time, uuid
DIR=tempfile.mkdtemp(prefix='key-choice-')
N=int(os.environ.get('N','5000'))
now="strftime('%Y-%m-%dT%H:%M:%fZ','now')"
def schema(key):
    if key=='integer':
        table=f"""CREATE TABLE delegations (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, workspace_id TEXT NOT NULL, task TEXT NOT NULL,
          status TEXT NOT NULL DEFAULT 'pending', result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
          next_run_at TEXT NOT NULL DEFAULT ({now}), lease_owner TEXT, lease_expires_at TEXT, message_id TEXT NOT NULL UNIQUE,
          created_at TEXT NOT NULL DEFAULT ({now}), updated_at TEXT, finished_at TEXT) STRICT;"""
    else:
        table=f"""CREATE TABLE delegations (id TEXT NOT NULL PRIMARY KEY, workspace_id TEXT NOT NULL, task TEXT NOT NULL,
          status TEXT NOT NULL DEFAULT 'pending', result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
          next_run_at TEXT NOT NULL DEFAULT ({now}), lease_owner TEXT, lease_expires_at TEXT, message_id TEXT NOT NULL UNIQUE,
          created_at TEXT NOT NULL DEFAULT ({now}), updated_at TEXT, finished_at TEXT) STRICT, WITHOUT ROWID;"""
    return table+f"""
    CREATE INDEX delegations_pending ON delegations (next_run_at) WHERE status = 'pending';
    CREATE INDEX delegations_leased ON delegations (lease_expires_at, lease_owner) WHERE lease_owner IS NOT NULL;
    CREATE INDEX delegations_by_status ON delegations (status, created_at);
    CREATE INDEX delegations_by_workspace ON delegations (workspace_id, created_at);
    CREATE INDEX delegations_by_created ON delegations (created_at);
    CREATE INDEX delegations_finished ON delegations (finished_at, id, status, created_at, attempts) WHERE status IN ('completed','failed','cancelled');
    CREATE TABLE delegation_events (id INTEGER PRIMARY KEY, delegation_id TEXT NOT NULL REFERENCES delegations (id) ON DELETE CASCADE,
          at TEXT NOT NULL DEFAULT ({now}), kind TEXT NOT NULL, from_status TEXT, to_status TEXT, detail TEXT) STRICT;
    CREATE INDEX delegation_events_by_delegation ON delegation_events (delegation_id, id);
    CREATE INDEX delegation_events_by_time ON delegation_events (at);
    CREATE TRIGGER audit_insert AFTER INSERT ON delegations BEGIN
      INSERT INTO delegation_events (delegation_id, kind, to_status) VALUES (NEW.id, 'status', 'pending'); END;
    CREATE TRIGGER audit_status AFTER UPDATE OF status ON delegations WHEN NEW.status IS NOT OLD.status BEGIN
      INSERT INTO delegation_events (delegation_id, kind, from_status, to_status) VALUES (NEW.id, 'status', OLD.status, NEW.status); END;
    """
claim=f"""UPDATE delegations SET status='in_progress', attempts=attempts+1, lease_owner='w', lease_expires_at=strftime('%Y-%m-%dT%H:%M:%fZ','now','+30 seconds'), updated_at={now}
  WHERE id IN (SELECT id FROM delegations INDEXED BY delegations_pending WHERE status='pending' AND next_run_at <= {now} ORDER BY next_run_at LIMIT 1) RETURNING id"""
complete=f"""UPDATE delegations SET status='completed', result='done', finished_at={now}, lease_owner=NULL, lease_expires_at=NULL, updated_at={now}
  WHERE id=? AND lease_owner='w' AND status='in_progress'"""
def fresh(name, key, history):
    """A new database of `key`'s schema holding `history` finished delegations (so the B-trees have depth)."""
    path=f'{DIR}/{name}-{key}.db'
    for s in ['','-wal','-shm']:
        if os.path.exists(path+s): os.remove(path+s)
    db=sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")
    db.executescript(schema(key))
    db.execute('BEGIN')
    for i in range(history):
        db.execute("INSERT INTO delegations (id, workspace_id, task, message_id) VALUES (?, 'ws', ?, ?)", (str(uuid.uuid4()), f'old task {i}', str(uuid.uuid4())))
    db.execute("UPDATE delegations SET status='in_progress', lease_owner='h', lease_expires_at='x'")
    db.execute(f"UPDATE delegations SET status='completed', result='r', finished_at={now}, lease_owner=NULL, lease_expires_at=NULL")
    db.execute('COMMIT')
    return db, path

def run(key, history):
    db, path=fresh('key', key, history)
    db.execute('PRAGMA wal_autocheckpoint=0'); db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    w=lambda: os.path.getsize(path+'-wal')
    a=w(); t0=time.perf_counter()
    for i in range(N):
        db.execute('BEGIN IMMEDIATE')
        db.execute("INSERT INTO delegations (id, workspace_id, task, message_id) VALUES (?, 'ws', ?, ?)", (str(uuid.uuid4()), f'task {i}', str(uuid.uuid4())))
        db.execute('COMMIT')
    t1=time.perf_counter(); b=w(); ids=[]
    for i in range(N):
        db.execute('BEGIN IMMEDIATE'); ids += [r[0] for r in db.execute(claim).fetchall()]; db.execute('COMMIT')
    t2=time.perf_counter(); c=w()
    for id in ids:
        db.execute('BEGIN IMMEDIATE'); db.execute(complete, (id,)); db.execute('COMMIT')
    t3=time.perf_counter(); d=w()
    assert len(ids)==N
    f=lambda x: x/4120/N
    print(f"{key:8s} history {history:7d}: pages enqueue {f(b-a):5.1f} claim {f(c-b):5.1f} complete {f(d-c):5.1f} | µs enqueue {(t1-t0)/N*1e6:4.0f} claim {(t2-t1)/N*1e6:4.0f} complete {(t3-t2)/N*1e6:4.0f}", flush=True)

def cpu(key, history=100000, reps=3):
    out=[]
    for r in range(reps):
        db, _=fresh('keycpu', key, history)
        pages=db.execute('PRAGMA page_count').fetchone()[0]
        t0=time.perf_counter(); db.execute('BEGIN')
        for i in range(N):
            db.execute("INSERT INTO delegations (id, workspace_id, task, message_id) VALUES (?, 'ws', ?, ?)", (str(uuid.uuid4()), f'task {i}', str(uuid.uuid4())))
        ids=[]
        for i in range(N): ids += [x[0] for x in db.execute(claim).fetchall()]
        for id in ids: db.execute(complete, (id,))
        db.execute('COMMIT'); out.append((time.perf_counter()-t0)/N*1e6)
    print(f"{key:8s} {history} finished rows ({pages} pages = {pages*4/1024:.0f} MB): enqueue+claim+complete in one transaction {min(out):.0f} µs per delegation (best of {reps}: {', '.join(f'{x:.0f}' for x in out)})", flush=True)
if len(sys.argv) > 1 and sys.argv[1] == 'cpu':
    for key in ('integer','text'): cpu(key)
else:
    for history in (0, 200000):
        for rep in range(2):
            for key in ('integer','text'):
                run(key, history)

import shutil
shutil.rmtree(DIR, ignore_errors=True)
