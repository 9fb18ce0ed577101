import Synchronization
internal import SQLiteDatabase

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
