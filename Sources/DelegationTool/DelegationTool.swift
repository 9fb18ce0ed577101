import DelegationStore
import Foundation
import Logging

/// The delegation tools an agent calls — `delegate_to_workspace`, `check_delegation_status` — with the
/// seed tool's answers and its role check, over the durable store. The admin CLI and the MCP server
/// both answer through this.
public struct DelegationTool: Sendable {
    public let store: DelegationStore
    /// The caller's roles, for the `delegate` permission (`RBAC`).
    public let roles: [String]
    /// This agent's workspace, stored as `source_workspace_id` (the store's configured one when nil).
    public let sourceWorkspaceID: String?
    private let logger: Logger

    public init(
        store: DelegationStore, roles: [String] = ["operator"], sourceWorkspaceID: String? = nil,
        logger: Logger = Logger(label: "delegation.tool")
    ) {
        self.store = store
        self.roles = roles
        self.sourceWorkspaceID = sourceWorkspaceID
        self.logger = logger
    }

    /// The seed's environment: `WORKSPACE_ROLES` (comma list, default `operator`) and `WORKSPACE_ID`.
    public init(
        store: DelegationStore, environment: [String: String], logger: Logger = Logger(label: "delegation.tool")
    ) {
        self.init(
            store: store, roles: RBAC.roles(fromList: environment["WORKSPACE_ROLES"]),
            sourceWorkspaceID: environment["WORKSPACE_ID"].flatMap { $0.isEmpty ? nil : $0 }, logger: logger)
    }

    /// `delegate_to_workspace`: checks the roles, stores a pending delegation, answers at once with the
    /// seed's "delegated" answer — or its RBAC refusal, with nothing stored and the denial logged.
    /// - Throws: `DelegationStoreError` (`invalidInput` for an empty workspace or task; database failures).
    public func delegate(workspaceID: String, task: String, maxAttempts: Int? = nil) async throws -> JSONValue {
        guard RBAC.mayDelegate(roles) else {
            logger.warning(
                "delegation denied",
                metadata: ["event": "denied", "workspace_id": "\(workspaceID)", "roles": "\(roles)"])
            return ToolAnswer.denied(roles: roles)
        }
        let delegation = try await store.enqueue(
            workspaceID: workspaceID, task: task, sourceWorkspaceID: sourceWorkspaceID, maxAttempts: maxAttempts)
        logger.info("delegated", metadata: ["delegation_id": "\(delegation.id)", "workspace_id": "\(delegation.workspaceID)"])
        return ToolAnswer.delegated(id: delegation.id, workspaceID: delegation.workspaceID)
    }

    /// `check_delegation_status(task_id)`; an unknown id answers `{"error": "No delegation found with task_id <id>"}`.
    public func checkStatus(taskID: String) async throws -> JSONValue {
        guard let delegation = try await store.delegation(id: taskID) else { return ToolAnswer.notFound(id: taskID) }
        return ToolAnswer.status(of: delegation)
    }

    /// `check_delegation_status()`: every live delegation and the most recent finished ones (the seed
    /// kept 100), oldest first.
    public func listAll(recentFinished: Int = 100) async throws -> JSONValue {
        ToolAnswer.list(try await store.liveAndRecentlyFinished(finished: recentFinished))
    }
}
