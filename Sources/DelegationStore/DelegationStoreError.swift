import CSQLite

/// What went wrong in the store, said so that an operator knows what happened and to which delegation.
public enum DelegationStoreError: Error, Sendable, CustomStringConvertible {
    /// The id names no delegation. The text is the seed tool's, which agents already match on.
    case notFound(id: String)
    /// A schema trigger refused the change; `message` is the database's own words.
    case illegalTransition(id: String, message: String)
    /// A worker wrote to a row it no longer holds: its lease expired and another worker took it,
    /// or an operator cancelled it. The write was refused, nothing changed.
    case leaseLost(id: String, worker: String, status: DelegationStatus, owner: String?)
    /// Only failed delegations can be retried by hand.
    case notRetryable(id: String, status: DelegationStatus)
    case invalidInput(String)
    /// Any other SQLite failure (busy past the timeout, disk full, read-only file, I/O error), with
    /// what the store was doing at the time.
    case database(SQLiteError, operation: String)
    case databaseMissing(path: String)
    case cannotOpen(path: String, reason: String)
    /// The file was migrated by a newer build; running older code on it could corrupt it.
    case unknownSchemaVersion(found: Int, known: Int)
    case migrationChanged(version: Int, name: String)
    case migrationFailed(version: Int, name: String, SQLiteError)
    case closed

    public var description: String {
        switch self {
        case .notFound(let id):
            "No delegation found with task_id \(id)"
        case .illegalTransition(let id, let message):
            "delegation \(id): \(message)"
        case .leaseLost(let id, let worker, let status, let owner):
            "delegation \(id): worker \(worker) no longer holds its lease (now \(status.rawValue)"
                + (owner.map { ", held by \($0)" } ?? "") + "); the write was refused"
        case .notRetryable(let id, let status):
            "delegation \(id) is \(status.rawValue): only failed delegations can be retried"
        case .invalidInput(let message):
            message
        case .database(let error, let operation):
            "\(Self.explain(error)) while \(operation)"
        case .databaseMissing(let path):
            "no delegation database at \(path) (run `delegation-admin migrate --db \(path)` to create one)"
        case .cannotOpen(let path, let reason):
            "cannot open delegation database \(path): \(reason)"
        case .unknownSchemaVersion(let found, let known):
            "the database has schema version \(found), newer than this build knows (\(known)); refusing to touch it"
        case .migrationChanged(let version, let name):
            "migration \(version) (\(name)) differs from the one applied to this database; migrations must never be edited once shipped"
        case .migrationFailed(let version, let name, let error):
            "migration \(version) (\(name)) failed: \(error)"
        case .closed:
            "the delegation store is closed"
        }
    }

    /// A failure that waiting can cure: the file stayed locked by another connection past the busy timeout,
    /// the disk is full, an I/O error, SQLite ran out of memory. A write that failed so may be tried again
    /// unchanged; every other failure (a lost lease, a refused transition, a closed store) is an answer.
    public var isTransient: Bool {
        guard case .database(let error, _) = self else { return false }
        return error.isBusy || error.isFull || error.isIOError || error.resultCode == SQLITE_NOMEM
            || error.resultCode == SQLITE_PROTOCOL
    }

    static func explain(_ error: SQLiteError) -> String {
        switch true {
        case error.isBusy:
            "the database stayed locked by another connection past the busy timeout: \(error)"
        case error.isFull:
            "the disk (or the database's page limit) is full, nothing was written: \(error)"
        case error.isReadOnly:
            "the database is read-only: \(error)"
        case error.isCorrupt:
            "the database file is corrupt or not a SQLite database: \(error)"
        default:
            "\(error)"
        }
    }

    /// Maps a failure inside an operation on delegation `id` to the error its caller should see.
    static func wrap(_ error: any Error, id: String?, operation: String) -> any Error {
        guard let sqlite = error as? SQLiteError else { return error }
        if sqlite.isTriggerAbort, let id {
            return DelegationStoreError.illegalTransition(id: id, message: sqlite.message)
        }
        return DelegationStoreError.database(sqlite, operation: operation)
    }
}
