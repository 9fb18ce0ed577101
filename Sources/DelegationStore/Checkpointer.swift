import Logging
internal import SQLiteDatabase
import Synchronization

/// Copies the write-ahead log into the database file on a thread of its own, so that no write waits for it.
///
/// SQLite's default checkpoints inside the COMMIT that finds the log past 1,000 pages, and that commit's
/// caller waits for the whole copy and its fsync. Beside an `evict` at 1M rows that was every worker
/// claim+complete over 100 ms the benchmark caught (a copy of a 57,000–77,000-frame log's backlog, 98–134 ms,
/// inside one commit) and 15–47 ms inside many more. Here the writer only notes the log's size after each
/// batch and, past the same 1,000 pages, asks this thread, which runs the same PASSIVE checkpoint on its own
/// connection: it takes no lock a writer waits for, so commits go on while it copies. Requests that pile up
/// while it works are one request.
///
/// The log starts over only at a write that finds it copied whole, and under a steady load this thread
/// never catches up with the writer exactly then. So each time the log has grown by `restartEvery` pages,
/// the writer copies the last stretch itself, and its next write starts the log over: only right after a
/// pass that copied everything, when no more than `writerCopiesAtMost` pages were written since (else it
/// asks for another pass, which leaves a shorter stretch).
/// Connections of other programs (a raw `sqlite3` session) keep SQLite's default.
final class Checkpointer: Sendable {
    /// SQLite's own default (`wal_autocheckpoint`): the log is copied as often as it was.
    static let threshold = 1_000
    /// The most the writer copies itself (~1 MB): what was written since a pass that copied everything.
    static let writerCopiesAtMost = 256

    private struct State {
        var running = false
        /// The log's size when the last pass copied all of it (no reader held pages back, no other
        /// checkpoint ran); nil when it could not.
        var copiedWholeAt: Int?
        /// The log's size at which the writer copies the last stretch itself.
        var writerCopiesAt: Int
        /// Checkpoints failed so far (a warning at the 1st, 10th, 100th, …: not one per batch).
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
        self.restartEvery = restartEvery
        self.statistics = statistics
        self.logger = logger
        let state = Shared(State(writerCopiesAt: restartEvery))
        self.state = state
        thread = DatabaseThread(name: "delegation-store-checkpointer", database: database) { database, _ in
            state.withLock { $0.running = true }
            let outcome = Self.copy(database, state: state, statistics: statistics, logger: logger)
            state.withLock {
                $0.running = false
                $0.copiedWholeAt = outcome.flatMap { !$0.busy && $0.checkpointedFrames >= $0.logFrames ? $0.logFrames : nil }
            }
        }
    }

    /// On the writer's thread, after each batch it committed on `database`.
    func afterCommit(on database: Database) {
        let frames = database.framesInLogAfterLastCommit
        enum Step { case nothing, ask, copyHere }
        let step = state.withLock { state -> Step in
            if frames < Self.threshold {
                state.writerCopiesAt = restartEvery  // the log started over
                return .nothing
            }
            guard frames >= state.writerCopiesAt else { return .ask }
            // A pass that runs is let finish (not asked again). Only a short stretch is ever copied here:
            // after a pass that could not copy everything (readers held a backlog back), or when much was
            // written since (by this writer, or by another process's), another pass is asked for instead.
            guard !state.running else { return .nothing }
            guard let copied = state.copiedWholeAt, (0...Self.writerCopiesAtMost).contains(frames - copied) else { return .ask }
            return .copyHere
        }
        switch step {
        case .nothing: break
        case .ask: _ = thread.submit(Due())
        case .copyHere:
            guard let outcome = Self.copy(database, state: state, statistics: statistics, logger: logger) else { return }
            if !outcome.busy { state.withLock { $0.writerCopiesAt = frames + restartEvery } }
        }
    }

    func stop() async { await thread.stop() }

    private static func copy(
        _ database: Database, state: Shared, statistics: WriterStatistics, logger: Logger
    ) -> (busy: Bool, logFrames: Int, checkpointedFrames: Int)? {
        let started = ContinuousClock.now
        do {
            let outcome = try database.passiveCheckpoint()
            statistics.recordCheckpoint(duration: ContinuousClock.now - started, busy: outcome.busy)
            return outcome
        } catch {
            // Nothing is lost: the log keeps every commit, and the next pass tries again.
            let failures = state.withLock { state -> Int in
                state.failures += 1
                return state.failures
            }
            var power = 1
            while power < failures { power *= 10 }
            if power == failures {
                logger.warning(
                    "checkpoint failed; the write-ahead log grows until one succeeds",
                    metadata: ["error": "\(error)", "failures": "\(failures)"])
            }
            return nil
        }
    }

    /// The state the writer's thread and this one share.
    private final class Shared: Sendable {
        private let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
        func withLock<T>(_ body: (inout State) -> T) -> T { state.withLock { body(&$0) } }
    }
}
