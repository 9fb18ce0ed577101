import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One SQLite connection, used from one thread at a time (the store gives each its own thread).
///
/// The store's private layer: only `DelegationStore` (and tests, benchmarks and probes) import this
/// module; everyone else goes through the store's named operations.
///
/// Statements are prepared once and cached by their SQL text: the queue runs the same few
/// statements millions of times, and preparing is a large part of a small statement's cost.
public final class Database {
    public enum OpenMode: Sendable {
        /// Create the file (mode 0600) when it does not exist.
        case readWriteCreate
        /// The file must exist.
        case readWrite
        case readOnly
    }

    public let path: String
    let handle: OpaquePointer
    private var statementCache: [String: Statement] = [:]
    private let busyState: UnsafeMutablePointer<csqlite_busy_state>
    private let framesInLog: UnsafeMutablePointer<Int32>

    /// Lets another thread end this connection's waits for locks (see `LockWaits`).
    public var lockWaits: LockWaits { LockWaits(state: busyState) }

    public init(path: String, mode: OpenMode = .readWriteCreate, busyTimeout: Duration = .seconds(10)) throws(SQLiteError) {
        if mode == .readWriteCreate, path != ":memory:", !path.isEmpty {
            // SQLite would create it 0644; a queue's tasks and results are nobody else's business.
            let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
            if descriptor >= 0 { close(descriptor) }
        }
        var flags = SQLITE_OPEN_NOMUTEX
        switch mode {
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        var connection: OpaquePointer?
        let code = sqlite3_open_v2(path, &connection, flags, nil)
        guard code == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open database"
            let extended = connection.map { sqlite3_extended_errcode($0) } ?? code
            sqlite3_close_v2(connection)
            throw SQLiteError(extendedResultCode: extended, message: "\(message): \(path)")
        }
        self.path = path
        self.handle = connection
        sqlite3_extended_result_codes(connection, 1)
        let milliseconds = busyTimeout.milliseconds(clampedTo: 0...Int64(Int32.max))
        busyState = UnsafeMutablePointer<csqlite_busy_state>.allocate(capacity: 1)
        busyState.initialize(to: csqlite_busy_state(timeout: Int32(clamping: milliseconds), abandoned: 0))
        csqlite_set_busy_handler(connection, busyState)
        framesInLog = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        framesInLog.initialize(to: -1)
    }

    /// From now on this connection's commits never checkpoint: SQLite's default copies the log into the
    /// database inside the COMMIT that finds it past 1,000 pages, and the committing caller waits for the
    /// copy (at 1M rows beside `evict`: 100–130 ms, when the copy is a backlog that readers had held back).
    /// The connection then only notes the log's size (`takeFramesInLog`): another connection must
    /// checkpoint (`checkpoint(.passive)`), or the log grows without end. Attached databases' logs are still
    /// copied as SQLite's default does.
    public func leaveCheckpointsToAnotherConnection() {
        csqlite_note_wal_frames_in(handle, framesInLog)
    }

    /// Frames in the write-ahead log after this connection's latest commit, if it committed since the last
    /// call (nil: no commit since, or `leaveCheckpointsToAnotherConnection` not in effect).
    public func takeFramesInLog() -> Int? {
        let frames = framesInLog.pointee
        framesInLog.pointee = -1
        return frames < 0 ? nil : Int(frames)
    }

    public enum CheckpointMode: String, Sendable {
        /// Copies what it can without waiting for any lock (readers still using older pages keep those frames
        /// for a later one).
        case passive = "PRAGMA wal_checkpoint(PASSIVE)"
        /// Waits for writers and readers (up to the busy timeout), copies everything and empties the log file.
        case truncate = "PRAGMA wal_checkpoint(TRUNCATE)"
    }

    /// What a checkpoint reported.
    public struct CheckpointOutcome: Sendable, Equatable {
        /// Another connection kept it from running or finishing.
        public var busy: Bool
        public var logFrames: Int
        public var checkpointedFrames: Int
        /// Everything the log held was copied.
        public var copiedAll: Bool { !busy && checkpointedFrames >= logFrames }
    }

    /// `PRAGMA wal_checkpoint(…)`: copies the write-ahead log into the database.
    public func checkpoint(_ mode: CheckpointMode) throws(SQLiteError) -> CheckpointOutcome {
        let row = try queryFirst(mode.rawValue)
        return CheckpointOutcome(busy: (row?[0].int ?? 0) != 0, logFrames: row?[1].int ?? 0, checkpointedFrames: row?[2].int ?? 0)
    }

    /// Runs `body` waiting at most `limit` for another connection's lock, instead of the busy timeout: for
    /// work that can as well be done at the next chance. Only this connection's thread reads the limit.
    public func withLockWaitLimit<T>(_ limit: Duration, _ body: () throws -> T) rethrows -> T {
        let saved = busyState.pointee.timeout
        busyState.pointee.timeout = Int32(clamping: limit.milliseconds(clampedTo: 0...Int64(max(0, saved))))
        defer { busyState.pointee.timeout = saved }
        return try body()
    }

    deinit {
        statementCache.removeAll()
        sqlite3_close_v2(handle)
        busyState.deallocate()
        framesInLog.deallocate()
    }

    func lastError(code: Int32, sql: String?) -> SQLiteError {
        let extended = sqlite3_extended_errcode(handle)
        // The connection's last error can belong to another call when `code` came from elsewhere.
        let useExtended = (extended & 0xFF) == (code & 0xFF)
        return SQLiteError(
            extendedResultCode: useExtended ? extended : code,
            message: String(cString: sqlite3_errmsg(handle)),
            sql: sql)
    }

    // MARK: Running SQL

    /// Runs one or more statements without arguments (schema, pragmas, transaction control).
    public func execute(script sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard code == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(errorMessage)
            let extended = sqlite3_extended_errcode(handle)
            throw SQLiteError(
                extendedResultCode: (extended & 0xFF) == (code & 0xFF) ? extended : code, message: message, sql: sql)
        }
    }

    /// A prepared statement from the cache, bound to `arguments`.
    public func statement(_ sql: String, _ arguments: [any SQLiteBindable] = []) throws(SQLiteError) -> Statement {
        let statement: Statement
        if let cached = statementCache[sql] {
            statement = cached
        } else {
            statement = try Statement(database: self, sql: sql)
            statementCache[sql] = statement
        }
        try statement.bind(arguments)
        lastStatement = statement
        return statement
    }

    private var lastStatement: Statement?

    /// Virtual-machine steps the last statement run took (and resets the count): how much it read,
    /// for tests that a query's cost does not grow with rows it does not return.
    public var lastStatementSteps: Int {
        guard let handle = lastStatement?.handle else { return 0 }
        return Int(sqlite3_stmt_status(handle, SQLITE_STMTSTATUS_VM_STEP, 1))
    }

    /// Runs one statement; returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) -> Int {
        try execute(sql, arguments: arguments)
    }

    @discardableResult
    public func execute(_ sql: String, arguments: [any SQLiteBindable]) throws(SQLiteError) -> Int {
        let statement = try statement(sql, arguments)
        while try statement.step() {}
        sqlite3_reset(statement.handle)
        return Int(sqlite3_changes(handle))
    }

    /// Runs one statement and returns every row (for results known to be small, or RETURNING).
    public func query(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) -> [Row] {
        try query(sql, arguments: arguments)
    }

    public func query(_ sql: String, arguments: [any SQLiteBindable]) throws(SQLiteError) -> [Row] {
        try statement(sql, arguments).rows()
    }

    public func queryFirst(_ sql: String, _ arguments: any SQLiteBindable...) throws(SQLiteError) -> Row? {
        try queryFirst(sql, arguments: arguments)
    }

    public func queryFirst(_ sql: String, arguments: [any SQLiteBindable]) throws(SQLiteError) -> Row? {
        let statement = try statement(sql, arguments)
        defer { sqlite3_reset(statement.handle) }
        return try statement.step() ? statement.currentRow() : nil
    }

    /// Streams rows to `body` one at a time: for results of any size (export, eviction archives).
    public func forEachRow(
        _ sql: String, arguments: [any SQLiteBindable] = [], _ body: (Row) throws -> Void
    ) throws {
        let statement = try statement(sql, arguments)
        defer { sqlite3_reset(statement.handle) }
        while try statement.step() { try body(statement.currentRow()) }
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: Transactions

    public enum TransactionKind: String, Sendable {
        /// Takes the write lock at BEGIN, so the transaction never has to upgrade a read lock: the
        /// upgrade is what fails with SQLITE_BUSY regardless of busy_timeout under contention.
        case immediate = "BEGIN IMMEDIATE"
        /// A read transaction: one consistent snapshot for several statements.
        case deferred = "BEGIN DEFERRED"
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try begin(kind)
        do {
            let value = try body()
            try commit()
            return value
        } catch {
            if isInTransaction { try? rollback() }
            throw error
        }
    }

    // Transaction control through cached prepared statements: `sqlite3_exec` parses the text on every
    // call, and a queue runs these thousands of times a second.

    public func begin(_ kind: TransactionKind = .immediate) throws(SQLiteError) { try execute(kind.rawValue) }
    public func commit() throws(SQLiteError) { try execute("COMMIT") }
    public func rollback() throws(SQLiteError) { try execute("ROLLBACK") }

    /// `SAVEPOINT name`; `name` is the caller's constant (an identifier, never input).
    public func savepoint(_ name: StaticString) throws(SQLiteError) { try execute("SAVEPOINT \(name)") }
    public func release(_ name: StaticString) throws(SQLiteError) { try execute("RELEASE \(name)") }
    public func rollback(to name: StaticString) throws(SQLiteError) { try execute("ROLLBACK TO \(name)") }
}
