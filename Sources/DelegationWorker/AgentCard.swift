import DelegationStore
import DelegationTool
import Foundation

/// What a peer's agent card (`/.well-known/agent-card.json`) says about the A2A generation it speaks.
///
/// Read once per unknown peer URL, so a 1.0-only server (the official SDK's default) is not asked in
/// 0.3 first. A card that cannot be read or says nothing useful changes nothing: the worker then
/// starts in 0.3 and switches on -32601/-32009, as before.
enum AgentCard {
    /// The card's address on the peer's origin (scheme, host and port of its A2A URL).
    static func url(forPeer peerURL: String) -> String? {
        guard var components = URLComponents(string: peerURL), components.host?.isEmpty == false,
            ["http", "https"].contains(components.scheme?.lowercased() ?? "")
        else { return nil }
        components.path = "/.well-known/agent-card.json"
        components.query = nil
        components.fragment = nil
        return components.url?.absoluteString
    }

    /// 1.0 when the card lists a JSON-RPC interface of protocol version 1.x (`supportedInterfaces`);
    /// 0.3 when it is a 0.x card (`protocolVersion` "0.2.x"/"0.3.x"); nil otherwise. Total over any bytes.
    static func version(from body: [UInt8]) -> A2AVersion? {
        guard body.count <= 1 << 20, let card = try? JSONValue.parse(body), card.isObject else { return nil }
        let interfaces = card["supportedInterfaces"]?.arrayValue ?? []
        func isJSONRPC(_ interface: JSONValue) -> Bool {
            (interface["protocolBinding"]?.stringValue ?? "JSONRPC").uppercased() == "JSONRPC"
        }
        if interfaces.contains(where: { isJSONRPC($0) && ($0["protocolVersion"]?.stringValue ?? "").hasPrefix("1.") }) {
            return .v10
        }
        if interfaces.contains(where: { isJSONRPC($0) && ($0["protocolVersion"]?.stringValue ?? "").hasPrefix("0.") }) {
            return .v03
        }
        if let version = card["protocolVersion"]?.stringValue {
            if version.hasPrefix("1.") { return .v10 }
            if version.hasPrefix("0.") { return .v03 }
        }
        return nil
    }
}
