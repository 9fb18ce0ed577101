import Foundation
internal import SQLiteDatabase

/// What operators ask: lists, one delegation in full, the event log, exports, statistics, invariants.
/// All of it reads a WAL snapshot and never waits for (or holds up) a worker.
extension DelegationStore {
    /// The delegations matching `query`, in its order, at most `query.limit`.
    public func list(_ query: DelegationQuery) async throws -> [Delegation] {
        try await read("listing delegations") { try Queries.list($0, query) }
    }

    /// One delegation, its events and its mirror calls, read in one snapshot; nil for an unknown id.
    public func detail(id: String) async throws -> DelegationDetail? {
        try await snapshot("showing delegation \(id)") { try Queries.detail($0, id: id) }
    }

    /// The event log across delegations (with each one's workspace).
    /// - Throws: `DelegationStoreError` `notFound` when `query.delegationID` names no delegation.
    public func events(_ query: EventQuery) async throws -> [WorkspaceEvent] {
        try await read("reading events") { try Queries.events($0, query) }
    }

    /// Streams every delegation matching `query` (with its events when `withEvents`) to `body`, from one
    /// snapshot, one row at a time: memory stays flat however large the table. Returns how many.
    @discardableResult
    public func export(
        _ query: DelegationQuery, withEvents: Bool,
        _ body: @escaping @Sendable (Delegation, [DelegationEvent]?) throws -> Void
    ) async throws -> Int {
        try await snapshot("exporting delegations") { database in
            var count = 0
            try Queries.forEach(database, query, withEvents: withEvents) { delegation, events in
                try body(delegation, events)
                count += 1
            }
            return count
        }
    }

    /// Queue health over the window starting at `windowStart` (a schema timestamp).
    public func statistics(windowStart: String) async throws -> QueueStatistics {
        let now = Timestamp.string(from: Date())
        return try await snapshot("computing stats") { try Statistics.compute($0, windowStart: windowStart, now: now) }
    }

    /// How long `check` waits for an indexer round to end before checking the search index beside it.
    static let checkWaitForTheIndexer = Duration.seconds(3)

    /// Every invariant the queue promises, checked on the file as it is.
    public func check(_ thresholds: CheckThresholds) async throws -> [CheckFinding] {
        let findings = try await snapshot("checking the database") { try Checks.findings($0, thresholds) }
        // Apart, and never a throw: the search index file is derived data, and an error reading it (a damaged
        // page inside the database's snapshot failed that transaction) must not cost the database's findings.
        do {
            // Under the indexer's lock when it comes within a few seconds: a statement takes its snapshots of
            // the two files one after the other, and an indexer's commits in between would look like a restore.
            // Without it (a long rebuild takes it round after round), checked as it is.
            let finding = try await read("checking the search index") { database in
                var failure: (any Error)?
                // A lock file that cannot be made (a read-only directory) is as good as a busy lock.
                let locked = try? SearchIndex.withIndexerLock(databasePath: database.path, waiting: Self.checkWaitForTheIndexer) {
                    () -> CheckFinding? in
                    do { return try Checks.searchIndex(database) } catch { failure = error; return nil }
                }
                if let failure { throw failure }
                if let finding = locked ?? nil { return finding }
                return try Checks.searchIndex(database)
            }
            return findings + [finding]
        } catch {
            return findings + [CheckFinding(name: "search_index", ok: false, detail: "could not check the search index: \(error)")]
        }
    }

    /// failed → pending for every delegation that failed at or after `finishedSince`, in one transaction.
    /// Returns their ids, oldest failure first.
    public func retryFailed(finishedSince: String?, by who: String) async throws -> [String] {
        try await write("retrying failed delegations") { database in
            let ids = try Queries.ids(
                database, DelegationQuery(statuses: [.failed], finishedSince: finishedSince ?? "", newestFirst: false))
            for id in ids { try Transitions.attributed(id) { try Transitions.retry(database, id: id, by: who) } }
            return ids
        }
    }
}
