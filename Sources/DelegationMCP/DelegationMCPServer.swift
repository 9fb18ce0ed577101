import DelegationStore
import DelegationTool
import Logging
import MCP

/// The delegation tools over the Model Context Protocol: `delegate_to_workspace`,
/// `check_delegation_status`, `list_delegations` and `cancel_delegation`, on the same SQLite file the
/// worker delivers from.
///
/// Why a server of its own: MCP clients (Claude Desktop, IDE agents) start a tool server as a child
/// process and speak JSON-RPC over its stdin/stdout. The answers are exactly the JSON the admin CLI
/// prints with `--json` (through `DelegationTool` and `ToolAnswer`), as text, so an agent reads the same
/// document whichever door it used.
///
/// Errors the calling agent should see and act on are tool results with `isError: true`: an unknown
/// task_id (`No delegation found with task_id <id>`), an RBAC refusal (the tool's own JSON), an illegal
/// cancel (the database's words), bad arguments (naming the argument), a store failure. Only an unknown
/// tool name is a JSON-RPC error (-32602), as the MCP specification asks.
///
/// The process owns the store: `run(transport:)` returns when the input ends and every request already
/// received has been answered; the caller then closes the store.
public struct DelegationMCPServer: Sendable {
    public static let name = "delegation-mcp"
    public static let version = "1.0.0"
    /// Sent in `initialize`; clients may add it to the model's context.
    public static let instructions = """
        Durable delegation to peer agents. delegate_to_workspace stores the task and returns a task_id at once; \
        a background worker delivers it. Check it later with check_delegation_status(task_id). A queued \
        delegation is waiting in the peer's queue: do not resend it, check again later.
        """

    public let tool: DelegationTool
    private let caller: CallerName
    private let logger: Logger

    /// - Parameters:
    ///   - tool: the roles and source workspace the calls run with (`DelegationTool(store:environment:)`
    ///     reads `WORKSPACE_ROLES` and `WORKSPACE_ID` as the original tool did).
    public init(tool: DelegationTool, logger: Logger = Logger(label: "delegation.mcp")) {
        self.tool = tool
        self.caller = CallerName(workspaceID: tool.sourceWorkspaceID ?? tool.store.configuration.sourceWorkspaceID)
        self.logger = logger
    }

    public var store: DelegationStore { tool.store }

    /// A server with the tool handlers registered, not yet started (tests may start it on any transport).
    public func makeServer() async -> Server {
        let server = Server(
            name: Self.name, version: Self.version, title: "Delegation queue", instructions: Self.instructions,
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: ToolCatalog.all) }
        await server.withMethodHandler(CallTool.self) { parameters in
            guard let name = MCPToolName(rawValue: parameters.name) else {
                throw MCPError.invalidParams(
                    "Unknown tool: \(parameters.name) (tools: \(MCPToolName.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return await call(name, arguments: parameters.arguments)
        }
        return server
    }

    /// Serves one session on `transport` until its input ends (stdin closed, or `inputEnd` triggered), then
    /// waits up to `drainTimeout` for the answers still owed, and stops the server. Does not close the store.
    ///
    /// The SDK's loop answers a batch itself, and its stdio `send` retries a full pipe for as long as it
    /// takes: a client that stopped reading its answers held the loop — and the process — for ever. So the
    /// loop is waited for as long as it works (each request of a batch has its own deadlines: the store's
    /// busy timeout), but not once one of its answers has been stuck in the pipe for `drainTimeout`.
    public func run(transport: any Transport, drainTimeout: Duration = .seconds(30), inputEnd: InputEnd? = nil) async throws {
        let answering = AnsweringTransport(transport, logger: logger)
        inputEnd?.attach(answering)
        let server = await makeServer()
        let caller = self.caller
        let logger = self.logger
        try await server.start(transport: answering) { client, _ in
            caller.setClient(client.name)
            logger.info("client connected", metadata: ["client": "\(client.name)", "client_version": "\(client.version)"])
        }
        let loop = Task {
            await server.waitUntilCompleted()
            await answering.noteLoopEnded()
        }
        await answering.waitUntilInputIsOver()
        var clientStoppedReading = false
        while !(await answering.loopEnded) {
            if let stuck = await answering.longestSendInProgress, stuck >= drainTimeout {
                clientStoppedReading = true
                break
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        if clientStoppedReading {
            let unanswered = await answering.owedCount
            logger.warning(
                "input ended and the client is not reading its answers; stopping without them",
                metadata: ["unanswered": "\(unanswered)"])
        } else if !(await answering.waitUntilAnswered(timeout: drainTimeout)) {
            let unanswered = await answering.owedCount
            logger.warning("input ended with requests still unanswered", metadata: ["unanswered": "\(unanswered)"])
        }
        // Cancels the loop, and with it a send retrying a full pipe (the SDK then logs the failed send as an
        // error). `loop` is not awaited: it ends with the loop, and a send stuck in one of the SDK's own
        // tasks must not hold this up.
        await server.stop()
        loop.cancel()
    }

    /// One `tools/call`: checks the arguments, runs the operation, and turns every outcome — answer,
    /// refusal, store error — into a result. Never throws: whatever happens is the caller's to read.
    public func call(_ name: MCPToolName, arguments: [String: Value]?) async -> CallTool.Result {
        do {
            let result = try await perform(name, ToolArguments(name, arguments))
            logger.debug("tool call", metadata: ["tool": "\(name.rawValue)", "is_error": "\(result.isError ?? false)"])
            return result
        } catch let error as ToolArgumentError {
            logger.notice("tool call refused", metadata: ["tool": "\(name.rawValue)", "error": "\(error)"])
            return .failure(error.description)
        } catch let error as DelegationStoreError {
            // notFound / illegalTransition / invalidInput are answers; the rest are the store failing.
            let answer = [.notFound, .illegalTransition, .invalidInput].contains(error.code)
            logger.log(
                level: answer ? .notice : .error, "tool call failed",
                metadata: ["tool": "\(name.rawValue)", "code": "\(error.code)", "error": "\(error)"])
            return .failure(error.description)
        } catch {
            logger.error("tool call failed", metadata: ["tool": "\(name.rawValue)", "error": "\(error)"])
            return .failure(String(describing: error))
        }
    }

    private func perform(_ name: MCPToolName, _ arguments: ToolArguments) async throws -> CallTool.Result {
        switch name {
        case .delegateToWorkspace:
            let answer = try await tool.delegate(
                workspaceID: try arguments.requiredString("workspace_id"), task: try arguments.requiredString("task"))
            // The tool's RBAC refusal keeps its JSON wording, flagged as an error: nothing was delegated.
            return .answer(answer, isError: answer["success"]?.boolValue == false)

        case .checkDelegationStatus:
            // As the original tool: no task_id (or an empty one) is the list form.
            guard let id = try arguments.optionalString("task_id", emptyIsAbsent: true) else {
                return .answer(try await tool.listAll())
            }
            guard let delegation = try await store.delegation(id: id) else {
                return .failure(DelegationStoreError.notFound(id: id).description)
            }
            return .answer(ToolAnswer.status(of: delegation))

        case .listDelegations:
            // An empty filter (what some models send for "any") is no filter.
            let status = try arguments.optionalStatus("status")
            let workspace = try arguments.optionalString("workspace_id", emptyIsAbsent: true)
            let limit = try arguments.optionalInteger("limit", in: ToolCatalog.listLimitRange) ?? ToolCatalog.defaultListLimit
            let rows = try await store.list(
                DelegationQuery(statuses: status.map { [$0] } ?? [], workspaceID: workspace, newestFirst: true, limit: limit))
            return .answer(["delegations": .array(rows.map(\.summaryJSON)), "count": .int(rows.count)])

        case .cancelDelegation:
            let id = try arguments.requiredString("task_id")
            let reason = try arguments.optionalString("reason", emptyIsAbsent: true)
            // Cancelling takes what delegating takes: a read-only agent may look, not stop others' work.
            guard RBAC.mayDelegate(tool.roles) else {
                logger.warning("cancel denied", metadata: ["event": "denied", "delegation_id": "\(id)", "roles": "\(tool.roles)"])
                return .answer(ToolAnswer.denied(roles: tool.roles), isError: true)
            }
            // Worded as `delegation-admin cancel` words it, with this server as the one who cancelled.
            try await store.cancel([id], reason: "cancelled by \(caller.description)" + (reason.map { ": \($0)" } ?? ""))
            logger.info("cancelled", metadata: ["delegation_id": "\(id)", "by": "\(caller.description)"])
            return .answer(["cancelled": [.string(id)], "count": 1])
        }
    }
}
