/// A delegation about to be evicted, with its whole history: what an eviction archive keeps.
public struct ArchivedDelegation: Sendable, Equatable {
    public var delegation: Delegation
    public var events: [DelegationEvent]
}
