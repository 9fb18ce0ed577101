import Logging
internal import SQLiteDatabase
import Synchronization

/// Copies the write-ahead log into the database file on a thread of its own, so that commits do not wait
/// for that copy.
///
/// SQLite's default checkpoints inside every COMMIT that finds the log past 1,000 pages, and that commit's
/// caller waits for the copy and its fsync. Beside an `evict` at 1M rows that was every worker
/// claim+complete over 100 ms the benchmark caught (a copy of a 57,000–77,000-frame log's backlog, 98–134 ms,
/// inside one commit) and 15–47 ms inside many more. Here the store's connections that write (the writer
/// and the indexer) only note the log's size after they commit and, past the same 1,000 pages, ask this
/// thread for a pass, as SQLite's default would copy after each such commit; a pass is the same PASSIVE
/// checkpoint on a connection of its own: it takes no lock a writer waits for, so commits go on while it
/// copies. Requests that pile up while it works are one request. (Asking only once per 1,000 pages
/// instead left longer stretches to copy and doubled the worker's stalls over 50 ms beside `evict`.)
///
/// The log starts over only at a write that finds it copied whole, and under a steady load a pass never
/// ends at exactly such a moment. So each time the log has grown by `restartEvery` pages, the writer copies
/// the last stretch itself as soon as it is short (what was written since the latest pass that copied
/// everything: at most `writerCopiesAtMost` pages, or up to 4 times that after `patience` passes that left
/// more), and its next write starts the log over. After a copy the log did not start over from (another
/// process writing all the time, a reader on the log), the next is twice as far away (four stretches at
/// most). Other programs' connections (a raw `sqlite3` session) keep SQLite's default; attached databases'
/// logs (the search index file's) are copied as SQLite's default does.
final class Checkpointer: Sendable {
    /// SQLite's own default (`wal_autocheckpoint`): the log is copied as often as it was.
    static let threshold = 1_000
    /// The most the writer copies itself (~1 MB) while it can wait for a shorter stretch.
    static let writerCopiesAtMost = 256
    /// Passes that left more than `writerCopiesAtMost` before the writer copies the stretch anyway (commits of
    /// hundreds of pages each would otherwise never leave a short one).
    static let patience = 8

    private struct State {
        var running = false
        /// The log's size when the latest pass copied all of it (no reader held pages back, no other
        /// checkpoint ran); nil when it could not.
        var copiedWholeAt: Int?
        /// The log's size after the last commit the writer and the indexer each reported (a smaller one
        /// from the same connection: the log started over; each its own, so that two reports in either
        /// order are never taken for a restart).
        var lastFrames = (writer: 0, indexer: 0)
        /// The log's size from which the writer copies the last stretch itself.
        var writerCopiesAt: Int
        /// Passes in a row that left the writer too long a stretch (each pass counted once: `missedAt`).
        var misses = 0
        var missedAt: Int?
        /// The writer copied the whole log: the next commit should find it started over.
        var restartExpected = false
        /// Copies in a row after which the log did not start over (another process writing, a reader on
        /// it): each doubles the stretch before the next one, twice at most.
        var failedRestarts = 0
        /// Checkpoints failed in a row (a warning at the 1st, 10th, 100th, …: not one per batch).
        var failures = 0
    }

    /// A request for one pass; the thread's queue merges those that pile up.
    struct Due: Sendable {}

    private let state: Shared
    private let restartEvery: Int
    private let statistics: WriterStatistics
    private let logger: Logger
    private let thread: DatabaseThread<Due>

    init(database: sending Database, restartEvery: Int, statistics: WriterStatistics, logger: Logger) {
        let restartEvery = min(max(restartEvery, Self.threshold), 1 << 40)  // no sum of frames can overflow
        self.restartEvery = restartEvery
        self.statistics = statistics
        self.logger = logger
        let state = Shared(State(writerCopiesAt: restartEvery))
        self.state = state
        thread = DatabaseThread(name: "delegation-store-checkpointer", database: database) { database, _ in
            state.withLock { $0.running = true }
            let outcome = Self.copy(database, state: state, logger: logger)
            if let outcome, !outcome.busy { statistics.recordCheckpoint(byWriter: false) }
            state.withLock {
                $0.running = false
                $0.copiedWholeAt = outcome.flatMap { $0.copiedAll ? $0.logFrames : nil }
            }
        }
    }

    /// On the thread of a connection that writes (set up with `leaveCheckpointsToAnotherConnection`), after
    /// it ran its transactions. `copyHere`: the writer's thread, which may copy the last stretch itself.
    func afterCommit(on database: Database, copyHere: Bool) {
        guard let frames = database.takeFramesInLog() else { return }  // nothing committed
        enum Step { case nothing, ask, copy }
        let step = state.withLock { state -> Step in
            let last = copyHere ? state.lastFrames.writer : state.lastFrames.indexer
            if copyHere { state.lastFrames.writer = frames } else { state.lastFrames.indexer = frames }
            if frames < last {  // the log started over
                state.writerCopiesAt = restartEvery
                state.copiedWholeAt = nil
                state.misses = 0
                state.missedAt = nil
                state.failedRestarts = 0
                state.restartExpected = false
            } else if copyHere && state.restartExpected {
                // It did not: beside another process that writes all the time it cannot, and copying here
                // again soon would only cost this writer. Twice as far each time, up to four stretches.
                state.restartExpected = false
                state.failedRestarts = min(state.failedRestarts + 1, 2)
                state.writerCopiesAt = frames + restartEvery << state.failedRestarts
            }
            guard frames >= Self.threshold else { return .nothing }
            guard frames >= state.writerCopiesAt, copyHere else { return state.running ? .nothing : .ask }
            // A pass that runs is let finish (not asked again). After a pass that could not copy everything
            // (readers held a backlog back) another is asked for: only a short stretch is ever copied here.
            guard !state.running else { return .nothing }
            guard let copied = state.copiedWholeAt, frames >= copied else { return .ask }
            let stretch = frames - copied
            let patient = state.misses >= Self.patience && stretch <= 4 * Self.writerCopiesAtMost
            guard stretch <= Self.writerCopiesAtMost || patient else {
                if state.missedAt != copied {
                    state.missedAt = copied
                    state.misses += 1
                }
                return .ask
            }
            state.misses = 0
            return .copy
        }
        switch step {
        case .nothing: break
        case .ask: _ = thread.submit(Due())
        case .copy:
            let outcome = Self.copy(database, state: state, logger: logger)
            if let outcome, !outcome.busy { statistics.recordCheckpoint(byWriter: true) }
            let askAgain = state.withLock { state -> Bool in
                guard let outcome, outcome.copiedAll else {
                    state.copiedWholeAt = nil  // a reader held some back: a pass, not this writer, copies the rest
                    return true
                }
                // The next write starts the log over (seen as a smaller size), unless someone is on it then.
                // A commit of this store's indexer that landed during the copy is not another process: no
                // back-off for it; the writer copies again once the stretch is short.
                if max(state.lastFrames.writer, state.lastFrames.indexer) <= outcome.logFrames {
                    state.writerCopiesAt = frames + restartEvery
                    state.restartExpected = true
                }
                return false
            }
            if askAgain { _ = thread.submit(Due()) }
        }
    }

    func stop() async { await thread.stop() }

    private static func copy(
        _ database: Database, state: Shared, logger: Logger
    ) -> Database.CheckpointOutcome? {
        do {
            let outcome = try database.checkpoint(.passive)
            state.withLock { $0.failures = 0 }
            return outcome
        } catch {
            // Nothing is lost: the log keeps every commit, and the next pass tries again.
            let failures = state.withLock { state -> Int in
                state.failures += 1
                return state.failures
            }
            var power = 1
            while power < failures && power < Int.max / 10 { power *= 10 }
            if power == failures {
                logger.warning(
                    "checkpoint failed; the write-ahead log grows until one succeeds",
                    metadata: ["error": "\(error)", "failures in a row": "\(failures)"])
            }
            return nil
        }
    }

    /// The state the writing threads and this one share.
    private final class Shared: Sendable {
        private let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
        func withLock<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }
    }
}
