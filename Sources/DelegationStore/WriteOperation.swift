import Synchronization
internal import SQLiteDatabase

/// A write waiting for the writer thread: run inside the batch's transaction, answered after COMMIT.
protocol WriteOperation: Sendable {
    /// Runs the operation's statements. False when it threw: its changes must be rolled back.
    func perform(_ database: Database) -> Bool
    /// Answers the caller once the transaction ended; `commitError` when the batch did not commit.
    func finish(commitError: (any Error)?)
}
