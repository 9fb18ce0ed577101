-- 0006: fewer B-trees written per transition, and `stats` read from an index.
--
-- A commit costs about one WAL page per B-tree it touches (measured: a claim wrote ~14 pages, an
-- enqueue and a completion ~22 each). Two things here cut that without giving up any promise:
--
-- * Indexes that hold only the rows they serve. `delegations_claimable (status, next_run_at)` and
--   `delegations_leases (status, lease_expires_at)` held every row, finished history included, so every
--   transition moved an entry in each of them (and in `delegations_lease_owners`). Now pending rows sit
--   in `delegations_pending`, leased rows in `delegations_leased`, and a finished row in neither: an
--   enqueue writes one of them instead of three, a completion deletes one entry instead of moving three.
--   Lookups by lease owner (renewal, release) scan `delegations_leased`: it holds only the sends in
--   flight.
--
-- * The search index is caught up in batches. Writing a row's text into the trigram index (0005) in its
--   own transaction wrote ~7 pages per enqueue and per completion (a new FTS5 segment each time). Now a
--   trigger notes the row in `delegation_search_queue` (one small table, one page) and the store's writer
--   indexes queued rows up to 512 at a time (`SearchIndex.catchUp`). Until then a search matches the
--   queued rows by LIKE on their current text and ignores what the index still holds for them: the
--   queue decides which of the two paths finds a row, not whether (LIKE folds ASCII case only, the
--   trigram index also other scripts': a non-ASCII case variant is found once its row is indexed).
--   A row is in the queue when the index lacks it (`indexed` = 0) or holds older text for it
--   (`indexed` = 1, with the result and error it was indexed with; the task never changes).
--
-- * `delegations_finished` also carries status, created_at and attempts (all fixed while a row is
--   finished), so `stats` reads its 24-hour window from the index alone. A finished row is written to
--   this index once, when it finishes, as before: the wider entry costs no extra page on the hot path.

DROP INDEX delegations_claimable;
DROP INDEX delegations_leases;
DROP INDEX delegations_lease_owners;

-- Pending rows by the time they are due (the claim's first source).
CREATE INDEX delegations_pending ON delegations (next_run_at) WHERE status = 'pending';
-- Rows under a lease (only in_progress rows hold one: 0004's CHECK and bookkeeping), by expiry (the
-- claim's take-over source), with the owner for renewal and release without reading the table.
CREATE INDEX delegations_leased ON delegations (lease_expires_at, lease_owner) WHERE lease_owner IS NOT NULL;

DROP INDEX delegations_finished;
CREATE INDEX delegations_finished ON delegations (finished_at, id, status, created_at, attempts)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- seq keys the search index: it never changes either (0004 guards the other identity columns). No
-- `OF seq`: an UPDATE that names it `rowid`, `_rowid_` or `oid` would not match a column list.
CREATE TRIGGER delegations_seq_is_immutable
BEFORE UPDATE ON delegations
WHEN NEW.seq IS NOT OLD.seq
BEGIN
    SELECT RAISE(ABORT, 'a delegation''s seq never changes');
END;

-- 0004's guard against `INSERT OR REPLACE` looked at id and message_id only: a REPLACE naming an existing
-- seq deleted that row without its delete triggers (counts, search index) and took its key. (A seq left
-- to SQLite is -1 in a BEFORE INSERT trigger: negative seqs are not compared, or one row with seq -1
-- would refuse every later insert.)
DROP TRIGGER delegations_insert_never_replaces;
CREATE TRIGGER delegations_insert_never_replaces
BEFORE INSERT ON delegations
WHEN EXISTS (SELECT 1 FROM delegations WHERE id = NEW.id OR message_id = NEW.message_id OR (NEW.seq >= 0 AND seq = NEW.seq))
BEGIN
    SELECT RAISE(ABORT, 'a delegation with this id, message_id or seq exists: delegations are never replaced');
END;

-- ---------------------------------------------------------------------------------------------
-- The search index, caught up in batches.

CREATE TABLE delegation_search_queue (
    seq        INTEGER PRIMARY KEY,
    -- 1: the index holds this row with the task and the two values below; 0: it does not hold it.
    indexed    INTEGER NOT NULL CHECK (indexed IN (0, 1)),
    old_result TEXT,
    old_error  TEXT
) STRICT;

DROP TRIGGER delegation_search_insert;
DROP TRIGGER delegation_search_update;
DROP TRIGGER delegation_search_delete;

CREATE TRIGGER delegation_search_insert
AFTER INSERT ON delegations
BEGIN
    INSERT INTO delegation_search_queue (seq, indexed) VALUES (NEW.seq, 0);
END;

-- The first change after the row was indexed records what the index holds; later ones change nothing
-- here (the entry already says what to take out of the index).
CREATE TRIGGER delegation_search_update
AFTER UPDATE OF result, error ON delegations
WHEN NEW.result IS NOT OLD.result OR NEW.error IS NOT OLD.error
BEGIN
    INSERT INTO delegation_search_queue (seq, indexed, old_result, old_error)
    VALUES (NEW.seq, 1, OLD.result, OLD.error)
    ON CONFLICT (seq) DO NOTHING;
END;

-- A deleted row leaves the index with exactly the text it was indexed with (FTS5 external content
-- needs it to find the entries), and leaves the queue.
CREATE TRIGGER delegation_search_delete
AFTER DELETE ON delegations
BEGIN
    INSERT INTO delegation_search (delegation_search, rowid, task, result, error)
    SELECT 'delete', OLD.seq, OLD.task, OLD.result, OLD.error
    WHERE NOT EXISTS (SELECT 1 FROM delegation_search_queue WHERE seq = OLD.seq)
    UNION ALL
    SELECT 'delete', OLD.seq, OLD.task, q.old_result, q.old_error
    FROM delegation_search_queue q WHERE q.seq = OLD.seq AND q.indexed = 1;
    DELETE FROM delegation_search_queue WHERE seq = OLD.seq;
END;
