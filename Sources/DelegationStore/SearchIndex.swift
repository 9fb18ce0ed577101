package import SQLiteDatabase
import Logging
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
    /// Characters of text per catch-up transaction, whatever the number of rows: results run to 1 MiB
    /// (`TextLimit`), and indexing costs ~0.1 s per million characters here, so a batch of 512 large ones
    /// would hold the writer for most of a minute. At least one row is always taken.
    package static let budget = 500_000

    /// Indexes queued rows, oldest first, up to `limit` rows and `budget` characters of text, in the
    /// caller's transaction; returns how many.
    @discardableResult
    package static func catchUp(_ database: Database, limit: Int = batch, budget: Int = budget) throws -> Int {
        // The text a row costs: what goes into the index and what comes out of it. Stepped one row at a time
        // and left as soon as the budget is spent: the text of rows not taken is never read.
        let sizes = try database.statement(
            """
            SELECT q.seq, coalesce(length(d.task), 0) + coalesce(length(d.result), 0) + coalesce(length(d.error), 0)
                          + coalesce(length(q.old_result), 0) + coalesce(length(q.old_error), 0)
            FROM delegation_search_queue q LEFT JOIN delegations d USING (seq)
            ORDER BY q.seq LIMIT ?
            """, [max(1, limit)])
        var last: Int?
        var count = 0
        var text = 0
        while try sizes.step() {
            guard let seq = sizes.value(at: 0).int else { break }
            last = seq
            count += 1
            text += max(0, sizes.value(at: 1).int ?? 0)
            if text >= budget { break }
        }
        sizes.reset()  // step() resets on an error; the queue is written below
        guard let last else { return 0 }
        // What the index holds for a row that changed since it was indexed goes first, with the text it was
        // indexed with (an external-content FTS5 index finds its entries from the values it is given).
        // CROSS JOIN keeps the queue the outer loop: left to itself the planner walked delegations from
        // seq 1 up to the batch's last seq, the whole table when the queue holds only recent rows.
        try database.execute(
            """
            INSERT INTO delegation_search (delegation_search, rowid, task, result, error)
            SELECT 'delete', q.seq, d.task, q.old_result, q.old_error
            FROM delegation_search_queue q CROSS JOIN delegations d USING (seq)
            WHERE q.seq <= ?1 AND q.indexed = 1
            """, last)
        try database.execute(
            """
            INSERT INTO delegation_search (rowid, task, result, error)
            SELECT d.seq, d.task, d.result, d.error
            FROM delegation_search_queue q CROSS JOIN delegations d USING (seq)
            WHERE q.seq <= ?1
            """, last)
        try database.execute("DELETE FROM delegation_search_queue WHERE seq <= ?1", last)
        return count
    }

    /// Whether any row still waits (a batch cut short by its limits leaves a backlog).
    package static func hasQueued(_ database: Database) throws -> Bool {
        try database.queryFirst("SELECT EXISTS (SELECT 1 FROM delegation_search_queue)")?[0].int == 1
    }

    /// Catches up once in its own transaction if `schedule` says it is due, waiting at most a moment for
    /// another process's lock (it can as well be done at the next chance). Called on the writer's thread
    /// after a batch of writes, and when it has been idle for a second.
    static func catchUpIfDue(
        _ database: Database, schedule: SearchIndexSchedule, writes: Int, statistics: WriterStatistics, logger: Logger
    ) {
        guard schedule.due(after: writes) else { return }
        do {
            let (indexed, more) = try database.withLockWaitLimit(.milliseconds(100)) {
                try database.transaction(.immediate) { (try catchUp(database), try hasQueued(database)) }
            }
            schedule.caughtUp(more: more)
            statistics.recordSearchCatchUp(rows: indexed)
        } catch {
            // Searches stay exact (queued rows are matched on their text); only slower until it works. Another
            // process holding the lock (a VACUUM, a long evict) is routine: not worth a warning a second.
            schedule.failed()
            let level: Logger.Level = (error as? SQLiteError)?.isBusy == true ? .debug : .warning
            logger.log(level: level, "could not catch the search index up; trying again in a second", metadata: ["error": "\(error)"])
        }
    }
}

/// When the writer catches the search index up: after `SearchIndex.batch` writes, or a second after the
/// last catch-up when anything was written since (checked after each batch of writes and when the writer
/// has been idle a second), or at once again while a backlog remains (a batch cut short, rows written by
/// raw SQL or by another process). Touched only by the writer thread; the lock only makes that checkable.
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

    /// Records a catch-up; `more`: rows still wait (its batch was cut short), so the next chance takes them.
    func caughtUp(more: Bool) {
        state.withLock { state in
            state.writesSince = 0
            state.last = ContinuousClock.now
            state.backlog = more
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
