package import SQLiteDatabase
import Synchronization

/// Catches the trigram search index up with the rows `delegation_search_queue` names (migration 0006).
///
/// Rows reach the index in batches rather than one transaction at a time: an FTS5 write makes a new
/// segment per transaction (~7 WAL pages), so indexing each enqueue and each completion on its own
/// cost a third of their writes. Searching never waits for this: queued rows are matched on their
/// current text (`Queries.select`), so catching up changes how a row is found, not whether.
package enum SearchIndex {
    /// Rows indexed per catch-up transaction: large enough to share a segment, small enough that the
    /// writer (and every worker waiting on it) is held only a few milliseconds.
    package static let batch = 512

    /// Indexes up to `limit` queued rows, oldest first, in the caller's transaction; returns how many.
    @discardableResult
    package static func catchUp(_ database: Database, limit: Int = batch) throws -> Int {
        guard let bound = try database.queryFirst(
            "SELECT max(seq), count(*) FROM (SELECT seq FROM delegation_search_queue ORDER BY seq LIMIT ?)", limit),
            let last = bound[0].int, let count = bound[1].int, count > 0
        else { return 0 }
        // What the index holds for a row that changed since it was indexed goes first, with the text it was
        // indexed with (an external-content FTS5 index finds its entries from the values it is given).
        try database.execute(
            """
            INSERT INTO delegation_search (delegation_search, rowid, task, result, error)
            SELECT 'delete', q.seq, d.task, q.old_result, q.old_error
            FROM delegation_search_queue q JOIN delegations d USING (seq)
            WHERE q.seq <= ?1 AND q.indexed = 1
            """, last)
        try database.execute(
            """
            INSERT INTO delegation_search (rowid, task, result, error)
            SELECT d.seq, d.task, d.result, d.error
            FROM delegation_search_queue q JOIN delegations d USING (seq)
            WHERE q.seq <= ?1
            """, last)
        try database.execute("DELETE FROM delegation_search_queue WHERE seq <= ?1", last)
        return count
    }
}

/// When the writer catches the search index up: after `SearchIndex.batch` writes, or a second after the
/// last catch-up when anything was written since, or at once again while a backlog remains (a database
/// written by raw SQL, or by a build before 0006's queue was drained). Touched only by the writer thread;
/// the lock only makes that checkable.
final class SearchIndexSchedule: Sendable {
    private struct State {
        var writesSince = 0
        var last = ContinuousClock.now
        var backlog = true  // unknown at open: look once
    }
    private let state = Mutex(State())
    static let interval = Duration.seconds(1)

    /// Counts `writes` operations just committed; true when a catch-up is due.
    func due(after writes: Int) -> Bool {
        state.withLock { state in
            state.writesSince += writes
            if state.backlog { return true }
            if state.writesSince >= SearchIndex.batch { return true }
            return state.writesSince > 0 && ContinuousClock.now - state.last >= Self.interval
        }
    }

    /// Records a catch-up that indexed `indexed` rows (a full batch means more may be waiting).
    func caughtUp(indexed: Int) {
        state.withLock { state in
            state.writesSince = 0
            state.last = ContinuousClock.now
            state.backlog = indexed >= SearchIndex.batch
        }
    }

    /// A catch-up that failed (a lock held too long, a full disk): tried again after the interval.
    func failed() {
        state.withLock { state in
            state.writesSince = 1
            state.last = ContinuousClock.now
            state.backlog = false
        }
    }
}
