import DelegationStore

extension Delegation {
    /// Every column, for `show`, exports and archives.
    public var json: JSONValue {
        .object([
            ("id", .string(id)), ("workspace_id", .string(workspaceID)),
            ("source_workspace_id", sourceWorkspaceID.json), ("task", .string(task)),
            ("status", .string(status.rawValue)), ("result", result.json), ("error", error.json),
            ("attempts", .int(attempts)), ("max_attempts", maxAttempts.map(JSONValue.int) ?? .null),
            ("next_run_at", .string(nextRunAt)), ("lease_owner", leaseOwner.json),
            ("lease_expires_at", leaseExpiresAt.json), ("message_id", .string(messageID)),
            ("traceparent", .string(traceparent)), ("remote_task_id", remoteTaskID.json),
            ("created_at", .string(createdAt)), ("updated_at", .string(updatedAt)),
            ("finished_at", finishedAt.json), ("takeovers", .int(takeovers)), ("accepted_at", acceptedAt.json),
            ("peer_url", peerURL.json), ("remote_state", remoteState.json), ("polls", .int(polls)),
            ("last_polled_at", lastPolledAt.json), ("poll_failures", .int(pollFailures)),
        ])
    }

    /// A row for lists: every small column, the long texts cut to previews.
    public var summaryJSON: JSONValue {
        [
            "id": .string(id), "workspace_id": .string(workspaceID), "status": .string(status.rawValue),
            "attempts": .int(attempts), "created_at": .string(createdAt), "updated_at": .string(updatedAt),
            "finished_at": finishedAt.json, "lease_owner": leaseOwner.json,
            "task": .string(ToolAnswer.preview(task)),
            "result_preview": result.map { .string(ToolAnswer.preview($0)) } ?? .null,
            "error": error.json,
        ]
    }
}
