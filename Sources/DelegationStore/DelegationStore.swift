import Foundation
import Logging
import Synchronization
package import SQLiteDatabase

/// The durable delegation queue, and the only door into it.
///
/// Every operation the worker, the admin CLI, the tool and the MCP server perform is a named method
/// (grouped by who calls it: `DelegationStore+Tool`, `+Worker`, `+Mirror`, `+Inspection`,
/// `+Maintenance`), takes and returns plain `Sendable` values, decides its own transaction, and
/// throws `DelegationStoreError`. No SQLite type appears in a public signature, so a second backend
/// (PostgreSQL, for deployments beyond one machine) can stand behind the same operations.
///
/// This one is SQLite: one file, a writer thread that group-commits, a reader thread, an indexer thread
/// that keeps the search index (a second file, `SearchIndex`) out of the writer's way, and a checkpointer
/// thread that keeps copying the log into the database out of the writer's way too (`Checkpointer`). Safe to share
/// between tasks. Several processes may open the same file; every write starts with `BEGIN IMMEDIATE`
/// and waits up to the busy timeout for the lock, so normal contention never surfaces as SQLITE_BUSY.
public final class DelegationStore: Sendable {
    public let configuration: StoreConfiguration
    let logger: Logger
    /// Nil when opened read-only.
    private let writer: DatabaseThread<any WriteOperation>?
    private let writerLockWaits: LockWaits?
    /// Set before the connections close: the lock-wait handle is not used after that.
    private let closing = Mutex(false)
    private let reader: DatabaseThread<ReadJob>
    /// Nil when opened read-only. Its jobs are never submitted: it catches up each time it has been idle.
    private let indexer: DatabaseThread<ReadJob>?
    private let indexerStopping = StopFlag()
    /// Nil when opened read-only. Copies the log into the database for the writer, so that no write waits
    /// for that copy (SQLite's default runs it inside the COMMIT that finds the log past 1,000 pages).
    private let checkpointer: Checkpointer?
    /// Transactions and operations the writer committed (operations ÷ transactions = group-commit factor).
    public let writerStatistics = WriterStatistics()
    /// The migrations this open applied (empty when the schema was current, and always when read-only).
    public let migratedAtOpen: [Int]

    /// Opens (and, read-write, creates and migrates) the database.
    /// - Throws: `DelegationStoreError`: `databaseMissing`, `cannotOpen`, `corrupt`, `unknownSchemaVersion`,
    ///   `schemaOutOfDate` (read-only on an old schema), `migrationChanged`, `migrationFailed`, `busy`.
    public init(_ configuration: StoreConfiguration, logger: Logger = Logger(label: "delegation.store")) throws {
        self.configuration = configuration
        self.logger = logger
        let statistics = writerStatistics
        // Every connection first, then the threads: an open that fails leaves no thread behind.
        let writable = configuration.access == .readWrite
        let (writeConnection, migrated) = writable ? try Self.connect(configuration, .writer) : (nil, [])
        // Its own connection, so that neither the index file's lock nor its merges are ever the writer's.
        let indexConnection = writable ? try Self.connect(configuration, .indexer, logger: logger).database : nil
        let checkpointConnection = writable && configuration.path != ":memory:" ? try Self.connect(configuration, .checkpointer).database : nil
        let readConnection = try Self.connect(configuration, .reader).database
        migratedAtOpen = migrated
        writerLockWaits = writeConnection?.lockWaits
        let logger = logger
        if let checkpointConnection {
            checkpointer = Checkpointer(
                database: checkpointConnection, restartEvery: configuration.logRestartPages, statistics: statistics, logger: logger)
        } else {
            checkpointer = nil
        }
        if let writeConnection {
            let checkpointer = checkpointer
            if checkpointer != nil { writeConnection.leaveCheckpointsToAnotherConnection() }
            writer = DatabaseThread(name: "delegation-store-writer", database: writeConnection) { database, jobs in
                GroupCommit.run(jobs, on: database, statistics: statistics)
                checkpointer?.afterCommit(on: database, copyHere: true)
            }
        } else {
            writer = nil
        }
        let stopping = indexerStopping
        if let indexConnection {
            let checkpointer = checkpointer
            if checkpointer != nil { indexConnection.leaveCheckpointsToAnotherConnection() }
            indexer = DatabaseThread(
                name: "delegation-store-indexer", database: indexConnection, idle: SearchIndex.interval,
                onIdle: { database in
                    SearchIndex.catchUpAll(database, stopping: stopping, statistics: statistics, logger: logger) {
                        checkpointer?.afterCommit(on: database, copyHere: false)
                    }
                }
            ) { _, _ in }
        } else {
            indexer = nil
        }
        reader = DatabaseThread(readerNamed: "delegation-store-reader", database: readConnection)
    }

    /// From now on, a write waits for no other process's lock: if the file is locked it fails at once with
    /// a `busy` error instead of waiting out the busy timeout. For a shutdown whose grace is spent.
    public func stopWaitingForLocks() {
        closing.withLock { closing in if !closing { writerLockWaits?.abandon() } }
    }

    /// Writes wait for other processes' locks again (up to the busy timeout).
    public func resumeWaitingForLocks() {
        closing.withLock { closing in if !closing { writerLockWaits?.restore() } }
    }

    /// Finishes queued work (the indexer only its current batch) and closes every connection.
    public func close() async {
        closing.withLock { $0 = true }
        indexerStopping.set()
        await indexer?.stop()
        await writer?.stop()
        await checkpointer?.stop()
        await reader.stop()
    }

    // MARK: Running operations (the store's own: `package` only so tests and benchmarks can reach raw SQL)

    /// Runs `body` as one atomic write. Concurrent calls may share a COMMIT (group commit), each in
    /// its own savepoint: a failing one is rolled back alone.
    @discardableResult
    package func write<T: Sendable>(
        _ operation: String, id: String? = nil, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        guard let writer else {
            throw DelegationStoreError(.readOnly, "the store was opened read-only; \(operation) needs to write")
        }
        do {
            return try await withCheckedThrowingContinuation { continuation in
                let pending = PendingWrite(body: body, continuation: continuation)
                if !writer.submit(pending) { pending.finish(commitError: DelegationStoreError.closed) }
            }
        } catch {
            throw DelegationStoreError.wrap(error, id: id, operation: operation)
        }
    }

    /// Runs `body` on the read connection (a WAL snapshot; never blocks or is blocked by writers).
    package func read<T: Sendable>(
        _ operation: String = "reading", _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        do {
            return try await reader.run(body)
        } catch {
            throw DelegationStoreError.wrap(error, id: nil, operation: operation)
        }
    }

    /// Runs `body` in one read transaction: several statements, one snapshot.
    package func snapshot<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await read(operation) { database in try database.transaction(.deferred) { try body(database) } }
    }

    // MARK: Opening

    /// What a connection is for.
    enum Role {
        /// Migrates; writes the database only (never the search index: its transactions would take that file's lock).
        case writer
        /// Writes the search index file (creating it when missing) and takes rows off its queue.
        case indexer
        /// Reads both files.
        case reader
        /// Checkpoints the database's log for the writer (`Checkpointer`).
        case checkpointer
    }

    /// A connection set up for the store; the writer migrates first (the versions it applied are returned).
    static func connect(
        _ configuration: StoreConfiguration, _ role: Role, logger: Logger = Logger(label: "delegation.store")
    ) throws -> (database: Database, migrated: [Int]) {
        let writable = role != .reader
        let path = configuration.path
        if path != ":memory:" {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                throw DelegationStoreError.cannotOpen(path: path, reason: "directory \(directory) does not exist")
            }
            if !configuration.createIfMissing, !FileManager.default.fileExists(atPath: path) {
                throw DelegationStoreError.databaseMissing(path: path)
            }
        }
        let mode: Database.OpenMode =
            configuration.access == .readOnly ? .readOnly
            : writable && configuration.createIfMissing ? .readWriteCreate : .readWrite
        let database: Database
        do {
            database = try Database(path: path, mode: mode, busyTimeout: configuration.busyTimeout)
        } catch {
            throw DelegationStoreError.cannotOpen(path: path, reason: error.description)
        }
        var migrated: [Int] = []
        do {
            // Sorting inside the claim and list queries uses temporary B-trees; in memory rather than in
            // temporary files, which made every claim and complete several times slower.
            try database.execute(script: "PRAGMA temp_store = MEMORY")
            if role == .writer {
                let mode = try database.queryFirst("PRAGMA journal_mode = WAL")?[0].string
                guard mode == "wal" else {
                    throw DelegationStoreError.cannotOpen(
                        path: path, reason: "could not switch to WAL (journal mode is \(mode ?? "unknown"))")
                }
                try database.execute(
                    script: "PRAGMA synchronous = \(configuration.durability.rawValue); PRAGMA foreign_keys = ON")
                migrated = try Migrator.migrate(database)
            } else if role == .indexer {
                try database.execute(script: "PRAGMA synchronous = \(configuration.durability.rawValue)")
                // A damaged index file must not keep the queue from working: without it searches scan, and
                // `check` says what to do. (An in-memory database has no file to put one beside.)
                do {
                    guard path != ":memory:" else { return (database, []) }
                    try SearchIndex.attach(database, databasePath: path, create: true)
                    // At once when it can (a new file is searchable sooner); else the indexer's first round does it.
                    _ = try? database.withLockWaitLimit(.milliseconds(100)) { try SearchIndex.prepare(database, logger: logger) }
                } catch {
                    logger.warning(
                        "the search index is unusable; searches scan until it is deleted (it is then rebuilt)",
                        metadata: ["file": "\(SearchIndex.path(forDatabaseAt: path))", "error": "\(error)"])
                }
            } else if role == .checkpointer {
                // Nothing to set: it only runs PASSIVE checkpoints, which take no lock a writer waits for.
            } else {
                try database.execute(script: "PRAGMA query_only = ON")
                if configuration.access == .readOnly {
                    // Never migrated here: refused when older or newer than this build.
                    let applied = try Migrator.appliedMigrations(database)
                    try Migrator.verify(applied, against: Migration.all)
                    if applied.count < Migration.all.count {
                        throw DelegationStoreError.schemaOutOfDate(
                            path: path, found: applied.map(\.version).max() ?? 0, known: Migration.all.last?.version ?? 0)
                    }
                }
                // Missing until a read-write open creates it: searches then match every row on its text.
                if path != ":memory:" { _ = try? SearchIndex.attach(database, databasePath: path, create: false) }
            }
        } catch let error as SQLiteError {
            if error.isCorrupt {
                throw DelegationStoreError(
                    .corrupt, "cannot open delegation database \(path): not a SQLite database, or corrupt: \(error)",
                    underlying: error)
            }
            throw DelegationStoreError.database(error, operation: "opening \(path)")
        }
        return (database, migrated)
    }
}
