import DelegationStore

/// The JSON answers of the seed tool, which agents already parse. Keys and order are kept.
public enum ToolAnswer {
    /// The seed cut `task` (and list previews) to 200 characters, counted as Python does: code points.
    public static let previewLength = 200

    public static func delegated(id: String, workspaceID: String) -> JSONValue {
        [
            "success": true,
            "task_id": .string(id),
            "status": "delegated",
            "message": .string(
                "Task delegated to \(workspaceID). Use check_delegation_status('\(id)') to get the result when ready."),
        ]
    }

    public static func denied(roles: [String]) -> JSONValue {
        ["success": false, "error": .string(RBAC.denial(roles))]
    }

    public static func notFound(id: String) -> JSONValue {
        ["error": .string(DelegationStoreError.notFound(id: id).description)]
    }

    /// `check_delegation_status(task_id)`.
    public static func status(of delegation: Delegation) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("task_id", .string(delegation.id)),
            ("workspace_id", .string(delegation.workspaceID)),
            ("status", .string(delegation.status.rawValue)),
            ("task", .string(preview(delegation.task))),
        ]
        switch delegation.status {
        case .completed: pairs.append(("result", .string(delegation.result ?? "")))
        case .failed, .cancelled: pairs.append(("error", .string(delegation.error ?? delegation.status.rawValue)))
        default: break
        }
        return .object(pairs)
    }

    /// One entry of `check_delegation_status()` without an id.
    public static func listEntry(of delegation: Delegation) -> JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("task_id", .string(delegation.id)),
            ("workspace_id", .string(delegation.workspaceID)),
            ("status", .string(delegation.status.rawValue)),
            ("task", .string(preview(delegation.task))),
        ]
        switch delegation.status {
        case .completed: pairs.append(("result_preview", .string(preview(delegation.result ?? ""))))
        case .failed, .cancelled: pairs.append(("error", .string(delegation.error ?? delegation.status.rawValue)))
        default: break
        }
        return .object(pairs)
    }

    public static func list(_ delegations: [Delegation]) -> JSONValue {
        ["delegations": .array(delegations.map(listEntry)), "count": .int(delegations.count)]
    }

    public static func preview(_ text: String, length: Int = previewLength) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.prefix(length))
        return String(scalars)
    }
}
