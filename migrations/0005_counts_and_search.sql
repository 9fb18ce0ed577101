-- 0005: inspection that stays fast at a million rows.
--
-- `delegation-admin stats` counted rows by status over the status index (~300 ms at 1,000,000 rows),
-- and `list --search` was a LIKE over every candidate row (~360 ms). Here the schema keeps both answers:
--
-- * `delegation_counts`: rows per status, kept by triggers in the same transaction as every insert,
--   status change and delete (so raw SQL keeps it right too). One small UPDATE per transition.
-- * `delegation_search`: a full-text index (FTS5, trigram tokenizer: substring matching like LIKE,
--   case-insensitive) over task, result and error, kept by triggers, keyed on `delegations.seq` (an
--   INTEGER PRIMARY KEY: stable through VACUUM and dump/reload, unlike an implicit rowid). Search
--   strings of three characters or more use it; shorter ones fall back to LIKE.

CREATE TABLE delegation_counts (
    status TEXT NOT NULL PRIMARY KEY CHECK (status IN
        ('pending', 'in_progress', 'queued', 'completed', 'failed', 'cancelled')),
    rows   INTEGER NOT NULL CHECK (rows >= 0)
) STRICT, WITHOUT ROWID;

INSERT INTO delegation_counts (status, rows)
SELECT s.value, (SELECT count(*) FROM delegations d WHERE d.status = s.value)
FROM json_each('["pending", "in_progress", "queued", "completed", "failed", "cancelled"]') s;

CREATE TRIGGER delegation_counts_insert
AFTER INSERT ON delegations
BEGIN
    UPDATE delegation_counts SET rows = rows + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER delegation_counts_status
AFTER UPDATE OF status ON delegations
WHEN NEW.status IS NOT OLD.status
BEGIN
    UPDATE delegation_counts SET rows = rows + (status = NEW.status) - (status = OLD.status)
    WHERE status IN (OLD.status, NEW.status);
END;

CREATE TRIGGER delegation_counts_delete
AFTER DELETE ON delegations
BEGIN
    UPDATE delegation_counts SET rows = rows - 1 WHERE status = OLD.status;
END;

CREATE VIRTUAL TABLE delegation_search USING fts5(
    task, result, error, content = 'delegations', content_rowid = 'seq', tokenize = 'trigram');

INSERT INTO delegation_search (delegation_search) VALUES ('rebuild');

CREATE TRIGGER delegation_search_insert
AFTER INSERT ON delegations
BEGIN
    INSERT INTO delegation_search (rowid, task, result, error) VALUES (NEW.seq, NEW.task, NEW.result, NEW.error);
END;

CREATE TRIGGER delegation_search_update
AFTER UPDATE OF result, error ON delegations
WHEN NEW.result IS NOT OLD.result OR NEW.error IS NOT OLD.error
BEGIN
    INSERT INTO delegation_search (delegation_search, rowid, task, result, error)
    VALUES ('delete', OLD.seq, OLD.task, OLD.result, OLD.error);
    INSERT INTO delegation_search (rowid, task, result, error) VALUES (NEW.seq, NEW.task, NEW.result, NEW.error);
END;

CREATE TRIGGER delegation_search_delete
AFTER DELETE ON delegations
BEGIN
    INSERT INTO delegation_search (delegation_search, rowid, task, result, error)
    VALUES ('delete', OLD.seq, OLD.task, OLD.result, OLD.error);
END;
