-- 0007: the search index moves out of this file, so that keeping it never holds this file's write lock.
--
-- FTS5 merges an index's segments inside whichever transaction writes the segment that tips a level
-- over, and a merge step at a million rows wrote whole doclists of the common trigrams: eviction
-- batches and the writer's catch-ups held the write lock 70-145 ms about once a second, and the worker's
-- commits waited behind them (the worst claim + complete beside `evict`: 174-535 ms). Merging cannot be
-- cut into small enough steps (a step stops only between two terms), so it now happens where no worker
-- waits for it: in a file of its own, `<database>-search`, written by the store's indexer on a
-- connection and a thread of its own (`SearchIndex`).
--
-- This file keeps only the queue: a trigger notes every row whose text may differ from what the index
-- holds — inserted, its result or error changed, deleted — and counts the changes, so the indexer can
-- take an entry off the queue only if nothing changed it while its batch was being indexed. The index
-- file holds its own copy of the text it indexed (and so needs nothing from here to take a row out),
-- which makes indexing a row idempotent: a crash between the index's commit and the queue's is repaired
-- by indexing the same rows again. A search matches queued rows by LIKE on their current text and the
-- rest through the index, as since 0006.
--
-- The index file is derived: when it is missing (a fresh database, a database copied without it, after
-- this migration) the next read-write open creates it and queues every row. Dropping the old index here
-- frees its pages; `delegation-admin vacuum` returns them to the file system.

DROP TRIGGER delegation_search_insert;
DROP TRIGGER delegation_search_update;
DROP TRIGGER delegation_search_delete;
DROP TABLE delegation_search;
DROP TABLE delegation_search_queue;

CREATE TABLE delegation_search_queue (
    seq     INTEGER PRIMARY KEY,
    -- How many times the row changed since it was queued: the indexer removes an entry only when this is
    -- still the count it indexed.
    changes INTEGER NOT NULL DEFAULT 1 CHECK (changes >= 1)
) STRICT;

CREATE TRIGGER delegation_search_insert
AFTER INSERT ON delegations
BEGIN
    INSERT INTO delegation_search_queue (seq) VALUES (NEW.seq)
    ON CONFLICT (seq) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER delegation_search_update
AFTER UPDATE OF result, error ON delegations
WHEN NEW.result IS NOT OLD.result OR NEW.error IS NOT OLD.error
BEGIN
    INSERT INTO delegation_search_queue (seq) VALUES (NEW.seq)
    ON CONFLICT (seq) DO UPDATE SET changes = changes + 1;
END;

CREATE TRIGGER delegation_search_delete
AFTER DELETE ON delegations
BEGIN
    INSERT INTO delegation_search_queue (seq) VALUES (OLD.seq)
    ON CONFLICT (seq) DO UPDATE SET changes = changes + 1;
END;

-- Which index file belongs to this database (`file_id`, written when one is laid out) and how many batches
-- the indexer has taken off the queue. The index file records the same id and the count it read with its
-- last batch: the database's count equals it or is one ahead (one batch between the index file's commit
-- and the queue's) unless one of the files was restored from another moment than the other, and the index
-- file is then rebuilt (`SearchIndex.matchesDatabase`) instead of matching rows on text they no longer have.
CREATE TABLE delegation_search_progress (batches INTEGER NOT NULL, file_id TEXT) STRICT;
INSERT INTO delegation_search_progress (batches) VALUES (0);
