/// An event with its delegation's target workspace (nil once the delegation was evicted), as the event
/// log across delegations presents it.
public struct WorkspaceEvent: Sendable, Equatable {
    public var event: DelegationEvent
    public var workspaceID: String?
}
