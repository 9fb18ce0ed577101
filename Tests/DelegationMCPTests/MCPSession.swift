import DelegationMCP
import DelegationStore
import DelegationTool
import Foundation
import MCP
import Synchronization
import TestSupport

/// An SDK client talking to a `DelegationMCPServer` in the same process over a connected pair of
/// in-memory transports, on a fresh database: the protocol end to end without a child process.
final class MCPSession: Sendable {
    let directory: TemporaryDirectory
    let store: DelegationStore
    let client: Client
    private let serving: Task<Void, any Error>

    /// - Parameter roles: the caller's roles (`WORKSPACE_ROLES`); the source workspace is `ws-self`.
    init(roles: [String] = ["operator"]) async throws {
        directory = TemporaryDirectory()
        store = try makeStore(directory)
        let tool = DelegationTool(store: store, roles: roles, sourceWorkspaceID: "ws-self", logger: quietLogger)
        let server = DelegationMCPServer(tool: tool, logger: quietLogger)
        let (clientTransport, serverTransport) = await InMemoryTransport.createConnectedPair()
        // Connected before the client speaks: an in-memory transport drops what arrives before it is.
        try await serverTransport.connect()
        serving = Task { try await server.run(transport: serverTransport, drainTimeout: .seconds(5)) }
        client = Client(name: "delegation-mcp-tests", version: "1.0")
        _ = try await client.connect(transport: clientTransport)
    }

    /// Calls a tool; the text of its one content item and its error flag.
    func call(_ name: String, _ arguments: [String: Value]? = nil) async throws -> (text: String, isError: Bool) {
        let (content, isError) = try await client.callTool(name: name, arguments: arguments)
        guard content.count == 1, case .text(let text, _, _) = content[0] else {
            throw SessionError("expected one text content from \(name), got \(content)")
        }
        return (text, isError ?? false)
    }

    /// Calls a tool that must succeed and answer JSON.
    func answer(_ name: String, _ arguments: [String: Value]? = nil) async throws -> JSONValue {
        let (text, isError) = try await call(name, arguments)
        guard !isError else { throw SessionError("\(name) answered an error: \(text)") }
        return try JSONValue.parse(text)
    }

    /// Delegates and returns the new task_id.
    func delegate(_ workspace: String = "ws-peer", _ task: String) async throws -> String {
        let answer = try await answer("delegate_to_workspace", ["workspace_id": .string(workspace), "task": .string(task)])
        guard let id = answer["task_id"]?.stringValue else { throw SessionError("no task_id in \(answer.serialized)") }
        return id
    }

    /// Disconnects the client; the server's `run` must then return (within a few seconds) and the store closes.
    /// - Returns: whether `run` returned in time.
    @discardableResult
    func close() async -> Bool {
        await client.disconnect()
        let returned = Flag()
        Task { [serving] in
            _ = try? await serving.value
            returned.set()
        }
        let finished = await eventually(timeout: .seconds(10)) { returned.isSet }
        await store.close()
        return finished
    }

    /// Set once, from any task.
    private final class Flag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }
}
