internal import SQLiteDatabase

/// What the delegation tools (the CLI's `delegate`/`status`/`retry`/`cancel`, the MCP server) need.
extension DelegationStore {
    /// Stores a pending delegation and returns it (id, messageId and traceparent filled in).
    /// - Throws: `DelegationStoreError` (`invalidInput` for an empty workspace or task, or a database failure).
    public func enqueue(
        workspaceID: String, task: String, sourceWorkspaceID: String? = nil, maxAttempts: Int? = nil
    ) async throws -> Delegation {
        // The size first: trimming would copy a task of any size.
        let taskBytes = task.utf8.count
        guard taskBytes <= TextLimit.task else {
            throw DelegationStoreError.invalidInput(
                "task is \(taskBytes) bytes; at most \(TextLimit.task) (16 MiB) can be delegated")
        }
        let workspaceID = workspaceID.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !workspaceID.isEmpty else { throw DelegationStoreError.invalidInput("workspace_id must not be empty") }
        guard !task.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw DelegationStoreError.invalidInput("task must not be empty")
        }
        if let maxAttempts, maxAttempts < 1 {
            throw DelegationStoreError.invalidInput("max attempts must be at least 1, not \(maxAttempts)")
        }
        let source = sourceWorkspaceID ?? configuration.sourceWorkspaceID
        return try await write("delegating to \(workspaceID)") { database in
            try Transitions.enqueue(
                database, workspaceID: workspaceID, task: task, sourceWorkspaceID: source, maxAttempts: maxAttempts)
        }
    }

    /// The delegation, or nil for an unknown id.
    public func delegation(id: String) async throws -> Delegation? {
        try await read("reading delegation \(id)") { database in
            try Queries.delegation(database, id: id)
        }
    }

    /// A delegation's history, oldest first.
    public func events(delegationID: String) async throws -> [DelegationEvent] {
        try await read("reading the events of \(delegationID)") { database in
            try Queries.events(database, delegationID: delegationID)
        }
    }

    /// Every live delegation and the `finished` most recently finished ones, oldest first: what the
    /// seed's `check_delegation_status()` listed (it kept 100).
    public func liveAndRecentlyFinished(finished: Int = 100) async throws -> [Delegation] {
        try await read("listing delegations") { database in
            try Queries.liveAndRecentlyFinished(database, finished: finished)
        }
    }

    /// pending | in_progress | queued → cancelled, for every id or none (one transaction). A worker
    /// holding one loses its lease; a peer still running its task is asked to cancel it.
    /// - Throws: `DelegationStoreError`: `notFound` (the first unknown id) or `illegalTransition`
    ///   (the database's own words, e.g. "completed is final"); nothing changed then.
    public func cancel(_ ids: [String], reason: String) async throws {
        try await write("cancelling \(ids.count) delegation(s)") { database in
            for id in ids { try Transitions.attributed(id) { try Transitions.cancel(database, id: id, reason: reason) } }
        }
    }

    /// failed → pending for every id or none: attempts reset, sent again with the same messageId; audited.
    /// - Throws: `DelegationStoreError`: `notFound` or `notRetryable` for the first id that is not failed.
    public func retry(_ ids: [String], by who: String = "operator") async throws {
        try await write("retrying \(ids.count) delegation(s)") { database in
            for id in ids { try Transitions.attributed(id) { try Transitions.retry(database, id: id, by: who) } }
        }
    }
}
