import DelegationTool

/// Keeps string arguments that start with `data:` exactly as the agent wrote them.
///
/// The SDK decodes every JSON string that matches its data-URL pattern (`data:<anything but , ;>,<rest>`)
/// into `Value.data` with the bytes decoded, and that cannot be turned back into the original text: a task
/// such as `data: revenue 5M, costs 3M — compute the margin` would reach the peer as
/// `data: revenue 5M;base64,IGNvc3RzIDNN…`. So `AnsweringTransport` prefixes such strings in `tools/call`
/// arguments with a private-use marker before the SDK decodes the message, and `ToolArguments` removes it.
/// Strings that already start with the marker get one more, so every string comes back unchanged.
enum DataURLEscaping {
    static let marker = "\u{E000}"

    static func needsEscape(_ text: String) -> Bool {
        text.hasPrefix("data:") || text.hasPrefix(marker)
    }

    static func unescape(_ text: String) -> String {
        text.hasPrefix(marker) ? String(text.dropFirst(marker.count)) : text
    }

    /// The request with its `tools/call` string arguments escaped, or nil when nothing needed it (the
    /// message is then passed on byte for byte).
    static func escapeArguments(in request: JSONValue) -> JSONValue? {
        guard request["method"]?.stringValue == "tools/call", case .object(var pairs) = request,
            let paramsIndex = pairs.lastIndex(where: { $0.0 == "params" }), case .object(var params) = pairs[paramsIndex].1,
            let argumentsIndex = params.lastIndex(where: { $0.0 == "arguments" }),
            case .object(var arguments) = params[argumentsIndex].1
        else { return nil }
        var changed = false
        for index in arguments.indices {
            if case .string(let text) = arguments[index].1, needsEscape(text) {
                arguments[index].1 = .string(marker + text)
                changed = true
            }
        }
        guard changed else { return nil }
        params[argumentsIndex].1 = .object(arguments)
        pairs[paramsIndex].1 = .object(params)
        return .object(pairs)
    }
}
