import Metrics
import Synchronization

/// How well writes share commits: operations per transaction is the group-commit factor. Also exported
/// through swift-metrics (whatever backend the program bootstrapped; none by default):
/// `delegation_store_commit_duration_seconds` (from BEGIN to the end of COMMIT) and
/// `delegation_store_operations_per_commit`.
public final class WriterStatistics: Sendable {
    private let counters = Mutex((transactions: 0, operations: 0, largestBatch: 0, searchCatchUps: 0, searchRowsIndexed: 0, checkpointPasses: 0, writerCopies: 0))
    private let commitDuration = Metrics.Timer(label: "delegation_store_commit_duration_seconds")
    private let operationsPerCommit = Recorder(label: "delegation_store_operations_per_commit")

    /// The bucket bounds a histogram of operations per commit wants (batches go up to 512).
    public static let operationsPerCommitBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

    func record(batch: Int, duration: Duration) {
        counters.withLock {
            $0.transactions += 1
            $0.operations += batch
            $0.largestBatch = max($0.largestBatch, batch)
        }
        commitDuration.record(duration: duration)
        operationsPerCommit.record(batch)
    }

    /// A transaction that indexed queued rows for search (`SearchIndex`): writer work too, not an operation.
    func recordSearchCatchUp(rows: Int) {
        counters.withLock {
            $0.searchCatchUps += 1
            $0.searchRowsIndexed += rows
        }
    }

    /// A checkpoint of the store's `Checkpointer` that ran (not busy, no error): a pass on its thread, or a
    /// last stretch the writer copied.
    func recordCheckpoint(byWriter: Bool) {
        counters.withLock {
            if byWriter { $0.writerCopies += 1 } else { $0.checkpointPasses += 1 }
        }
    }

    public var transactions: Int { counters.withLock { $0.transactions } }
    /// Checkpoint passes on the store's checkpointer thread, outside any commit.
    public var checkpointPasses: Int { counters.withLock { $0.checkpointPasses } }
    /// Last stretches of the log the writer copied itself, so that the log could start over.
    public var writerCopies: Int { counters.withLock { $0.writerCopies } }
    public var operations: Int { counters.withLock { $0.operations } }
    public var largestBatch: Int { counters.withLock { $0.largestBatch } }
    /// Transactions that caught the search index up, and the rows they indexed.
    public var searchCatchUps: Int { counters.withLock { $0.searchCatchUps } }
    public var searchRowsIndexed: Int { counters.withLock { $0.searchRowsIndexed } }
}
