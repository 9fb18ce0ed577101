/// Work that still needs a worker: live delegations, undelivered mirror calls, unanswered peer cancels.
public struct RemainingWork: Sendable, Equatable {
    public var live: Int
    public var outbox: Int
    public var peerCancels: Int

    public init(live: Int, outbox: Int, peerCancels: Int) {
        self.live = live
        self.outbox = outbox
        self.peerCancels = peerCancels
    }

    public var isNone: Bool { live == 0 && outbox == 0 && peerCancels == 0 }
}
