import Foundation
import Logging

/// The durable delegation queue: one SQLite file, a writer thread that group-commits, a reader thread.
///
/// Safe to share between tasks. Several processes may open the same file; every write starts with
/// `BEGIN IMMEDIATE` and waits up to the busy timeout for the lock, so normal contention never
/// surfaces as SQLITE_BUSY.
public final class DelegationStore: Sendable {
    public let configuration: StoreConfiguration
    private let logger: Logger
    private let writer: DatabaseThread<any WriteOperation>
    private let reader: DatabaseThread<ReadJob>
    /// Transactions and operations the writer committed (operations ÷ transactions = group-commit factor).
    public let writerStatistics = WriterStatistics()

    public init(_ configuration: StoreConfiguration, logger: Logger = Logger(label: "delegation.store")) throws {
        self.configuration = configuration
        self.logger = logger
        let writeConnection = try Self.connect(configuration, writable: true)
        let readConnection = try Self.connect(configuration, writable: false)
        let statistics = writerStatistics
        writer = DatabaseThread(name: "delegation-store-writer", database: writeConnection) { database, jobs in
            GroupCommit.run(jobs, on: database, statistics: statistics)
        }
        reader = DatabaseThread(readerNamed: "delegation-store-reader", database: readConnection)
    }

    /// Finishes queued work and closes both connections.
    public func close() async {
        await writer.stop()
        await reader.stop()
    }

    // MARK: Running operations

    /// Runs `body` as one atomic write. Concurrent calls may share a COMMIT (group commit), each in
    /// its own savepoint: a failing one is rolled back alone.
    @discardableResult
    public func write<T: Sendable>(
        _ operation: String, id: String? = nil, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
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
    public func read<T: Sendable>(
        _ operation: String = "reading", _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        do {
            return try await reader.run(body)
        } catch {
            throw DelegationStoreError.wrap(error, id: nil, operation: operation)
        }
    }

    // MARK: The tool's interface (seed-compatible JSON)

    /// `delegate_to_workspace`: checks the roles, stores a pending delegation, answers at once.
    public func delegate(workspaceID: String, task: String, maxAttempts: Int? = nil) async throws -> JSONValue {
        let roles = configuration.roles
        guard RBAC.mayDelegate(roles) else {
            logger.warning(
                "delegation denied",
                metadata: ["event": "denied", "workspace_id": "\(workspaceID)", "roles": "\(roles)"])
            return ToolAnswer.denied(roles: roles)
        }
        let workspaceID = workspaceID.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !workspaceID.isEmpty else { throw DelegationStoreError.invalidInput("workspace_id must not be empty") }
        guard !task.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DelegationStoreError.invalidInput("task must not be empty")
        }
        if let maxAttempts, maxAttempts < 1 {
            throw DelegationStoreError.invalidInput("max attempts must be at least 1, not \(maxAttempts)")
        }
        let source = configuration.sourceWorkspaceID
        let delegation = try await write("delegating to \(workspaceID)") { database in
            try Transitions.enqueue(
                database, workspaceID: workspaceID, task: task, sourceWorkspaceID: source, maxAttempts: maxAttempts)
        }
        logger.info("delegated", metadata: ["delegation_id": "\(delegation.id)", "workspace_id": "\(workspaceID)"])
        return ToolAnswer.delegated(id: delegation.id, workspaceID: workspaceID)
    }

    /// `check_delegation_status(task_id)`.
    public func checkStatus(taskID: String) async throws -> JSONValue {
        guard let delegation = try await delegation(id: taskID) else { return ToolAnswer.notFound(id: taskID) }
        return ToolAnswer.status(of: delegation)
    }

    /// `check_delegation_status()`: every live delegation and the most recent finished ones
    /// (the seed kept 100), oldest first.
    public func listAll(recentFinished: Int = 100) async throws -> JSONValue {
        let delegations = try await read("listing delegations") { database in
            try database.query(
                """
                SELECT \(Delegation.columns) FROM (
                    SELECT * FROM delegations WHERE status IN ('pending', 'in_progress', 'queued')
                    UNION ALL
                    SELECT * FROM (
                        SELECT * FROM delegations WHERE status IN ('completed', 'failed', 'cancelled')
                        ORDER BY finished_at DESC, id DESC LIMIT ?))
                ORDER BY created_at, id
                """, recentFinished
            ).map(Delegation.init(row:))
        }
        return ToolAnswer.list(delegations)
    }

    // MARK: Reading

    public func delegation(id: String) async throws -> Delegation? {
        try await read("reading delegation \(id)") { database in
            try database.queryFirst("SELECT \(Delegation.columns) FROM delegations WHERE id = ?", id)
                .map(Delegation.init(row:))
        }
    }

    public func events(delegationID: String) async throws -> [DelegationEvent] {
        try await read("reading the events of \(delegationID)") { database in
            try database.query(
                "SELECT \(DelegationEvent.columns) FROM delegation_events WHERE delegation_id = ? ORDER BY id",
                delegationID
            ).map(DelegationEvent.init(row:))
        }
    }

    // MARK: Worker operations (each one transaction)

    public func claim(worker: String, limit: Int, lease: Duration) async throws -> [Delegation] {
        let source = configuration.sourceWorkspaceID
        return try await write("claiming for worker \(worker)") { database in
            try Transitions.claim(database, worker: worker, limit: limit, lease: lease, sourceWorkspaceID: source)
        }
    }

    /// Extends the leases `worker` holds (only those in `ids`, when given); returns the ids still held.
    public func renewLeases(worker: String, lease: Duration, ids: [String]? = nil) async throws -> Set<String> {
        try await write("renewing the leases of worker \(worker)") { database in
            try Transitions.renewLeases(database, worker: worker, lease: lease, ids: ids)
        }
    }

    public func complete(
        id: String, worker: String, result: String, remoteState: String? = nil, steps: [Transitions.Step] = []
    ) async throws {
        try await write("completing delegation \(id)", id: id) { database in
            try Transitions.complete(database, id: id, worker: worker, result: result, remoteState: remoteState, steps: steps)
        }
    }

    public func fail(
        id: String, worker: String, error: String, remoteState: String? = nil, steps: [Transitions.Step] = []
    ) async throws {
        try await write("failing delegation \(id)", id: id) { database in
            try Transitions.fail(database, id: id, worker: worker, error: error, remoteState: remoteState, steps: steps)
        }
    }

    public func scheduleRetry(
        id: String, worker: String, error: String, after delay: Duration, steps: [Transitions.Step] = []
    ) async throws {
        try await write("scheduling a retry of delegation \(id)", id: id) { database in
            try Transitions.scheduleRetry(database, id: id, worker: worker, error: error, delay: delay, steps: steps)
        }
    }

    public func markQueued(id: String, worker: String, detail: String, steps: [Transitions.Step] = []) async throws {
        try await write("marking delegation \(id) queued", id: id) { database in
            try Transitions.markQueued(database, id: id, worker: worker, detail: detail, steps: steps)
        }
    }

    /// The peer runs the task: the row lets go of its lease and is polled from `nextPoll` on.
    public func handOver(
        id: String, worker: String, remoteTaskID: String, peerURL: String, state: String, nextPoll: Duration,
        steps: [Transitions.Step] = []
    ) async throws {
        try await write("handing delegation \(id) over to its peer", id: id) { database in
            try Transitions.handOver(
                database, id: id, worker: worker, remoteTaskID: remoteTaskID, peerURL: peerURL, state: state,
                nextPoll: nextPoll, steps: steps)
        }
    }

    /// A followed row after one poll that did not end it: parked until `nextPoll`.
    public func park(
        id: String, worker: String, after poll: Transitions.Poll, peerURL: String? = nil, nextPoll: Duration,
        steps: [Transitions.Step] = []
    ) async throws {
        try await write("parking delegation \(id) until its next poll", id: id) { database in
            try Transitions.park(
                database, id: id, worker: worker, after: poll, peerURL: peerURL, nextPoll: nextPoll, steps: steps)
        }
    }

    /// Fails queued rows accepted before `acceptedBefore` whose outcome never appeared; returns their ids.
    @discardableResult
    public func expireQueued(acceptedBefore: String, reason: String) async throws -> [String] {
        try await write("failing queued delegations past their deadline") { database in
            try Transitions.expireQueued(database, acceptedBefore: acceptedBefore, reason: reason)
        }
    }

    @discardableResult
    public func releaseLeases(worker: String) async throws -> [String] {
        try await write("releasing the leases of worker \(worker)") { database in
            try Transitions.releaseLeases(database, worker: worker)
        }
    }

    @discardableResult
    public func resolveQueued(id: String, outcome: Transitions.QueuedOutcome) async throws -> Bool {
        try await write("resolving queued delegation \(id)", id: id) { database in
            try Transitions.resolveQueued(database, id: id, outcome: outcome)
        }
    }

    public func recordEvent(id: String, kind: String, worker: String?, detail: String?) async throws {
        try await write("recording a \(kind) event for delegation \(id)", id: id) { database in
            try Transitions.recordEvent(database, id: id, kind: kind, worker: worker, detail: detail)
        }
    }

    // MARK: Operator operations

    public func cancel(id: String, reason: String = "cancelled by operator") async throws {
        try await write("cancelling delegation \(id)", id: id) { database in
            try Transitions.cancel(database, id: id, reason: reason)
        }
    }

    public func retry(id: String, by who: String = "operator") async throws {
        try await write("retrying delegation \(id)", id: id) { database in
            try Transitions.retry(database, id: id, by: who)
        }
    }

    // MARK: Opening

    static func connect(_ configuration: StoreConfiguration, writable: Bool) throws -> Database {
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
        let database: Database
        do {
            database = try Database(
                path: path, mode: writable && configuration.createIfMissing ? .readWriteCreate : .readWrite,
                busyTimeout: configuration.busyTimeout)
        } catch {
            throw DelegationStoreError.cannotOpen(path: path, reason: error.description)
        }
        do {
            // Sorting inside the claim and list queries uses temporary B-trees; in memory rather than in
            // temporary files, which made every claim and complete several times slower.
            try database.execute(script: "PRAGMA temp_store = MEMORY")
            if writable {
                let mode = try database.queryFirst("PRAGMA journal_mode = WAL")?[0].string
                guard mode == "wal" else {
                    throw DelegationStoreError.cannotOpen(
                        path: path, reason: "could not switch to WAL (journal mode is \(mode ?? "unknown"))")
                }
                try database.execute(
                    script: "PRAGMA synchronous = \(configuration.durability.rawValue); PRAGMA foreign_keys = ON")
                try Migrator.migrate(database)
            } else {
                try database.execute(script: "PRAGMA query_only = ON")
            }
        } catch let error as SQLiteError {
            if error.isCorrupt {
                throw DelegationStoreError.cannotOpen(path: path, reason: "not a SQLite database, or corrupt: \(error)")
            }
            throw DelegationStoreError.database(error, operation: "opening \(path)")
        }
        return database
    }
}
