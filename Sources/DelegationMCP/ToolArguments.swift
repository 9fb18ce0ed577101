import DelegationStore
import MCP

/// The arguments of one `tools/call`, checked by name and type before anything touches the store.
///
/// Agents get arguments wrong — a missing field, a number sent as a string, a misspelt name — and a
/// misspelt optional one would otherwise be silently ignored (`check_delegation_status` with `taskId`
/// would answer the list form). Every mistake becomes a `ToolArgumentError` naming the argument;
/// nothing here traps on input. JSON `null` for an optional argument means "not given", as many
/// clients send it.
struct ToolArguments {
    let tool: MCPToolName
    private let values: [String: Value]

    init(_ tool: MCPToolName, _ values: [String: Value]?) throws(ToolArgumentError) {
        self.tool = tool
        self.values = values ?? [:]
        let known = ToolCatalog.argumentNames(of: tool)
        if let unknown = self.values.keys.sorted().first(where: { !known.contains($0) }) {
            let expected = known.isEmpty ? "no arguments" : known.sorted().joined(separator: ", ")
            throw error(unknown, "is not an argument of \(tool.rawValue) (it takes \(expected))")
        }
    }

    /// A string that must be present; an empty one is left to the store, whose message names it.
    func requiredString(_ name: String) throws(ToolArgumentError) -> String {
        guard let value = try optionalString(name) else { throw error(name, "is required (a string)") }
        return value
    }

    /// - Parameter emptyIsAbsent: an empty string means "not given" (optional filters, where some models
    ///   send `""` for "any"; the original tool's `task_id=""` was its list form).
    func optionalString(_ name: String, emptyIsAbsent: Bool = false) throws(ToolArgumentError) -> String? {
        switch values[name] {
        case nil, .null?: return nil
        case .string(let text)?:
            let text = DataURLEscaping.unescape(text)
            return emptyIsAbsent && text.isEmpty ? nil : text
        // Without `AnsweringTransport` in front, the SDK decodes a string shaped like a data URL as `.data`:
        // the best that can be done then is the data URL it stands for.
        case .data(let mimeType, let bytes)?: return bytes.dataURLEncoded(mimeType: mimeType)
        case let other?: throw error(name, "must be a string, not \(Self.kind(of: other))")
        }
    }

    /// A whole number within `range` (a JSON number with no fraction, e.g. `50` or `50.0`).
    func optionalInteger(_ name: String, in range: ClosedRange<Int>) throws(ToolArgumentError) -> Int? {
        let number: Int
        switch values[name] {
        case nil, .null?: return nil
        case .int(let value)?: number = value
        case .double(let value)? where value.isFinite && value == value.rounded() && abs(value) < 1e15:
            number = Int(value)
        case let other?:
            throw error(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(Self.kind(of: other))")
        }
        guard range.contains(number) else {
            throw error(name, "must be from \(range.lowerBound) to \(range.upperBound), not \(number)")
        }
        return number
    }

    /// One of the six statuses; an empty string is no filter.
    func optionalStatus(_ name: String) throws(ToolArgumentError) -> DelegationStatus? {
        guard let text = try optionalString(name, emptyIsAbsent: true) else { return nil }
        guard let status = DelegationStatus(rawValue: text) else {
            let statuses = DelegationStatus.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(name, "must be one of \(statuses), not '\(text)'")
        }
        return status
    }

    private func error(_ argument: String, _ problem: String) -> ToolArgumentError {
        ToolArgumentError(tool: tool.rawValue, argument: argument, problem: problem)
    }

    /// How an argument's JSON type is named in error texts ("a number", "an object", …), with short values shown.
    static func kind(of value: Value) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return "a boolean (\(flag))"
        case .int(let number): return "the number \(number)"
        case .double(let number): return "the number \(number)"
        case .string(let escaped):
            let text = DataURLEscaping.unescape(escaped)
            return "the string '\(text.count > 40 ? String(text.prefix(40)) + "…" : text)'"
        case .data: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
