-- 0004: long tasks followed without holding anything, and what peers and the platform do beyond kill -9.
--
-- This file is now the state machine's text: it rebuilds `delegations` (SQLite cannot drop a CHECK
-- constraint in place) and re-creates every trigger on it. 0001 holds the first version; read this one.
-- The migrator runs migrations with foreign keys off and verifies them (PRAGMA foreign_key_check)
-- before it commits, so rebuilding the parent table keeps every event and mirror call.
--
-- What changed:
-- * A peer's task that runs long is *followed*: the row stays `in_progress`, but between two polls it
--   holds no lease (lease_owner and lease_expires_at NULL, remote_task_id set) and waits for
--   `next_run_at`, like a pending row. A worker claims it for one poll (`tasks/get`) and parks it again.
--   A poll that changes nothing writes no event: `polls` and `last_polled_at` count them instead.
-- * `takeovers` counts consecutive lease take-overs with no outcome in between: a row whose holders
--   keep dying while processing it (a poison row) is failed by the worker after --max-takeovers.
-- * `accepted_at` is when the peer (its task id) or the platform's queue accepted the task: the task
--   deadline (--task-deadline) and the queued deadline (--queued-timeout) count from it.
-- * A row that ends (cancelled, failed) while its peer's task was still running asks the peer to
--   cancel it: a `peer_cancels` row, written by a trigger in the same transaction, delivered by a worker.
-- * A mirror call that must wait for an earlier one of the same delegation (update and notify wait for
--   record) is written with next_attempt_at '9999-12-31T23:59:59.999Z' and made due by a trigger
--   when the earlier one is delivered or refused: the outbox's due index holds only calls that can go,
--   so claiming costs the same with 100 or 100,000 calls waiting behind an outage.
--
-- Statuses and the only legal transitions (unchanged):
--   pending     -> in_progress | cancelled
--   in_progress -> pending (retry scheduled, lease released) | queued | completed | failed | cancelled
--   queued      -> completed | failed | cancelled
--   failed      -> pending (an explicit retry)
--   completed, cancelled: final; their result and error never change.

DROP TRIGGER delegation_events_no_delete;
DROP TRIGGER delegation_events_status_matches;

CREATE TABLE delegations_0004 (
    -- The row's key: an INTEGER PRIMARY KEY (SQLite's rowid) so that it never changes, not even in a
    -- VACUUM or a dump and reload — the search index (0005) is keyed on it — and new rows append to
    -- the table's B-tree. The UUID below is the delegation's identity everywhere else.
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE DEFAULT (
                            lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
                            substr(lower(hex(randomblob(2))), 2) || '-' ||
                            substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
                            lower(hex(randomblob(6)))),
    -- The target workspace (the peer that does the work).
    workspace_id        TEXT NOT NULL CHECK (length(workspace_id) BETWEEN 1 AND 256),
    -- The delegating workspace; the worker fills in its own id when a client leaves it NULL.
    source_workspace_id TEXT,
    task                TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                            ('pending', 'in_progress', 'queued', 'completed', 'failed', 'cancelled')),
    result              TEXT,
    -- The last error seen: the reason of a failure, of the retry a pending row waits for, or of a
    -- follow-up poll that could not reach the peer.
    error               TEXT,
    -- Delivery attempts started. Following up a peer's task or the platform's queue never counts.
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: the worker's --retry-attempts decides.
    max_attempts        INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    -- When a pending row may be claimed (now, or the time its retry is scheduled for); for a followed
    -- row between polls, when it is polled next.
    next_run_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    lease_owner         TEXT,
    lease_expires_at    TEXT,
    -- The A2A messageId: the same on every retry and after a crash, so peers can drop duplicates.
    message_id          TEXT NOT NULL UNIQUE DEFAULT (
                            lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
                            substr(lower(hex(randomblob(2))), 2) || '-' ||
                            substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
                            lower(hex(randomblob(6)))),
    -- W3C trace context, fixed at enqueue time and sent on every attempt.
    traceparent         TEXT NOT NULL DEFAULT (
                            '00-' || lower(hex(randomblob(16))) || '-' || lower(hex(randomblob(8))) || '-01')
                            CHECK (length(traceparent) = 55 AND traceparent GLOB '[0-9a-f][0-9a-f]-*'),
    -- The peer's task id while its submitted/working task is followed with tasks/get.
    remote_task_id      TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at         TEXT,
    -- Consecutive take-overs of an expired lease with no outcome in between (0 after any status change).
    takeovers           INTEGER NOT NULL DEFAULT 0 CHECK (takeovers >= 0),
    -- When the peer (a task id to follow) or the platform's queue accepted the task.
    accepted_at         TEXT,
    -- Where the peer's task is followed, and the state it last reported ('submitted', 'working', …).
    peer_url            TEXT,
    remote_state        TEXT,
    -- Polls of the peer's task that changed nothing, the last one's time, and polls in a row that could
    -- not reach the peer (after a few, the worker asks discovery again: the peer may have moved).
    polls               INTEGER NOT NULL DEFAULT 0 CHECK (polls >= 0),
    last_polled_at      TEXT,
    poll_failures       INTEGER NOT NULL DEFAULT 0 CHECK (poll_failures >= 0),

    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    -- In progress: held by a worker, or followed at the peer between two polls.
    CHECK (status <> 'in_progress' OR lease_owner IS NOT NULL OR remote_task_id IS NOT NULL),
    CHECK (status <> 'completed' OR result IS NOT NULL),
    CHECK (status <> 'failed' OR (error IS NOT NULL AND length(error) > 0))
) STRICT;

INSERT INTO delegations_0004 (
    seq, id, workspace_id, source_workspace_id, task, status, result, error, attempts, max_attempts,
    next_run_at, lease_owner, lease_expires_at, message_id, traceparent, remote_task_id,
    created_at, updated_at, finished_at, accepted_at)
SELECT rowid, id, workspace_id, source_workspace_id, task, status, result, error, attempts, max_attempts,
    next_run_at, lease_owner, lease_expires_at, message_id, traceparent, remote_task_id,
    created_at, updated_at, finished_at,
    -- Queued rows were accepted by the platform's queue when they last changed; followed rows, likewise.
    CASE WHEN status = 'queued' OR remote_task_id IS NOT NULL THEN updated_at END
FROM delegations;

DROP TABLE delegations;
ALTER TABLE delegations_0004 RENAME TO delegations;

-- The next claimable rows, and leases that expired (the claim query reads both), oldest due first.
CREATE INDEX delegations_claimable ON delegations (status, next_run_at);
CREATE INDEX delegations_leases ON delegations (status, lease_expires_at);
-- Followed rows between two polls, by the time of the next poll (the claim query's third source).
CREATE INDEX delegations_parked ON delegations (next_run_at) WHERE status = 'in_progress' AND lease_owner IS NULL;
-- A worker's own leases (renewal, release at shutdown).
CREATE INDEX delegations_lease_owners ON delegations (status, lease_owner);
-- Listing by status and by workspace, newest or oldest first.
CREATE INDEX delegations_by_status ON delegations (status, created_at);
CREATE INDEX delegations_by_workspace ON delegations (workspace_id, created_at);
CREATE INDEX delegations_by_created ON delegations (created_at);
-- Eviction: finished rows, oldest first.
CREATE INDEX delegations_finished ON delegations (finished_at, id)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- ---------------------------------------------------------------------------------------------
-- New rows: only pending, with nothing a worker writes.
CREATE TRIGGER delegations_insert_pending_only
BEFORE INSERT ON delegations
WHEN NEW.status IS NOT 'pending' OR NEW.result IS NOT NULL OR NEW.lease_owner IS NOT NULL
     OR NEW.attempts <> 0 OR NEW.finished_at IS NOT NULL OR NEW.remote_task_id IS NOT NULL
     OR NEW.takeovers <> 0 OR NEW.polls <> 0
BEGIN
    SELECT RAISE(ABORT, 'a new delegation must be pending, with no result, lease, attempts or peer task');
END;

-- An insert never replaces a delegation: `INSERT OR REPLACE` would delete the old row without its
-- delete triggers (counts, search index) and cascade its history away — a completed delegation and its
-- events erased by an insert. BEFORE triggers run before conflict resolution, so this refuses it.
CREATE TRIGGER delegations_insert_never_replaces
BEFORE INSERT ON delegations
WHEN EXISTS (SELECT 1 FROM delegations WHERE id = NEW.id OR message_id = NEW.message_id)
BEGIN
    SELECT RAISE(ABORT, 'a delegation with this id or message_id exists: delegations are never replaced');
END;

-- The transition table. The WHEN clause is the whitelist; the CASE only picks the message.
CREATE TRIGGER delegations_status_transition
BEFORE UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status AND (OLD.status, NEW.status) NOT IN (VALUES
    ('pending', 'in_progress'), ('pending', 'cancelled'),
    ('in_progress', 'pending'), ('in_progress', 'queued'), ('in_progress', 'completed'),
    ('in_progress', 'failed'), ('in_progress', 'cancelled'),
    ('queued', 'completed'), ('queued', 'failed'), ('queued', 'cancelled'),
    ('failed', 'pending'))
BEGIN
    SELECT CASE OLD.status || ' -> ' || NEW.status
        WHEN 'pending -> queued'        THEN RAISE(ABORT, 'illegal status transition pending -> queued: a pending delegation may only become in_progress or cancelled')
        WHEN 'pending -> completed'     THEN RAISE(ABORT, 'illegal status transition pending -> completed: a pending delegation may only become in_progress or cancelled')
        WHEN 'pending -> failed'        THEN RAISE(ABORT, 'illegal status transition pending -> failed: a pending delegation may only become in_progress or cancelled')
        WHEN 'queued -> pending'        THEN RAISE(ABORT, 'illegal status transition queued -> pending: a queued delegation is never resent; it may only become completed, failed or cancelled')
        WHEN 'queued -> in_progress'    THEN RAISE(ABORT, 'illegal status transition queued -> in_progress: a queued delegation is never resent; it may only become completed, failed or cancelled')
        WHEN 'completed -> pending'     THEN RAISE(ABORT, 'illegal status transition completed -> pending: completed is final')
        WHEN 'completed -> in_progress' THEN RAISE(ABORT, 'illegal status transition completed -> in_progress: completed is final')
        WHEN 'completed -> queued'      THEN RAISE(ABORT, 'illegal status transition completed -> queued: completed is final')
        WHEN 'completed -> failed'      THEN RAISE(ABORT, 'illegal status transition completed -> failed: completed is final')
        WHEN 'completed -> cancelled'   THEN RAISE(ABORT, 'illegal status transition completed -> cancelled: completed is final')
        WHEN 'failed -> in_progress'    THEN RAISE(ABORT, 'illegal status transition failed -> in_progress: a failed delegation may only be retried (back to pending)')
        WHEN 'failed -> queued'         THEN RAISE(ABORT, 'illegal status transition failed -> queued: a failed delegation may only be retried (back to pending)')
        WHEN 'failed -> completed'      THEN RAISE(ABORT, 'illegal status transition failed -> completed: a failed delegation may only be retried (back to pending)')
        WHEN 'failed -> cancelled'      THEN RAISE(ABORT, 'illegal status transition failed -> cancelled: a failed delegation may only be retried (back to pending)')
        WHEN 'cancelled -> pending'     THEN RAISE(ABORT, 'illegal status transition cancelled -> pending: cancelled is final')
        WHEN 'cancelled -> in_progress' THEN RAISE(ABORT, 'illegal status transition cancelled -> in_progress: cancelled is final')
        WHEN 'cancelled -> queued'      THEN RAISE(ABORT, 'illegal status transition cancelled -> queued: cancelled is final')
        WHEN 'cancelled -> completed'   THEN RAISE(ABORT, 'illegal status transition cancelled -> completed: cancelled is final')
        WHEN 'cancelled -> failed'      THEN RAISE(ABORT, 'illegal status transition cancelled -> failed: cancelled is final')
    END;
END;

CREATE TRIGGER delegations_final_outcome_is_final
BEFORE UPDATE OF result, error ON delegations
WHEN OLD.status IN ('completed', 'cancelled')
     AND (NEW.result IS NOT OLD.result OR NEW.error IS NOT OLD.error)
BEGIN
    SELECT RAISE(ABORT, 'a completed or cancelled delegation is final: its result and error cannot change');
END;

CREATE TRIGGER delegations_identity_is_immutable
BEFORE UPDATE OF id, workspace_id, task, message_id, traceparent, created_at ON delegations
WHEN NEW.id IS NOT OLD.id OR NEW.workspace_id IS NOT OLD.workspace_id OR NEW.task IS NOT OLD.task
     OR NEW.message_id IS NOT OLD.message_id OR NEW.traceparent IS NOT OLD.traceparent
     OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a delegation''s id, workspace_id, task, message_id, traceparent and created_at never change');
END;

-- ---------------------------------------------------------------------------------------------
-- History, written here so that raw SQL changes are audited exactly like the worker's.
CREATE TRIGGER delegations_audit_insert
AFTER INSERT ON delegations
BEGIN
    INSERT INTO delegation_events (delegation_id, kind, from_status, to_status, attempt, detail)
    VALUES (NEW.id, 'status', NULL, 'pending', 0, 'enqueued for ' || NEW.workspace_id);
END;

CREATE TRIGGER delegations_audit_status
AFTER UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO delegation_events (delegation_id, kind, from_status, to_status, attempt, worker, detail)
    VALUES (NEW.id, 'status', OLD.status, NEW.status, NEW.attempts,
            coalesce(NEW.lease_owner, OLD.lease_owner),
            CASE NEW.status
                WHEN 'in_progress' THEN 'lease until ' || NEW.lease_expires_at
                WHEN 'pending'     THEN 'next run at ' || NEW.next_run_at
                                        || coalesce(' after: ' || NEW.error, '')
                WHEN 'completed'   THEN 'result of ' || length(NEW.result) || ' characters'
                WHEN 'failed'      THEN NEW.error
                WHEN 'cancelled'   THEN coalesce(NEW.error, 'cancelled')
                WHEN 'queued'      THEN 'accepted into the platform''s queue'
            END);
END;

-- Bookkeeping every client gets for free: only in_progress rows hold a lease, finished rows have a
-- finished_at and live ones none, a status change ends a run of take-overs, a queued row knows when it
-- was accepted, a failed row sent again forgets the peer task it followed. The worker's own statements
-- set all of it themselves (one write of the row per transition); this second UPDATE runs only for a
-- statement that left something to fix — a hand-typed `UPDATE … SET status = …`.
CREATE TRIGGER delegations_status_bookkeeping
AFTER UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status AND (
       (NEW.status <> 'in_progress' AND (NEW.lease_owner IS NOT NULL OR NEW.lease_expires_at IS NOT NULL))
    OR (NEW.status IN ('completed', 'failed', 'cancelled')) <> (NEW.finished_at IS NOT NULL)
    OR NEW.takeovers <> 0
    OR (NEW.status = 'queued' AND NEW.accepted_at IS NULL)
    OR (OLD.status = 'failed' AND NEW.status = 'pending'
        AND (NEW.remote_task_id IS NOT NULL OR NEW.accepted_at IS NOT NULL OR NEW.polls <> 0)))
BEGIN
    UPDATE delegations
    SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        finished_at = CASE WHEN NEW.status IN ('completed', 'failed', 'cancelled')
                           THEN coalesce(NEW.finished_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) END,
        lease_owner = CASE WHEN NEW.status = 'in_progress' THEN NEW.lease_owner END,
        lease_expires_at = CASE WHEN NEW.status = 'in_progress' THEN NEW.lease_expires_at END,
        takeovers = 0,
        accepted_at = CASE WHEN NEW.status = 'queued' THEN coalesce(NEW.accepted_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                           WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN NULL
                           ELSE NEW.accepted_at END,
        remote_task_id = CASE WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN NULL ELSE NEW.remote_task_id END,
        peer_url = CASE WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN NULL ELSE NEW.peer_url END,
        remote_state = CASE WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN NULL ELSE NEW.remote_state END,
        polls = CASE WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN 0 ELSE NEW.polls END,
        poll_failures = CASE WHEN OLD.status = 'failed' AND NEW.status = 'pending' THEN 0 ELSE NEW.poll_failures END
    WHERE id = NEW.id;
END;

-- A lease that passes from one worker to another (the first one's expired). Parking a followed row
-- (owner → none) and claiming it for a poll (none → owner) are not take-overs.
CREATE TRIGGER delegations_audit_lease_takeover
AFTER UPDATE OF lease_owner ON delegations
WHEN OLD.status = 'in_progress' AND NEW.status = 'in_progress'
     AND OLD.lease_owner IS NOT NULL AND NEW.lease_owner IS NOT NULL
     AND NEW.lease_owner IS NOT OLD.lease_owner
BEGIN
    INSERT INTO delegation_events (delegation_id, kind, from_status, to_status, attempt, worker, detail)
    VALUES (NEW.id, 'lease', 'in_progress', 'in_progress', NEW.attempts, NEW.lease_owner,
            'took over from ' || OLD.lease_owner || ' whose lease expired at ' || coalesce(OLD.lease_expires_at, '?'));
END;

CREATE TRIGGER delegation_events_no_delete
BEFORE DELETE ON delegation_events
WHEN EXISTS (SELECT 1 FROM delegations WHERE id = OLD.delegation_id)
BEGIN
    SELECT RAISE(ABORT, 'delegation_events is append-only: events go only when their delegation is evicted');
END;

-- A 'status' event must agree with its delegation's current status (no forged history).
CREATE TRIGGER delegation_events_status_matches
BEFORE INSERT ON delegation_events
WHEN NEW.kind = 'status'
     AND NEW.to_status IS NOT (SELECT status FROM delegations WHERE id = NEW.delegation_id)
BEGIN
    SELECT RAISE(ABORT, 'a status event must name the delegation''s current status');
END;

-- ---------------------------------------------------------------------------------------------
-- The platform mirror (see 0002), with calls that wait for an earlier one kept out of the due index.

CREATE TRIGGER platform_outbox_record
AFTER UPDATE OF status ON delegations
WHEN OLD.status = 'pending' AND NEW.status = 'in_progress'
     AND NOT EXISTS (SELECT 1 FROM platform_outbox WHERE delegation_id = NEW.id AND kind = 'record')
BEGIN
    INSERT INTO platform_outbox (delegation_id, kind, body)
    VALUES (NEW.id, 'record', json_object('target_id', NEW.workspace_id, 'task', NEW.task, 'delegation_id', NEW.id));
END;

-- Only delegations the platform was told about get an end state. The update waits for the record
-- when that is not delivered yet; the notify always waits for the update.
CREATE TRIGGER platform_outbox_outcome
AFTER UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('completed', 'failed', 'cancelled')
     AND EXISTS (SELECT 1 FROM platform_outbox WHERE delegation_id = NEW.id AND kind = 'record')
BEGIN
    INSERT INTO platform_outbox (delegation_id, kind, body, next_attempt_at)
    VALUES (NEW.id, 'update', CASE NEW.status
        WHEN 'completed' THEN json_object('status', 'completed', 'response_preview', substr(NEW.result, 1, 500))
        WHEN 'failed' THEN json_object('status', 'failed', 'error', NEW.error)
        ELSE json_object('status', 'failed', 'error', 'cancelled: ' || coalesce(NEW.error, 'by operator'))
    END,
    CASE WHEN EXISTS (SELECT 1 FROM platform_outbox WHERE delegation_id = NEW.id
                      AND delivered_at IS NULL AND dead_at IS NULL)
         THEN '9999-12-31T23:59:59.999Z' ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END);
    INSERT INTO platform_outbox (delegation_id, kind, body, next_attempt_at)
    VALUES (NEW.id, 'notify', json_object('message', CASE NEW.status
        WHEN 'completed' THEN 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' completed: '
                              || substr(NEW.result, 1, 200)
        WHEN 'failed' THEN 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' failed: '
                           || substr(NEW.error, 1, 200)
        ELSE 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' was cancelled: '
             || substr(coalesce(NEW.error, 'by operator'), 1, 200)
    END), '9999-12-31T23:59:59.999Z');
END;

-- A call delivered or refused for good lets the next one of its delegation go.
CREATE TRIGGER platform_outbox_next
AFTER UPDATE OF delivered_at, dead_at ON platform_outbox
WHEN OLD.delivered_at IS NULL AND OLD.dead_at IS NULL
     AND (NEW.delivered_at IS NOT NULL OR NEW.dead_at IS NOT NULL)
BEGIN
    UPDATE platform_outbox SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE id = (SELECT min(id) FROM platform_outbox
                WHERE delegation_id = NEW.delegation_id AND id > NEW.id
                  AND delivered_at IS NULL AND dead_at IS NULL)
      AND next_attempt_at = '9999-12-31T23:59:59.999Z';
END;

-- Calls written before this migration that wait behind an earlier one leave the due index now.
UPDATE platform_outbox SET next_attempt_at = '9999-12-31T23:59:59.999Z'
WHERE delivered_at IS NULL AND dead_at IS NULL
  AND EXISTS (SELECT 1 FROM platform_outbox p
              WHERE p.delegation_id = platform_outbox.delegation_id AND p.id < platform_outbox.id
                AND p.delivered_at IS NULL AND p.dead_at IS NULL);

-- ---------------------------------------------------------------------------------------------
-- Asking a peer to cancel the task it still runs for a delegation that ended without it
-- (an operator's cancel, the task deadline, a poison row). Best effort but durable: a worker posts
-- tasks/cancel (CancelTask) with backoff and records the peer's answer as a 'peer.cancel' event.

CREATE TABLE peer_cancels (
    delegation_id    TEXT NOT NULL PRIMARY KEY REFERENCES delegations (id) ON DELETE CASCADE,
    remote_task_id   TEXT NOT NULL,
    peer_url         TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    next_attempt_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner      TEXT,
    lease_expires_at TEXT,
    -- When the peer answered (whatever it said), or when the worker gave up asking.
    done_at          TEXT,
    answer           TEXT
) STRICT;

CREATE INDEX peer_cancels_due ON peer_cancels (next_attempt_at) WHERE done_at IS NULL;

CREATE TRIGGER peer_cancels_on_end
AFTER UPDATE OF status ON delegations
WHEN NEW.status IN ('cancelled', 'failed') AND OLD.status = 'in_progress'
     AND NEW.remote_task_id IS NOT NULL
     AND coalesce(NEW.remote_state, '') NOT IN ('completed', 'failed', 'canceled', 'rejected')
BEGIN
    -- A delegation retried after an earlier cancel ran a new task: its request starts afresh.
    INSERT INTO peer_cancels (delegation_id, remote_task_id, peer_url)
    VALUES (NEW.id, NEW.remote_task_id, NEW.peer_url)
    ON CONFLICT (delegation_id) DO UPDATE SET
        remote_task_id = excluded.remote_task_id, peer_url = excluded.peer_url,
        created_at = excluded.created_at, next_attempt_at = excluded.next_attempt_at, attempts = 0,
        lease_owner = NULL, lease_expires_at = NULL, done_at = NULL, answer = NULL
    WHERE peer_cancels.remote_task_id IS NOT excluded.remote_task_id OR peer_cancels.done_at IS NOT NULL;
END;
