-- 0002: the durable outbox that mirrors delegations to the platform, and what each peer speaks.
--
-- Mirror calls are rows written by triggers in the same transaction as the status change they
-- report, so a crash or a platform outage can delay them but never lose them. A worker delivers
-- them in order per delegation (record, then update, then notify), retrying with backoff until the
-- platform accepts; a 4xx rejection is kept as 'dead' with the platform's answer, never dropped silently.
--
--   record — once per delegation, when it is first claimed:  {"target_id","task","delegation_id"}
--   update — when it ends (completed or failed; cancelled is reported as failed, since the platform
--            takes only those two): {"status", "response_preview" (≤ 500 characters) | "error"}
--   notify — with the update: {"message": "<a sentence for a human>"}

CREATE TABLE platform_outbox (
    id               INTEGER PRIMARY KEY,
    delegation_id    TEXT NOT NULL REFERENCES delegations (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('record', 'update', 'notify')),
    body             TEXT NOT NULL CHECK (json_valid(body)),
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    next_attempt_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner      TEXT,
    lease_expires_at TEXT,
    delivered_at     TEXT,
    -- The platform refused it for good (a 4xx); last_error holds its answer.
    dead_at          TEXT,
    last_error       TEXT,
    CHECK (delivered_at IS NULL OR dead_at IS NULL)
) STRICT;

CREATE INDEX platform_outbox_due ON platform_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX platform_outbox_by_delegation ON platform_outbox (delegation_id, id);

CREATE TRIGGER platform_outbox_record
AFTER UPDATE OF status ON delegations
WHEN OLD.status = 'pending' AND NEW.status = 'in_progress'
     AND NOT EXISTS (SELECT 1 FROM platform_outbox WHERE delegation_id = NEW.id AND kind = 'record')
BEGIN
    INSERT INTO platform_outbox (delegation_id, kind, body)
    VALUES (NEW.id, 'record', json_object('target_id', NEW.workspace_id, 'task', NEW.task, 'delegation_id', NEW.id));
END;

-- Only delegations the platform was told about get an end state.
CREATE TRIGGER platform_outbox_outcome
AFTER UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('completed', 'failed', 'cancelled')
     AND EXISTS (SELECT 1 FROM platform_outbox WHERE delegation_id = NEW.id AND kind = 'record')
BEGIN
    INSERT INTO platform_outbox (delegation_id, kind, body)
    VALUES (NEW.id, 'update', CASE NEW.status
        WHEN 'completed' THEN json_object('status', 'completed', 'response_preview', substr(NEW.result, 1, 500))
        WHEN 'failed' THEN json_object('status', 'failed', 'error', NEW.error)
        ELSE json_object('status', 'failed', 'error', 'cancelled: ' || coalesce(NEW.error, 'by operator'))
    END);
    INSERT INTO platform_outbox (delegation_id, kind, body)
    VALUES (NEW.id, 'notify', json_object('message', CASE NEW.status
        WHEN 'completed' THEN 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' completed: '
                              || substr(NEW.result, 1, 200)
        WHEN 'failed' THEN 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' failed: '
                           || substr(NEW.error, 1, 200)
        ELSE 'Delegation ' || NEW.id || ' to ' || NEW.workspace_id || ' was cancelled: '
             || substr(coalesce(NEW.error, 'by operator'), 1, 200)
    END));
END;

-- What A2A generation each peer speaks ('0.3' or '1.0'), learned from its answers and kept across
-- restarts, so a 1.0-only peer is not asked in 0.3 first every time.
CREATE TABLE a2a_peers (
    url        TEXT NOT NULL PRIMARY KEY,
    protocol   TEXT NOT NULL CHECK (protocol IN ('0.3', '1.0')),
    learned_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
