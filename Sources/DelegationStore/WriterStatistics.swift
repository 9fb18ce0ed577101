import Synchronization

/// How well writes share commits: operations per transaction is the group-commit factor.
public final class WriterStatistics: Sendable {
    private let counters = Mutex((transactions: 0, operations: 0, largestBatch: 0))

    func record(batch: Int) {
        counters.withLock {
            $0.transactions += 1
            $0.operations += batch
            $0.largestBatch = max($0.largestBatch, batch)
        }
    }

    public var transactions: Int { counters.withLock { $0.transactions } }
    public var operations: Int { counters.withLock { $0.operations } }
    public var largestBatch: Int { counters.withLock { $0.largestBatch } }
}
