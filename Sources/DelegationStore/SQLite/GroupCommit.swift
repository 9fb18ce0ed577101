import Synchronization

/// A write waiting for the writer thread: run inside the batch's transaction, answered after COMMIT.
protocol WriteOperation: Sendable {
    /// Runs the operation's statements. False when it threw: its changes must be rolled back.
    func perform(_ database: Database) -> Bool
    /// Answers the caller once the transaction ended; `commitError` when the batch did not commit.
    func finish(commitError: (any Error)?)
}

final class PendingWrite<T: Sendable>: WriteOperation, @unchecked Sendable {
    // `outcome` is written and read on the writer thread only.
    private let body: @Sendable (Database) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    private var outcome: Result<T, any Error>?

    init(body: @escaping @Sendable (Database) throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.body = body
        self.continuation = continuation
    }

    func perform(_ database: Database) -> Bool {
        let result = Result { try body(database) }
        outcome = result
        if case .success = result { return true }
        return false
    }

    func finish(commitError: (any Error)?) {
        switch (outcome, commitError) {
        case (.failure(let error)?, _):
            continuation.resume(throwing: error)
        case (_, let error?):
            continuation.resume(throwing: error)
        case (.success(let value)?, nil):
            continuation.resume(returning: value)
        case (nil, nil):
            continuation.resume(throwing: DelegationStoreError.closed)
        }
    }
}

/// Group commit: every write that queued up while the previous COMMIT was syncing shares the next one.
///
/// At `synchronous=FULL` a commit costs an fsync or two; sharing it is what lets many concurrent
/// completions run at full durability. Each operation runs in its own SAVEPOINT, so one that fails
/// (an illegal transition, a lost lease) is rolled back alone and the others still commit.
enum GroupCommit {
    static let maximumBatch = 512

    static func run(_ operations: [any WriteOperation], on database: Database, statistics: WriterStatistics) {
        var start = 0
        while start < operations.count {
            let end = min(start + maximumBatch, operations.count)
            commit(operations[start..<end], on: database, statistics: statistics)
            start = end
        }
    }

    private static func commit(
        _ batch: ArraySlice<any WriteOperation>, on database: Database, statistics: WriterStatistics
    ) {
        do {
            try database.execute(script: "BEGIN IMMEDIATE")
        } catch {
            for operation in batch { operation.finish(commitError: error) }
            return
        }
        var abort: (any Error)?
        if batch.count == 1, let only = batch.first {
            if !only.perform(database) { abort = RolledBack() }
        } else {
            for operation in batch {
                do {
                    try database.execute(script: "SAVEPOINT operation")
                } catch {
                    abort = error
                    break
                }
                if operation.perform(database) {
                    try? database.execute(script: "RELEASE operation")
                } else if database.isInTransaction {
                    try? database.execute(script: "ROLLBACK TO operation; RELEASE operation")
                } else {
                    // SQLite itself rolled the transaction back (I/O error, disk full): nothing survived.
                    abort = TransactionLost()
                    break
                }
            }
        }
        var commitError: (any Error)?
        if let abort {
            if database.isInTransaction { try? database.execute(script: "ROLLBACK") }
            if !(abort is RolledBack) { commitError = abort }
        } else {
            do {
                try database.execute(script: "COMMIT")
            } catch {
                if database.isInTransaction { try? database.execute(script: "ROLLBACK") }
                commitError = error
            }
        }
        statistics.record(batch: batch.count)  // before anyone is answered, so callers see it counted
        for operation in batch { operation.finish(commitError: commitError) }
    }

    /// The batch's only operation failed: it answers with its own error.
    private struct RolledBack: Error {}

    struct TransactionLost: Error, CustomStringConvertible {
        var description: String {
            "SQLite rolled back the transaction after an error (disk full or I/O error); nothing in it was saved"
        }
    }
}

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
