import DelegationStore
import DelegationTool
import Foundation
import Synchronization

/// An A2A peer that speaks 0.3, 1.0 or both, enforcing each generation the way servers on the
/// official SDK do (`shared/reference/a2a.md`); what it answers is up to the test's `behavior`.
public final class FakePeer: Sendable {
    public enum Dialect: Sendable {
        /// 0.2/0.3: `message/send`, `kind` parts, roles `user`/`agent`.
        case v03
        /// 1.0 only — the official SDK's default: `message/send` gets -32601.
        case v10
        /// Both, chosen per request by the `A2A-Version` header.
        case both
    }

    /// One request the peer received.
    public struct Received: Sendable {
        public var method: String
        /// "1.0" when the request carried `A2A-Version: 1.0`, else "0.3".
        public var version: String
        public var messageID: String?
        public var delegationID: String?
        public var text: String?
        public var params: JSONValue
        public var headers: [(String, String)]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public indirect enum Reply: Sendable {
        /// A completed Task whose artifact holds `text`.
        case completed(String)
        /// A Message with one text part.
        case message(String)
        /// A Message whose parts are 0.1-style `{"type": "text"}`.
        case legacyMessage(String)
        /// A Task in any state (`working`, `failed`, `input-required`, …), its status message holding `text`.
        case task(state: String, text: String?, taskID: String?)
        case jsonRPCError(Int, String)
        /// The platform proxy's "busy, accepted into the queue" answer: 202 `{"queued": true, …}`.
        case queued
        case http(Int, String, headers: [(String, String)])
        case raw(LoopbackResponse)
        case delayed(Duration, Reply)
        /// A task that runs `duration` at the peer, then ends as `then` says. Asked non-blocking (0.3
        /// `blocking: false`, 1.0 `returnImmediately: true`) by a peer that honours it, the answer is the
        /// task in `submitted` at once, `working` on tasks/get until done; otherwise the request is held
        /// until the task ends. Each start counts as one execution of its messageId.
        case longTask(Duration, then: Reply)
    }

    /// A task started by `.longTask` (for tasks/get and cancel).
    struct RunningTask {
        var started: ContinuousClock.Instant
        var duration: Duration
        var final: Reply
        var canceled = false
    }

    public typealias Behavior = @Sendable (Received) async -> Reply

    public let dialect: Dialect
    /// False: a peer that ignores the non-blocking flag and always holds the request until the task ends.
    public let honoursNonBlocking: Bool
    private let behavior: Behavior
    private let running = Mutex<[String: RunningTask]>([:])
    private let executionCounts = Mutex<[String: Int]>([:])
    private let cancelled = Mutex<[String]>([])
    private let log = Mutex<[Received]>([])
    private let taskReplies = Mutex<[String: [Reply]]>([:])
    private let server = Mutex<LoopbackHTTPServer?>(nil)

    public init(dialect: Dialect = .v03, honoursNonBlocking: Bool = true, behavior: @escaping Behavior) {
        self.dialect = dialect
        self.honoursNonBlocking = honoursNonBlocking
        self.behavior = behavior
    }

    /// How many times each messageId's task was started (`.longTask` replies).
    public var executions: [String: Int] { executionCounts.withLock { $0 } }
    /// Task ids a cancel request stopped.
    public var cancels: [String] { cancelled.withLock { $0 } }

    public func start() async throws {
        let started = try await LoopbackHTTPServer.start { [self] request in await self.handle(request) }
        server.withLock { $0 = started }
    }

    public func stop() async {
        let running = server.withLock { server in
            defer { server = nil }
            return server
        }
        await running?.stop()
    }

    public var url: String { server.withLock { $0?.baseURL ?? "http://127.0.0.1:1" } }

    public var received: [Received] { log.withLock { $0 } }
    public var sends: [Received] { received.filter { $0.method == "message/send" || $0.method == "SendMessage" } }

    /// What `tasks/get` / `GetTask` answers for `taskID`, one reply per call; the last one repeats.
    public func setTask(_ taskID: String, replies: [Reply]) {
        taskReplies.withLock { $0[taskID] = replies }
    }

    // MARK: Serving

    private func handle(_ request: LoopbackRequest) async -> LoopbackResponse {
        guard request.method == "POST" else { return .text(405, "method not allowed") }
        guard let body = try? JSONValue.parse(request.body), body.isObject else {
            return rpcError(nil, -32700, "Parse error")
        }
        let id = body["id"] ?? .null
        let method = body["method"]?.stringValue ?? ""
        let version = request.header("A2A-Version") == "1.0" ? "1.0" : "0.3"
        let oldNames = ["message/send", "tasks/get", "tasks/cancel", "message/stream"]
        let newNames = ["SendMessage", "GetTask", "CancelTask", "SendStreamingMessage", "ListTasks", "SubscribeToTask"]

        switch dialect {
        case .v03:
            guard oldNames.contains(method) else { return rpcError(id, -32601, "Method not found") }
        case .v10:
            if oldNames.contains(method) && version == "0.3" { return rpcError(id, -32601, "Method not found") }
            if oldNames.contains(method) { return rpcError(id, -32603, "Internal error") }
            if newNames.contains(method) && version != "1.0" {
                return rpcError(id, -32009, "Version not supported: send A2A-Version: 1.0")
            }
            guard newNames.contains(method) else { return rpcError(id, -32601, "Method not found") }
        case .both:
            if oldNames.contains(method) && version == "1.0" { return rpcError(id, -32603, "Internal error") }
            if newNames.contains(method) && version != "1.0" {
                return rpcError(id, -32009, "Version not supported: send A2A-Version: 1.0")
            }
            guard oldNames.contains(method) || newNames.contains(method) else {
                return rpcError(id, -32601, "Method not found")
            }
        }
        let speaksNew = newNames.contains(method)
        let params = body["params"] ?? .null

        if method == "tasks/cancel" || method == "CancelTask" {
            record(Received(method: method, version: version, params: params, headers: request.headers))
            guard let taskID = params["id"]?.stringValue else { return rpcError(id, -32602, "Invalid params") }
            let outcome = running.withLock { tasks -> Bool? in
                guard var task = tasks[taskID] else { return nil }
                guard !task.canceled, ContinuousClock.now - task.started < task.duration else { return false }
                task.canceled = true
                tasks[taskID] = task
                return true
            }
            switch outcome {
            case nil: return rpcError(id, -32001, "Task not found")
            case false?: return rpcError(id, -32002, "Task cannot be canceled")
            case true?:
                cancelled.withLock { $0.append(taskID) }
                return await encode(.task(state: "canceled", text: nil, taskID: taskID), id: id, newGeneration: speaksNew, wrap: false, taskID: taskID)
            }
        }

        if method == "tasks/get" || method == "GetTask" {
            record(Received(method: method, version: version, params: params, headers: request.headers))
            guard let taskID = params["id"]?.stringValue else { return rpcError(id, -32602, "Invalid params") }
            if let task = running.withLock({ $0[taskID] }) {
                let reply: Reply =
                    task.canceled ? .task(state: "canceled", text: nil, taskID: taskID)
                    : ContinuousClock.now - task.started < task.duration ? .task(state: "working", text: nil, taskID: taskID)
                    : task.final
                return await encode(reply, id: id, newGeneration: speaksNew, wrap: false, taskID: taskID)
            }
            let reply: Reply? = taskReplies.withLock { replies in
                guard var queue = replies[taskID], !queue.isEmpty else { return nil }
                let next = queue.count > 1 ? queue.removeFirst() : queue[0]
                replies[taskID] = queue
                return next
            }
            guard let reply else { return rpcError(id, -32001, "Task not found") }
            return await encode(reply, id: id, newGeneration: speaksNew, wrap: false, taskID: taskID)
        }

        let message = params["message"] ?? .null
        let parts = message["parts"]?.arrayValue ?? []
        if speaksNew {
            guard message["role"]?.stringValue == "ROLE_USER" else { return rpcError(id, -32602, "Invalid params: role") }
            guard parts.allSatisfy({ $0["kind"] == nil }) else { return rpcError(id, -32602, "Invalid params: part kind") }
        } else {
            guard message["role"]?.stringValue == "user" else { return rpcError(id, -32602, "Invalid params: role") }
            guard parts.allSatisfy({ $0["kind"] != nil }) else { return rpcError(id, -32602, "Invalid params: part kind") }
        }
        let received = Received(
            method: method, version: version, messageID: message["messageId"]?.stringValue,
            delegationID: message["metadata"]?["delegation_id"]?.stringValue,
            text: parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n"),
            params: params, headers: request.headers)
        record(received)
        var reply = await behavior(received)
        if case .longTask(let duration, let final) = reply {
            executionCounts.withLock { $0[received.messageID ?? "", default: 0] += 1 }
            let configuration = params["configuration"]
            let nonBlocking = speaksNew
                ? configuration?["returnImmediately"]?.boolValue == true
                : configuration?["blocking"]?.boolValue == false
            if nonBlocking && honoursNonBlocking {
                let taskID = UUID().uuidString.lowercased()
                running.withLock { $0[taskID] = RunningTask(started: .now, duration: duration, final: final) }
                return await encode(.task(state: "submitted", text: nil, taskID: taskID), id: id, newGeneration: speaksNew, wrap: true, taskID: taskID)
            }
            reply = .delayed(duration, final)
        }
        return await encode(reply, id: id, newGeneration: speaksNew, wrap: true, taskID: nil)
    }

    private func record(_ received: Received) {
        log.withLock { $0.append(received) }
    }

    private func encode(_ reply: Reply, id: JSONValue, newGeneration: Bool, wrap: Bool, taskID: String?) async
        -> LoopbackResponse
    {
        func textPart(_ text: String) -> JSONValue {
            newGeneration ? ["text": .string(text)] : ["kind": "text", "text": .string(text)]
        }
        func state(_ name: String) -> JSONValue {
            .string(newGeneration ? "TASK_STATE_" + name.uppercased().replacingOccurrences(of: "-", with: "_") : name)
        }
        func agentMessage(_ parts: [JSONValue]) -> JSONValue {
            var pairs: [(String, JSONValue)] = [
                ("role", newGeneration ? "ROLE_AGENT" : "agent"),
                ("messageId", .string(UUID().uuidString.lowercased())), ("parts", .array(parts)),
            ]
            if !newGeneration { pairs.insert(("kind", "message"), at: 0) }
            return .object(pairs)
        }
        func task(_ pairs: [(String, JSONValue)]) -> JSONValue {
            let object = JSONValue.object(
                (newGeneration ? [] : [("kind", "task")]) + [
                    ("id", .string(taskID ?? UUID().uuidString.lowercased())), ("contextId", "ctx-1"),
                ] + pairs)
            return wrap && newGeneration ? ["task": object] : object
        }
        func message(_ value: JSONValue) -> JSONValue {
            wrap && newGeneration ? ["message": value] : value
        }

        let result: JSONValue
        switch reply {
        case .delayed(let delay, let next):
            try? await Task.sleep(for: delay)
            return await encode(next, id: id, newGeneration: newGeneration, wrap: wrap, taskID: taskID)
        case .longTask(let duration, let next):
            try? await Task.sleep(for: duration)
            return await encode(next, id: id, newGeneration: newGeneration, wrap: wrap, taskID: taskID)
        case .raw(let response):
            return response
        case .http(let status, let body, let headers):
            return LoopbackResponse(status: status, headers: headers, body: Array(body.utf8))
        case .queued:
            return json(202, [
                "queued": true, "queue_id": .string(UUID().uuidString.lowercased()), "queue_depth": 3,
                "message": "peer is busy; accepted into the platform queue",
            ])
        case .jsonRPCError(let code, let text):
            return rpcError(id, code, text)
        case .completed(let text):
            result = task([
                ("status", ["state": state("completed")]),
                ("artifacts", [["artifactId": "artifact-1", "parts": [textPart(text)]]]),
            ])
        case .message(let text):
            result = message(agentMessage([textPart(text)]))
        case .legacyMessage(let text):
            result = ["kind": "message", "role": "agent", "parts": [["type": "text", "text": .string(text)]]]
        case .task(let name, let text, let explicitID):
            var status: [(String, JSONValue)] = [("state", state(name))]
            if let text { status.append(("message", agentMessage([textPart(text)]))) }
            result = FakePeer.replacingID(task([("status", .object(status))]), with: explicitID)
        }
        return json(200, ["jsonrpc": "2.0", "id": id, "result": result])
    }

    private static func replacingID(_ value: JSONValue, with id: String?) -> JSONValue {
        guard let id, case .object(let pairs) = value else { return value }
        if let inner = value["task"] { return ["task": replacingID(inner, with: id)] }
        return .object(pairs.map { $0.0 == "id" ? ("id", .string(id)) : $0 })
    }

    private func rpcError(_ id: JSONValue?, _ code: Int, _ message: String) -> LoopbackResponse {
        json(200, ["jsonrpc": "2.0", "id": id ?? .null, "error": ["code": .int(code), "message": .string(message)]])
    }

    private func json(_ status: Int, _ value: JSONValue) -> LoopbackResponse {
        LoopbackResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(value.serialized.utf8))
    }
}
