/// One delegation in full, read in one snapshot: the row, its history, its mirror calls.
public struct DelegationDetail: Sendable, Equatable {
    public var delegation: Delegation
    public var events: [DelegationEvent]
    public var mirrorCalls: [MirrorCall]
}
