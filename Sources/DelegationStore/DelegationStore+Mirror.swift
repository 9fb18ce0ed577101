internal import SQLiteDatabase

/// The durable outboxes a worker delivers: mirror calls to the platform (`platform_outbox`) and cancel
/// requests to peers (`peer_cancels`). Items are leased like delegations, so two workers never post the
/// same one at once; each call is one transaction.
extension DelegationStore {
    // MARK: Platform mirror

    /// Due mirror calls whose delegation has no earlier call undelivered, oldest first, leased to `worker`.
    public func claimOutbox(worker: String, limit: Int, lease: Duration) async throws -> [OutboxItem] {
        try await write("claiming outbox items") { try Outbox.claim($0, worker: worker, limit: limit, lease: lease) }
    }

    /// Accepted calls (HTTP `status`), marked in one statement and audited as `mirror` events in one: one
    /// writer operation for the batch; each lets the next call of its delegation go. Answers each entry in
    /// order: true when `worker` still held the call and this entry marked it (a call listed twice is
    /// marked once).
    public func outboxDelivered(_ deliveries: [(item: OutboxItem, status: Int)], worker: String) async throws -> [Bool] {
        try await write("marking outbox items delivered") { database in
            try Outbox.delivered(database, items: deliveries, worker: worker)
        }
    }

    /// Not delivered this time (platform down, 5xx): tried again after `delay`.
    public func outboxRetry(_ item: OutboxItem, worker: String, error: String, after delay: Duration) async throws {
        try await write("rescheduling an outbox item") {
            try Outbox.retry($0, item: item, worker: worker, error: error, delay: delay)
        }
    }

    /// Refused for good (a 4xx): kept as dead with the platform's answer, audited; never dropped silently.
    public func outboxDead(_ item: OutboxItem, worker: String, error: String) async throws {
        try await write("marking an outbox item dead") { try Outbox.dead($0, item: item, worker: worker, error: error) }
    }

    /// Extends the leases of the items `worker` is posting.
    public func renewOutboxLeases(worker: String, ids: [Int], lease: Duration) async throws {
        try await write("renewing outbox leases") { try Outbox.renew($0, worker: worker, ids: ids, lease: lease) }
    }

    /// Mirror calls not yet delivered nor refused.
    public func outboxBacklog() async throws -> Int {
        try await read("counting the outbox backlog") { try Outbox.backlog($0) }
    }

    // MARK: Peer cancels

    /// Due cancel requests, leased to `worker`.
    public func claimPeerCancels(worker: String, limit: Int, lease: Duration) async throws -> [PeerCancel] {
        try await write("claiming peer cancels") { try PeerCancels.claim($0, worker: worker, limit: limit, lease: lease) }
    }

    /// The peer answered the cancel (whatever it said): done, its answer in the history.
    public func peerCancelAnswered(_ item: PeerCancel, worker: String, answer: String) async throws {
        try await write("recording a peer cancel") { try PeerCancels.answered($0, item, worker: worker, answer: answer) }
    }

    /// No answer this time: asked again after `delay`.
    public func peerCancelRetry(_ item: PeerCancel, worker: String, error: String, after delay: Duration) async throws {
        try await write("rescheduling a peer cancel") {
            try PeerCancels.retry($0, item, worker: worker, error: error, delay: delay)
        }
    }

    /// No answer after the last try: done, and said so in the history.
    public func peerCancelGaveUp(_ item: PeerCancel, worker: String, error: String) async throws {
        try await write("giving up a peer cancel") { try PeerCancels.giveUp($0, item, worker: worker, error: error) }
    }

    // MARK: Shutdown

    /// Hands back the mirror calls and cancel requests `worker` leased but did not finish, due at once.
    public func releaseDeliveries(worker: String) async throws {
        try await write("releasing outbox leases") { database in
            try Outbox.release(database, worker: worker)
            try PeerCancels.release(database, worker: worker)
        }
    }
}
