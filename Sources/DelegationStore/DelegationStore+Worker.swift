internal import SQLiteDatabase

/// What a worker does to the rows it claims. Each call is one transaction; a worker's writes are guarded
/// by its lease and throw `DelegationStoreError` `leaseLost` when another worker (or an operator) has the
/// row now. A write that fails for a transient reason (`isTransient`) changed nothing and may be repeated.
extension DelegationStore {
    /// Claims up to `limit` rows under a lease: due pending rows, rows whose lease expired (taken over),
    /// and followed rows due for a poll. Oldest due first.
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

    /// in_progress → completed, with the steps that led there.
    public func complete(
        id: String, worker: String, result: String, remoteState: String? = nil, steps: [DelegationStep] = []
    ) async throws {
        try await write("completing delegation \(id)", id: id) { database in
            try Transitions.complete(database, id: id, worker: worker, result: result, remoteState: remoteState, steps: steps)
        }
    }

    /// in_progress → failed (the error text is capped at `TextLimit.error`).
    public func fail(
        id: String, worker: String, error: String, remoteState: String? = nil, steps: [DelegationStep] = []
    ) async throws {
        try await write("failing delegation \(id)", id: id) { database in
            try Transitions.fail(database, id: id, worker: worker, error: error, remoteState: remoteState, steps: steps)
        }
    }

    /// in_progress → pending, due again after `delay`; the attempt stays counted.
    public func scheduleRetry(
        id: String, worker: String, error: String, after delay: Duration, steps: [DelegationStep] = []
    ) async throws {
        try await write("scheduling a retry of delegation \(id)", id: id) { database in
            try Transitions.scheduleRetry(database, id: id, worker: worker, error: error, delay: delay, steps: steps)
        }
    }

    /// in_progress → queued: the platform's proxy accepted it into its queue; never resent.
    public func markQueued(id: String, worker: String, detail: String, steps: [DelegationStep] = []) async throws {
        try await write("marking delegation \(id) queued", id: id) { database in
            try Transitions.markQueued(database, id: id, worker: worker, detail: detail, steps: steps)
        }
    }

    /// The peer runs the task: the row lets go of its lease and is polled from `nextPoll` on.
    public func handOver(
        id: String, worker: String, remoteTaskID: String, peerURL: String, state: String, nextPoll: Duration,
        steps: [DelegationStep] = []
    ) async throws {
        try await write("handing delegation \(id) over to its peer", id: id) { database in
            try Transitions.handOver(
                database, id: id, worker: worker, remoteTaskID: remoteTaskID, peerURL: peerURL, state: state,
                nextPoll: nextPoll, steps: steps)
        }
    }

    /// A followed row after one poll that did not end it: parked until `nextPoll`.
    public func park(
        id: String, worker: String, after poll: PollOutcome, peerURL: String? = nil, nextPoll: Duration,
        steps: [DelegationStep] = []
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

    /// Shutdown: every row `worker` holds is let go (a send to pending, its attempt not counted; a
    /// poll parked). Returns their ids.
    @discardableResult
    public func releaseLeases(worker: String) async throws -> [String] {
        try await write("releasing the leases of worker \(worker)") { database in
            try Transitions.releaseLeases(database, worker: worker)
        }
    }

    /// queued → completed | failed from the platform's list; false when the row is no longer queued.
    @discardableResult
    public func resolveQueued(id: String, outcome: QueuedOutcome) async throws -> Bool {
        try await write("resolving queued delegation \(id)", id: id) { database in
            try Transitions.resolveQueued(database, id: id, outcome: outcome)
        }
    }

    /// Lets go of rows `worker` holds, whose lease expired, that are not among `inFlight` (the rows it
    /// works on). Returns their ids.
    @discardableResult
    public func releaseStrayLeases(worker: String, inFlight: [String]) async throws -> [String] {
        try await write("releasing stray leases of worker \(worker)") { database in
            try Transitions.releaseStrayLeases(database, worker: worker, inFlight: inFlight)
        }
    }

    /// Asks the peer to cancel `remoteTaskID` if delegation `id` ended (cancelled, failed) while the send
    /// that started the task was in flight.
    public func requestPeerCancel(id: String, remoteTaskID: String, peerURL: String) async throws {
        try await write("asking the peer to cancel the task of delegation \(id)", id: id) { database in
            try Transitions.requestPeerCancel(database, id: id, remoteTaskID: remoteTaskID, peerURL: peerURL)
        }
    }

    /// Ids of the rows queued at the platform.
    public func queuedIDs() async throws -> [String] {
        try await read("listing queued delegations") { try Transitions.queuedIDs($0) }
    }

    /// Live delegations, undelivered mirror calls and unanswered peer cancels (`--exit-when-idle`).
    public func remainingWork() async throws -> RemainingWork {
        try await read("checking for remaining work") { try Transitions.remainingWork($0) }
    }

    /// Rows per status (every status present), for gauges refreshed at a poll interval: the schema keeps
    /// them, so this is one read of six rows.
    public func rowCounts() async throws -> [DelegationStatus: Int] {
        try await read("counting rows by status") { try Statistics.rowCounts($0) }
    }

    /// The A2A generation remembered for each peer URL ("0.3" or "1.0").
    public func knownPeerProtocols() async throws -> [String: String] {
        try await read("loading peer protocols") { try PeerProtocols.all($0) }
    }

    /// Remembers what generation `url` speaks, across restarts.
    public func rememberPeerProtocol(_ version: String, for url: String) async throws {
        try await write("remembering the protocol of \(url)") { try PeerProtocols.remember($0, url: url, protocol: version) }
    }
}
