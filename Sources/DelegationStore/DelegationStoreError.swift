internal import SQLiteDatabase

/// What went wrong in the store, said so that an operator knows what happened and to which delegation.
///
/// Match on `code`, which is extensible (a new code never breaks a caller's `switch`):
///
///     catch let error as DelegationStoreError where error.code == .leaseLost { … }
///     catch DelegationStoreError.Code.notFound { … }
///
/// The message is the description; it names the delegation and, for database failures, what the store
/// was doing and SQLite's own words.
public struct DelegationStoreError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct of static values, as swift-server libraries do, not a closed enum.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The id names no delegation. The text is the seed tool's, which agents already match on.
        public static let notFound = Code("notFound")
        /// A schema trigger refused the change; the message is the database's own words.
        public static let illegalTransition = Code("illegalTransition")
        /// A worker wrote to a row it no longer holds (its lease expired and another worker took it, or
        /// an operator cancelled it). Nothing changed.
        public static let leaseLost = Code("leaseLost")
        /// Only failed delegations can be retried by hand.
        public static let notRetryable = Code("notRetryable")
        public static let invalidInput = Code("invalidInput")
        /// Another connection held the write lock past the busy timeout.
        public static let busy = Code("busy")
        /// The disk (or the database's page limit) is full; nothing was written.
        public static let diskFull = Code("diskFull")
        /// An I/O error or SQLite running out of memory.
        public static let ioError = Code("ioError")
        public static let readOnly = Code("readOnly")
        public static let corrupt = Code("corrupt")
        /// Any other SQLite failure.
        public static let database = Code("database")
        public static let databaseMissing = Code("databaseMissing")
        public static let cannotOpen = Code("cannotOpen")
        /// The file was migrated by a newer build; running older code on it could corrupt it.
        public static let unknownSchemaVersion = Code("unknownSchemaVersion")
        /// The file's schema is older than this build's and it was opened read-only (never migrated).
        public static let schemaOutOfDate = Code("schemaOutOfDate")
        public static let migrationChanged = Code("migrationChanged")
        public static let migrationFailed = Code("migrationFailed")
        public static let closed = Code("closed")

        /// `catch DelegationStoreError.Code.busy`.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? DelegationStoreError)?.code == code
        }
    }

    public let code: Code
    public let description: String
    /// The delegation the failure concerns, when there is one.
    public let delegationID: String?
    /// For `leaseLost`: the row's status and holder now.
    public let currentStatus: DelegationStatus?
    public let currentOwner: String?
    /// What the store's own layer reported (SQLite's error), for logs.
    public let underlying: (any Error & Sendable)?

    init(
        _ code: Code, _ description: String, delegationID: String? = nil, currentStatus: DelegationStatus? = nil,
        currentOwner: String? = nil, underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.description = description
        self.delegationID = delegationID
        self.currentStatus = currentStatus
        self.currentOwner = currentOwner
        self.underlying = underlying
    }

    /// A failure that waiting can cure: the file stayed locked past the busy timeout, the disk is full, an
    /// I/O error (or a file of the database could not be opened: no descriptor left). A write that failed
    /// so may be tried again unchanged; every other failure (a lost lease, a refused transition, a closed
    /// store) is an answer.
    public var isTransient: Bool { code == .busy || code == .diskFull || code == .ioError }

    // MARK: Making them

    public static func notFound(id: String) -> DelegationStoreError {
        DelegationStoreError(.notFound, "No delegation found with task_id \(id)", delegationID: id)
    }

    public static func invalidInput(_ message: String) -> DelegationStoreError {
        DelegationStoreError(.invalidInput, message)
    }

    static func illegalTransition(id: String, message: String) -> DelegationStoreError {
        DelegationStoreError(.illegalTransition, "delegation \(id): \(message)", delegationID: id)
    }

    static func leaseLost(id: String, worker: String, status: DelegationStatus, owner: String?) -> DelegationStoreError {
        DelegationStoreError(
            .leaseLost,
            "delegation \(id): worker \(worker) no longer holds its lease (now \(status.rawValue)"
                + (owner.map { ", held by \($0)" } ?? "") + "); the write was refused",
            delegationID: id, currentStatus: status, currentOwner: owner)
    }

    static func notRetryable(id: String, status: DelegationStatus) -> DelegationStoreError {
        DelegationStoreError(
            .notRetryable, "delegation \(id) is \(status.rawValue): only failed delegations can be retried",
            delegationID: id, currentStatus: status)
    }

    static func databaseMissing(path: String) -> DelegationStoreError {
        DelegationStoreError(
            .databaseMissing, "no delegation database at \(path) (run `delegation-admin migrate --db \(path)` to create one)")
    }

    static func cannotOpen(path: String, reason: String) -> DelegationStoreError {
        DelegationStoreError(.cannotOpen, "cannot open delegation database \(path): \(reason)")
    }

    static func unknownSchemaVersion(found: Int, known: Int) -> DelegationStoreError {
        DelegationStoreError(
            .unknownSchemaVersion,
            "the database has schema version \(found), newer than this build knows (\(known)); refusing to touch it")
    }

    static func schemaOutOfDate(path: String, found: Int, known: Int) -> DelegationStoreError {
        DelegationStoreError(
            .schemaOutOfDate,
            "the database \(path) has schema version \(found), older than this build's (\(known)); it was opened read-only and is never migrated so: run `delegation-admin migrate --db \(path)`")
    }

    static func migrationChanged(version: Int, name: String) -> DelegationStoreError {
        DelegationStoreError(
            .migrationChanged,
            "migration \(version) (\(name)) differs from the one applied to this database; migrations must never be edited once shipped")
    }

    static func migrationFailed(version: Int, name: String, _ error: SQLiteError) -> DelegationStoreError {
        DelegationStoreError(.migrationFailed, "migration \(version) (\(name)) failed: \(error)", underlying: error)
    }

    static let closed = DelegationStoreError(.closed, "the delegation store is closed")

    /// A SQLite failure while `operation`, classified by its result code.
    static func database(_ error: SQLiteError, operation: String) -> DelegationStoreError {
        let (code, explanation): (Code, String) =
            switch error.code {
            case .busy, .locked: (.busy, "the database stayed locked by another connection past the busy timeout")
            case .full: (.diskFull, "the disk (or the database's page limit) is full, nothing was written")
            case .readOnly: (.readOnly, "the database is read-only")
            // A file the database needs (its -wal or -shm, a lock file) could not be opened: no descriptor
            // left — which waiting cures, as it cures an I/O error — or its permissions.
            case .cantOpen: (.ioError, "a file of the database could not be opened (permissions, or no file descriptor left)")
            case .corrupt, .notADatabase: (.corrupt, "the database file is corrupt or not a SQLite database")
            case .ioError, .noMemory, .protocol: (.ioError, "an I/O error")
            default: (.database, "a database error")
            }
        return DelegationStoreError(code, "\(explanation): \(error) while \(operation)", underlying: error)
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
