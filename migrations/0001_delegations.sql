-- 0001: delegations and their append-only history.
--
-- This file is the state machine. Every client, including a hand-typed `sqlite3` session, goes
-- through the CHECK constraints and triggers below, so no client can put a delegation into a
-- status its history does not explain.
--
-- Timestamps are TEXT in UTC, ISO 8601 with milliseconds: '2026-11-24T02:15:07.123Z'. They sort
-- and compare as plain strings, so forensic queries are written as
--   SELECT * FROM delegation_events WHERE at >= '2026-11-24T02:00' AND at < '2026-11-24T03:00';
-- and durations as (julianday(b) - julianday(a)) * 86400 seconds.
--
-- Statuses and the only legal transitions:
--   pending     -> in_progress | cancelled
--   in_progress -> pending (retry scheduled, lease released) | queued | completed | failed | cancelled
--   queued      -> completed | failed | cancelled
--   failed      -> pending (an explicit retry)
--   completed, cancelled: final; their result and error never change.
-- A worker whose lease expired is replaced in place (in_progress stays in_progress, the owner changes);
-- that take-over is audited as a 'lease' event.

CREATE TABLE delegations (
    id                  TEXT NOT NULL PRIMARY KEY DEFAULT (
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
    -- The last error seen: the reason of a failure, or of the retry a pending row waits for.
    error               TEXT,
    -- Delivery attempts started. Following up a peer's task or the platform's queue never counts.
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: the worker's --retry-attempts decides.
    max_attempts        INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    -- When a pending row may be claimed (now, or the time its retry is scheduled for).
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
    -- The peer's task id while a submitted/working task is followed with tasks/get.
    remote_task_id      TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at         TEXT,

    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    CHECK (status <> 'in_progress' OR lease_owner IS NOT NULL),
    CHECK (status <> 'completed' OR result IS NOT NULL),
    CHECK (status <> 'failed' OR (error IS NOT NULL AND length(error) > 0))
) STRICT;

-- The next claimable rows, and leases that expired (the claim query reads both), oldest due first.
CREATE INDEX delegations_claimable ON delegations (status, next_run_at);
CREATE INDEX delegations_leases ON delegations (status, lease_expires_at);
-- A worker's own leases (renewal, release at shutdown).
CREATE INDEX delegations_lease_owners ON delegations (status, lease_owner);
-- Listing by status and by workspace, newest or oldest first.
CREATE INDEX delegations_by_status ON delegations (status, created_at);
CREATE INDEX delegations_by_workspace ON delegations (workspace_id, created_at);
CREATE INDEX delegations_by_created ON delegations (created_at);
-- Eviction: finished rows, oldest first.
CREATE INDEX delegations_finished ON delegations (finished_at, id)
    WHERE status IN ('completed', 'failed', 'cancelled');

CREATE TABLE delegation_events (
    id              INTEGER PRIMARY KEY,
    delegation_id   TEXT NOT NULL REFERENCES delegations (id) ON DELETE CASCADE,
    at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- 'status': a transition, written by the triggers below. 'lease': an expired lease taken over.
    -- Anything else is a step a worker or an operator recorded ('discovery', 'a2a.answer', 'retry', …).
    kind            TEXT NOT NULL CHECK (length(kind) > 0),
    from_status     TEXT,
    to_status       TEXT,
    attempt         INTEGER NOT NULL DEFAULT 0,
    worker          TEXT,
    detail          TEXT,
    CHECK (kind <> 'status' OR to_status IS NOT NULL)
) STRICT;

CREATE INDEX delegation_events_by_delegation ON delegation_events (delegation_id, id);
CREATE INDEX delegation_events_by_time ON delegation_events (at);

-- ---------------------------------------------------------------------------------------------
-- New rows: only pending, with nothing a worker writes.
CREATE TRIGGER delegations_insert_pending_only
BEFORE INSERT ON delegations
WHEN NEW.status IS NOT 'pending' OR NEW.result IS NOT NULL OR NEW.lease_owner IS NOT NULL
     OR NEW.attempts <> 0 OR NEW.finished_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a new delegation must be pending, with no result, lease or attempts');
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
            END);
    -- Bookkeeping every client gets for free: only in_progress rows hold a lease.
    UPDATE delegations
    SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        finished_at = CASE WHEN NEW.status IN ('completed', 'failed', 'cancelled')
                           THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END,
        lease_owner = CASE WHEN NEW.status = 'in_progress' THEN NEW.lease_owner END,
        lease_expires_at = CASE WHEN NEW.status = 'in_progress' THEN NEW.lease_expires_at END
    WHERE id = NEW.id;
END;

CREATE TRIGGER delegations_audit_lease_takeover
AFTER UPDATE OF lease_owner ON delegations
WHEN OLD.status = 'in_progress' AND NEW.status = 'in_progress'
     AND NEW.lease_owner IS NOT OLD.lease_owner
BEGIN
    INSERT INTO delegation_events (delegation_id, kind, from_status, to_status, attempt, worker, detail)
    VALUES (NEW.id, 'lease', 'in_progress', 'in_progress', NEW.attempts, NEW.lease_owner,
            'took over from ' || coalesce(OLD.lease_owner, '?') || ' whose lease expired at '
            || coalesce(OLD.lease_expires_at, '?'));
END;

-- Events are append-only: no UPDATE, and no DELETE while their delegation exists
-- (evicting a delegation removes its events through ON DELETE CASCADE).
CREATE TRIGGER delegation_events_no_update
BEFORE UPDATE ON delegation_events
BEGIN
    SELECT RAISE(ABORT, 'delegation_events is append-only: events cannot be changed');
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
