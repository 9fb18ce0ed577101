import DelegationStore
import DelegationTool
import Foundation
import Synchronization

/// The agent platform as `shared/reference/platform-api.md` describes it: discovery, the delegation
/// mirror (record, update, list) and notify, with its validation and its 401s, plus knobs to make it
/// fail the way a real one does.
public final class FakePlatform: Sendable {
    /// What discovery answers for one target workspace.
    public enum Discovery: Sendable {
        case url(String)
        /// 200 with a body that has no usable `url`.
        case noURL
        case status(Int, String)
        /// Closes the connection without answering (a network error at the client).
        case dropConnection
    }

    public struct Call: Sendable {
        public var method: String
        public var path: String
        public var authorization: String?
        public var workspaceHeader: String?
        public var body: JSONValue?
        /// What the platform answered.
        public var status: Int = 0
        public var accepted: Bool { (200..<300).contains(status) }
    }

    public enum Endpoint: Sendable, Hashable, CaseIterable {
        case discovery, record, update, list, notify
    }

    struct State {
        var discovery: [String: Discovery] = [:]
        var calls: [Call] = []
        /// The activity rows, oldest first: a new row is appended (O(1)), and the list answers the last
        /// `listWindow` of them newest first. (Inserting at the front copied every row on every record —
        /// and a whole copy of the array whenever a request's snapshot shared it —, which made the fake
        /// platform quadratic and the benchmark's row 3 measure it.)
        var listRows: [JSONValue] = []
        var listOverride: LoopbackResponse?
        /// Endpoints that answer this status instead of working.
        var failures: [Endpoint: Int] = [:]
        /// Endpoints that accept the request and never answer (a hung platform).
        var hanging: Set<Endpoint> = []
    }

    /// The platform's list shows only its newest rows (`SELECT … ORDER BY created_at DESC LIMIT 50`).
    public static let listWindow = 50

    public let workspaceID: String
    public let token: String?
    /// How many of the newest rows the list answers with (the real platform's 50 unless a run says otherwise).
    public let listWindow: Int
    private let state = Mutex(State())
    private let server: Mutex<LoopbackHTTPServer?> = Mutex(nil)
    private let boundPort = Mutex(0)

    public var baseURL: String { "http://127.0.0.1:\(boundPort.withLock { $0 })" }

    public init(workspaceID: String, token: String? = nil, listWindow: Int = FakePlatform.listWindow) {
        self.workspaceID = workspaceID
        self.token = token
        self.listWindow = listWindow
    }

    /// Starts (or restarts, on the same port) serving.
    public func start() async throws {
        let port = boundPort.withLock { $0 }
        let started = try await LoopbackHTTPServer.start(port: port) { [self] request in await self.handle(request) }
        boundPort.withLock { $0 = started.port }
        server.withLock { $0 = started }
    }

    /// Stops listening: clients get "connection refused" until `start()`.
    public func stop() async {
        let running = server.withLock { server in
            defer { server = nil }
            return server
        }
        await running?.stop()
    }

    // MARK: Knobs

    public func register(_ workspace: String, _ discovery: Discovery) {
        state.withLock { $0.discovery[workspace] = discovery }
    }

    /// Makes `endpoints` answer `status` instead of working (nil: work again).
    public func fail(_ endpoints: Set<Endpoint> = [.record, .update, .list, .notify], with status: Int?) {
        state.withLock { state in
            for endpoint in endpoints { state.failures[endpoint] = status }
        }
    }

    /// Other agents' activity: `count` rows at the top of the list (each as a `record` call adds one),
    /// pushing older rows towards the end of the 50-row window.
    public func simulateActivity(_ count: Int) {
        let rows: [JSONValue] = (0..<count).map { _ in
            [
                "id": .string(UUID().uuidString.lowercased()), "type": "delegation", "source_id": "another-agent",
                "target_id": "somewhere", "summary": "someone else's task", "status": "dispatched",
                "created_at": .string(Timestamp.string(from: Date())),
            ]
        }
        state.withLock { $0.listRows.append(contentsOf: rows) }
    }

    /// Makes `endpoints` hold every request without answering (nil or empty: answer again).
    public func hang(_ endpoints: Set<Endpoint>) {
        state.withLock { $0.hanging = endpoints }
    }

    /// The platform's drain finished a queued delegation: it shows up in the list.
    public func resolve(delegationID: String, status: String, preview: String? = nil, error: String? = nil) {
        var pairs: [(String, JSONValue)] = [
            ("id", .string(UUID().uuidString.lowercased())), ("type", "delegation"),
            ("source_id", .string(workspaceID)), ("target_id", "peer"), ("summary", "delegated task"),
            ("status", .string(status)), ("created_at", .string(Timestamp.string(from: Date()))),
            ("delegation_id", .string(delegationID)),
        ]
        if let preview {
            let cut = preview.unicodeScalars.count > 300 ? ToolAnswer.preview(preview, length: 300) + "..." : preview
            pairs.append(("response_preview", .string(cut)))
        }
        if let error { pairs.append(("error", .string(error))) }
        state.withLock { $0.listRows.append(.object(pairs)) }
    }

    /// Answers the list endpoint with exactly this (malformed answers for tests).
    public func overrideList(_ response: LoopbackResponse?) {
        state.withLock { $0.listOverride = response }
    }

    public var calls: [Call] { state.withLock { $0.calls } }

    /// Calls whose path ends with `suffix`, accepted or not.
    public func calls(to suffix: String, method: String = "POST") -> [Call] {
        calls.filter { $0.method == method && $0.path.hasSuffix(suffix) }
    }

    /// Accepted calls only (2xx), like the platform's own records.
    public var records: [JSONValue] { calls(to: "/delegations/record").filter(\.accepted).compactMap(\.body) }
    public var updates: [Call] { calls.filter { $0.method == "POST" && $0.path.hasSuffix("/update") && $0.accepted } }
    public var notifications: [JSONValue] { calls(to: "/notify").filter(\.accepted).compactMap(\.body) }

    // MARK: Serving

    private func handle(_ request: LoopbackRequest) async -> LoopbackResponse {
        let body = request.body.isEmpty ? nil : try? JSONValue.parse(request.body)
        var call = Call(
            method: request.method, path: request.path, authorization: request.header("Authorization"),
            workspaceHeader: request.header("X-Workspace-ID"), body: body)
        // A snapshot without the call log and the activity rows: holding them while others append would
        // copy them every time. The list's window is read under the lock when it is asked for.
        let snapshot = state.withLock { state -> State in
            var copy = state
            copy.calls = []
            copy.listRows = []
            return copy
        }
        let response = answer(request, body: body, snapshot: snapshot)
        call.status = response.status
        state.withLock { $0.calls.append(call) }
        return response
    }

    private func answer(_ request: LoopbackRequest, body: JSONValue?, snapshot: State) -> LoopbackResponse {
        let segments = request.path.split(separator: "/").map(String.init)
        let authorized = token.map { request.header("Authorization") == "Bearer \($0)" } ?? true

        if request.method == "GET", segments.count == 3, segments[0] == "registry", segments[1] == "discover" {
            guard request.header("X-Workspace-ID")?.isEmpty == false else {
                return json(400, ["error": "X-Workspace-ID header is required"])
            }
            guard authorized else { return json(401, ["error": "missing workspace auth token"]) }
            if snapshot.hanging.contains(.discovery) { return LoopbackResponse(status: 503, delay: .seconds(3600)) }
            if let failure = snapshot.failures[.discovery] { return json(failure, ["error": "workspace not available", "status": "degraded"]) }
            switch snapshot.discovery[segments[2]] {
            case .url(let url)?: return json(200, ["id": .string(segments[2]), "url": .string(url), "name": "peer"])
            case .noURL?: return json(200, ["id": .string(segments[2]), "name": "peer"])
            case .status(let status, let message)?: return json(status, ["error": .string(message)])
            case .dropConnection?: return LoopbackResponse(status: 200, delivery: .closeWithoutResponse)
            case nil: return json(404, ["error": "workspace not found"])
            }
        }

        guard segments.count >= 2, segments[0] == "workspaces", segments[1] == workspaceID else {
            return json(404, ["error": "not found"])
        }
        guard authorized else { return json(401, ["error": "missing workspace auth token"]) }
        let rest = Array(segments.dropFirst(2))
        let endpoint: Endpoint? =
            switch (request.method, rest.first, rest.last) {
            case ("POST", "delegations", "record"): .record
            case ("POST", "delegations", "update"): .update
            case ("GET", "delegations", _): .list
            case ("POST", "notify", _): .notify
            default: nil
            }
        if let endpoint, snapshot.hanging.contains(endpoint) {
            return LoopbackResponse(status: 503, delay: .seconds(3600))
        }
        if let endpoint, let failure = snapshot.failures[endpoint] {
            return json(failure, ["error": "platform unavailable"])
        }

        switch (request.method, rest) {
        case ("POST", ["delegations", "record"]):
            guard let body, body.isObject,
                let target = body["target_id"]?.stringValue, !target.isEmpty,
                body["task"]?.stringValue != nil,
                let delegation = body["delegation_id"]?.stringValue, !delegation.isEmpty
            else { return json(400, ["error": "invalid request body"]) }
            // Every record is an activity row of its own, newest first: it pushes older rows (a queued
            // delegation's outcome among them) towards the end of the 50-row window.
            let row: JSONValue = [
                "id": .string(UUID().uuidString.lowercased()), "type": "delegation", "source_id": .string(workspaceID),
                "target_id": .string(target), "summary": "delegated task", "status": "dispatched",
                "created_at": .string(Timestamp.string(from: Date())), "delegation_id": .string(delegation),
            ]
            state.withLock { $0.listRows.append(row) }
            return json(202, ["delegation_id": .string(delegation), "status": "recorded"])

        case ("POST", let parts) where parts.count == 3 && parts[0] == "delegations" && parts[2] == "update":
            guard let body, body.isObject else { return json(400, ["error": "invalid request body"]) }
            guard let status = body["status"]?.stringValue, status == "completed" || status == "failed" else {
                return json(400, ["error": "status must be 'completed' or 'failed'"])
            }
            if let preview = body["response_preview"]?.stringValue, preview.unicodeScalars.count > 500 {
                return json(400, ["error": "response_preview must be at most 500 characters"])
            }
            return json(200, ["status": .string(status), "delegation_id": .string(parts[1])])

        case ("GET", ["delegations"]):
            if let override = snapshot.listOverride { return override }
            let window = state.withLock { Array($0.listRows.suffix(listWindow).reversed()) }
            return json(200, .array(window))

        case ("POST", ["notify"]):
            guard let message = body?["message"]?.stringValue, !message.isEmpty else {
                return json(400, ["error": "message is required"])
            }
            return json(200, ["status": "sent"])

        default:
            return json(404, ["error": "not found"])
        }
    }

    private func json(_ status: Int, _ value: JSONValue) -> LoopbackResponse {
        LoopbackResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(value.serialized.utf8))
    }
}
