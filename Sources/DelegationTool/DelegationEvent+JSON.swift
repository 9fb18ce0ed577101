import DelegationStore

extension DelegationEvent {
    /// Every column.
    public var json: JSONValue {
        .object([
            ("id", .int(id)), ("delegation_id", .string(delegationID)), ("at", .string(at)),
            ("kind", .string(kind)), ("from_status", fromStatus.json), ("to_status", toStatus.json),
            ("attempt", .int(attempt)), ("worker", worker.json), ("detail", detail.json),
        ])
    }
}

extension WorkspaceEvent {
    /// The event's columns with its delegation's `workspace_id` after `delegation_id`.
    public var json: JSONValue {
        guard case .object(var pairs) = event.json else { return event.json }
        pairs.insert(("workspace_id", workspaceID.json), at: 2)
        return .object(pairs)
    }
}

extension ArchivedDelegation {
    /// One line of an eviction archive: the full row and its events.
    public var json: JSONValue { ["delegation": delegation.json, "events": .array(events.map(\.json))] }
}
