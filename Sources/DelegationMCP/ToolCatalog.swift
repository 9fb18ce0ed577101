import DelegationStore
import MCP

/// What `tools/list` answers: each tool's description and JSON input schema.
///
/// The descriptions are the only documentation a language model reads before calling, so they carry
/// the original tool's guidance: delegating returns at once with a task_id to check later, and a
/// queued delegation is waiting in the peer's queue — it must not be sent again. The schemas are also
/// what the server checks arguments against (`ToolArguments` refuses names not listed here).
public enum ToolCatalog {
    /// The most `list_delegations` returns in one call (the admin CLI allows more; an agent's context does not).
    public static let listLimitRange = 1...1000
    public static let defaultListLimit = 50

    public static let all: [Tool] = MCPToolName.allCases.map(definition)

    public static func definition(of name: MCPToolName) -> Tool {
        switch name {
        case .delegateToWorkspace:
            Tool(
                name: name.rawValue, title: "Delegate a task to a peer workspace",
                description: """
                    Delegate a task to the agent of another workspace (A2A). Returns immediately with a \
                    task_id: the task is stored in a durable queue and a background worker sends it to the \
                    peer, retrying while the peer is unreachable, so it survives restarts. Do not wait for the \
                    result here: use check_delegation_status with the task_id to get the result when ready. \
                    Delegate each task once: a delegation that is pending, in_progress or queued is already on \
                    its way — do not send it again. Needs the 'delegate' permission (roles admin, operator or \
                    no-approval); without it the call is refused with an error and nothing is stored.
                    """,
                inputSchema: schema(
                    properties: [
                        "workspace_id": string("The target workspace id (the peer agent that should do the task)."),
                        "task": string("What the peer should do, in plain language, with everything it needs to know."),
                    ],
                    required: ["workspace_id", "task"]),
                annotations: .init(
                    title: "Delegate a task to a peer workspace", readOnlyHint: false, destructiveHint: false,
                    idempotentHint: false, openWorldHint: true))
        case .checkDelegationStatus:
            Tool(
                name: name.rawValue, title: "Check a delegation",
                description: """
                    Check a delegation made with delegate_to_workspace. With task_id: its status, the task, \
                    and the result when completed or the error when failed or cancelled. Without task_id: \
                    every live delegation and the 100 most recently finished ones, oldest first. Statuses: \
                    pending or in_progress — the peer has it or is about to, check again later; queued — \
                    the peer was busy and the task is waiting in the peer's queue, it will still be answered: \
                    do not resend it, check again later; completed, failed, cancelled — final. An unknown \
                    task_id is an error.
                    """,
                inputSchema: schema(
                    properties: [
                        "task_id": string("The task_id delegate_to_workspace returned. Omit it to list every live and recent delegation.")
                    ],
                    required: []),
                annotations: .init(title: "Check a delegation", readOnlyHint: true, openWorldHint: false))
        case .listDelegations:
            Tool(
                name: name.rawValue, title: "List delegations",
                description: """
                    List delegations, newest first, optionally only one status or one target workspace: \
                    {"delegations": [...], "count": N}, each with its id (the task_id), workspace, status, \
                    attempts, times, the task and a preview of the result or the error. Use \
                    check_delegation_status for one delegation's full result. A queued delegation is waiting \
                    in the peer's queue: do not resend it.
                    """,
                inputSchema: schema(
                    properties: [
                        "status": [
                            "type": "string", "enum": .array(DelegationStatus.allCases.map { .string($0.rawValue) }),
                            "description": "Only delegations with this status.",
                        ],
                        "workspace_id": string("Only delegations to this target workspace."),
                        "limit": [
                            "type": "integer", "minimum": .int(listLimitRange.lowerBound),
                            "maximum": .int(listLimitRange.upperBound), "default": .int(defaultListLimit),
                            "description": "At most this many delegations (default \(defaultListLimit)).",
                        ],
                    ],
                    required: []),
                annotations: .init(title: "List delegations", readOnlyHint: true, openWorldHint: false))
        case .cancelDelegation:
            Tool(
                name: name.rawValue, title: "Cancel a delegation",
                description: """
                    Cancel a delegation that is still pending, in_progress or queued: it becomes cancelled, the \
                    worker stops working on it, and a peer already running it is asked to cancel its task. \
                    Completed, failed and cancelled delegations cannot be cancelled (an error says so). The \
                    reason is recorded in the delegation's history.
                    """,
                inputSchema: schema(
                    properties: [
                        "task_id": string("The task_id of the delegation to cancel."),
                        "reason": string("Why it is cancelled; recorded as the delegation's error."),
                    ],
                    required: ["task_id"]),
                annotations: .init(
                    title: "Cancel a delegation", readOnlyHint: false, destructiveHint: true, idempotentHint: false,
                    openWorldHint: true))
        }
    }

    /// The argument names a tool's schema declares (anything else is refused as a likely typo).
    static func argumentNames(of name: MCPToolName) -> Set<String> {
        definition(of: name).inputSchema.objectValue?["properties"]?.objectValue.map { Set($0.keys) } ?? []
    }

    private static func schema(properties: [String: Value], required: [String]) -> Value {
        [
            "type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) }),
            "additionalProperties": false,
        ]
    }

    private static func string(_ description: String) -> Value {
        ["type": "string", "description": .string(description)]
    }
}
