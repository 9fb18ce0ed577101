import Foundation
internal import SQLiteDatabase

/// Keeping the file tidy: eviction of finished history (optionally archived), VACUUM, checkpoints.
extension DelegationStore {
    /// What `evict(keep:olderThan:…)` would remove now, and what it would hold back.
    public func evictionPlan(keep: Int?, olderThan: String?) async throws -> EvictionPlan {
        try await read("planning eviction") { database in
            guard let cutoff = try Eviction.cutoff(database, keep: keep, olderThan: olderThan) else {
                return EvictionPlan(evictable: 0, heldBack: 0)
            }
            return try Eviction.plan(database, before: cutoff)
        }
    }

    /// The delegations `evict` would remove now, oldest finished first (at most `limit`).
    public func evictionCandidates(keep: Int?, olderThan: String?, limit: Int) async throws -> [Delegation] {
        try await read("listing eviction candidates") { database in
            guard let cutoff = try Eviction.cutoff(database, keep: keep, olderThan: olderThan) else { return [] }
            return try Eviction.batch(database, before: cutoff, limit: limit).compactMap { try Queries.delegation(database, id: $0) }
        }
    }

    /// The gap eviction leaves between two batches for other writers to take the lock.
    static let evictionPause = Duration.milliseconds(2)

    /// Deletes finished delegations beyond the newest `keep` and/or finished before `olderThan`, oldest
    /// first, with their events, in batches of `batchSize` — one short write transaction each, so workers
    /// are never held up long. Never a live row, never one whose mirror is undelivered.
    ///
    /// `archive` (when given) receives each batch inside its transaction, before the delete: if it throws,
    /// that batch is not deleted. `progress` hears the running total after each batch; `shouldStop` (or
    /// cancellation) ends it between two batches. Returns how many went.
    @discardableResult
    public func evict(
        keep: Int?, olderThan: String?, batchSize: Int = 50,
        archive: (@Sendable ([ArchivedDelegation]) throws -> Void)? = nil,
        progress: (@Sendable (Int) -> Void)? = nil,
        stopWhen shouldStop: (@Sendable () -> Bool)? = nil
    ) async throws -> Int {
        guard let cutoff = try await read("planning eviction", { try Eviction.cutoff($0, keep: keep, olderThan: olderThan) })
        else { return 0 }
        var total = 0
        while !(shouldStop?() ?? false) && !Task.isCancelled {
            let deleted = try await write("evicting finished delegations") { database -> Int in
                let ids = try Eviction.batch(database, before: cutoff, limit: batchSize)
                if let archive, !ids.isEmpty {
                    try archive(try ids.compactMap { id in
                        try Queries.delegation(database, id: id).map {
                            ArchivedDelegation(delegation: $0, events: try Queries.events(database, delegationID: id))
                        }
                    })
                }
                return try Eviction.delete(database, ids: ids)
            }
            if deleted == 0 { return total }
            total += deleted
            progress?(total)
            // SQLite's lock is not fair: right after its COMMIT this process would take the lock again before
            // a worker's busy handler (polling every millisecond) looks, batch after batch.
            try? await Task.sleep(for: Self.evictionPause)
        }
        return total
    }

    /// Rebuilds the file to return the space freed by evictions, then truncates the WAL. Holds the write
    /// lock for the whole rebuild (workers wait up to their busy timeout).
    public func vacuum() async throws -> Checkpoint {
        try await maintenance("vacuum") { database in
            try database.execute(script: "VACUUM")
            return try Self.checkpoint(database)
        }
    }

    /// Copies the WAL into the database file and truncates it.
    public func checkpoint() async throws -> Checkpoint {
        try await maintenance("checkpoint") { try Self.checkpoint($0) }
    }

    /// The migrations applied to the file, in order.
    public func appliedMigrations() async throws -> [AppliedMigration] {
        try await read("reading schema_migrations") { try Migrator.appliedMigrations($0) }
    }

    /// The file's size and its WAL's.
    public var sizes: DatabaseSizes { DatabaseSizes(path: configuration.path) }

    private static func checkpoint(_ database: Database) throws -> Checkpoint {
        let outcome = try database.checkpoint(.truncate)
        return Checkpoint(busy: outcome.busy, walFrames: outcome.logFrames, checkpointedFrames: outcome.checkpointedFrames)
    }

    /// VACUUM and checkpoints cannot run inside the writer's transactions: a connection of their own,
    /// on the reader's thread (nothing else runs there meanwhile).
    private func maintenance<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard configuration.access == .readWrite else {
            throw DelegationStoreError(.readOnly, "the store was opened read-only; \(operation) needs to write")
        }
        let configuration = self.configuration
        return try await read(operation) { _ in
            let database = try Database(path: configuration.path, mode: .readWrite, busyTimeout: configuration.busyTimeout)
            return try body(database)
        }
    }
}
