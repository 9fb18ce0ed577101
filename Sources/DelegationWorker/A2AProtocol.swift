import DelegationStore
import DelegationTool
import Foundation

/// Building requests and reading answers, for both generations. No I/O here.
enum A2AProtocol {
    struct Request {
        var headers: [(String, String)]
        var body: [UInt8]
    }

    /// `message/send` (0.3) or `SendMessage` (1.0), asking the peer not to hold the request until the
    /// task is done (`blocking: false` / `returnImmediately: true`): a long task is then followed with
    /// tasks/get instead of holding a connection, and a slow one is not sent again on a timeout.
    /// A peer that ignores the flag answers when it is done, which works the same.
    static func sendMessage(_ delegation: Delegation, sourceWorkspaceID: String, version: A2AVersion) -> Request {
        let part: JSONValue = version == .v03 ? ["kind": "text", "text": .string(delegation.task)] : ["text": .string(delegation.task)]
        var message: [(String, JSONValue)] = [
            ("role", version == .v03 ? "user" : "ROLE_USER"),
            ("messageId", .string(delegation.messageID)),
            ("parts", [part]),
            ("metadata", ["delegation_id": .string(delegation.id)]),
        ]
        if version == .v03 { message.insert(("kind", "message"), at: 0) }
        let params: JSONValue = [
            "message": .object(message),
            "configuration": version == .v03 ? ["blocking": false] : ["returnImmediately": true],
            "metadata": [
                "parent_task_id": .string(delegation.id),
                "source_workspace_id": .string(delegation.sourceWorkspaceID ?? sourceWorkspaceID),
                "traceparent": .string(delegation.traceparent),
            ],
        ]
        return request(method: version == .v03 ? "message/send" : "SendMessage", params: params, version: version, traceparent: delegation.traceparent)
    }

    static func getTask(_ taskID: String, traceparent: String, version: A2AVersion) -> Request {
        request(method: version == .v03 ? "tasks/get" : "GetTask", params: ["id": .string(taskID)], version: version, traceparent: traceparent)
    }

    /// `tasks/cancel` (0.3) or `CancelTask` (1.0).
    static func cancelTask(_ taskID: String, traceparent: String, version: A2AVersion) -> Request {
        request(method: version == .v03 ? "tasks/cancel" : "CancelTask", params: ["id": .string(taskID)], version: version, traceparent: traceparent)
    }

    private static func request(method: String, params: JSONValue, version: A2AVersion, traceparent: String) -> Request {
        let body: JSONValue = [
            "jsonrpc": "2.0", "id": .string(UUID().uuidString.lowercased()), "method": .string(method), "params": params,
        ]
        var headers = [("traceparent", traceparent), ("Accept", "application/json")]
        if version == .v10 { headers.append(("A2A-Version", "1.0")) }
        return Request(headers: headers, body: Array(body.serialized.utf8))
    }

    // MARK: Reading answers

    /// Classifies one HTTP answer to a send or a tasks/get. Never traps, whatever the answer holds:
    /// every text is capped, every number saturated or ignored.
    static func classify(_ answer: HTTPAnswer) -> A2AOutcome {
        switch answer.status {
        case 200:
            return classifyJSONRPC(answer.body)
        case 202:
            // The platform proxy's queued acceptance; anything else is not one.
            if let body = try? JSONValue.parse(answer.body), body["queued"]?.boolValue == true {
                var detail = "queued by the platform"
                if let queue = body["queue_id"]?.stringValue { detail += ", queue_id \(TextLimit.capped(queue, maximumBytes: 200))" }
                if let depth = body["queue_depth"]?.intValue { detail += ", depth \(depth)" }
                return .queued(detail)
            }
            return .retry("HTTP 202 without a queued acceptance: \(answer.excerpt)", retryAfter: RetryAfter.of(answer))
        case 408, 425, 429, 500...599:
            return .retry("HTTP \(answer.status): \(answer.excerpt)", retryAfter: RetryAfter.of(answer))
        default:
            return .failed("HTTP \(answer.status): \(answer.excerpt)")
        }
    }

    static func classifyJSONRPC(_ body: [UInt8]) -> A2AOutcome {
        guard let document = try? JSONValue.parse(body) else { return .failed("invalid JSON response") }
        guard document.isObject else { return .failed("invalid JSON-RPC response: not an object") }
        guard document["jsonrpc"]?.stringValue == "2.0" else { return .failed("invalid JSON-RPC response: jsonrpc is not \"2.0\"") }
        if let error = document["error"], error != .null {
            let code = error["code"]?.intValue ?? 0
            let message = TextLimit.capped(error["message"]?.stringValue ?? "no message", maximumBytes: TextLimit.error)
            if code == -32601 || code == -32009 {
                return .wrongGeneration("JSON-RPC error \(code): \(message)")
            }
            return .failed("JSON-RPC error \(code): \(message)")
        }
        guard var result = document["result"], result.isObject else {
            return .failed("invalid JSON-RPC response: no result")
        }
        // 1.0 wraps SendMessage results: {"task": {...}} or {"message": {...}}.
        var kind = result["kind"]?.stringValue
        if kind == nil, let task = result["task"], task.isObject {
            result = task
            kind = "task"
        } else if kind == nil, let message = result["message"], message.isObject {
            result = message
            kind = "message"
        }
        if kind == nil { kind = result["status"] != nil ? "task" : (result["parts"] != nil ? "message" : nil) }

        switch kind {
        case "message":
            guard result["parts"]?.arrayValue != nil else { return .failed("invalid A2A response: a message without parts") }
            return .completed(text(of: result))
        case "task":
            let state = normalizedState(TextLimit.capped(result["status"]?["state"]?.stringValue ?? "unknown", maximumBytes: 64))
            let statusText = TextLimit.capped(result["status"]?["message"].map(text(of:)) ?? "", maximumBytes: TextLimit.error)
            switch state {
            case "completed":
                let answer = text(of: result)
                return .completed(answer.isEmpty ? statusText : answer)
            case "failed", "rejected", "canceled":
                return .failed("peer task \(state)" + (statusText.isEmpty ? "" : ": \(statusText)"), peerState: state)
            case "input-required", "auth-required":
                return .failed("peer task needs \(state == "input-required" ? "input" : "authentication"), which a delegation cannot give"
                    + (statusText.isEmpty ? "" : ": \(statusText)"), peerState: state)
            case "submitted", "working":
                guard let id = result["id"]?.stringValue, !id.isEmpty, id.utf8.count <= 1024 else {
                    return .failed("invalid A2A response: a \(state) task without a usable id")
                }
                return .working(taskID: id, state: state)
            default:
                return .failed("peer task in state \(state)" + (statusText.isEmpty ? "" : ": \(statusText)"), peerState: state)
            }
        default:
            return .failed("invalid A2A response: result is neither a task nor a message")
        }
    }

    /// `TASK_STATE_INPUT_REQUIRED` → `input-required`; `cancelled` → `canceled`.
    static func normalizedState(_ state: String) -> String {
        var name = state.lowercased()
        if name.hasPrefix("task_state_") { name.removeFirst("task_state_".count) }
        name = name.replacingOccurrences(of: "_", with: "-")
        return name == "cancelled" ? "canceled" : name
    }

    /// Every text part of `artifacts[].parts`, then of the object's own `parts`, joined by newlines.
    /// Text parts are `{"kind":"text"}` (0.3), `{"type":"text"}` (0.1) or any part with `text` (1.0).
    static func text(of object: JSONValue) -> String {
        var texts: [String] = []
        func collect(_ parts: [JSONValue]?) {
            for part in parts ?? [] {
                let kind = part["kind"]?.stringValue ?? part["type"]?.stringValue
                if let text = part["text"]?.stringValue, kind == nil || kind == "text" { texts.append(text) }
            }
        }
        for artifact in object["artifacts"]?.arrayValue ?? [] { collect(artifact["parts"]?.arrayValue) }
        collect(object["parts"]?.arrayValue)
        return texts.joined(separator: "\n")
    }
}
