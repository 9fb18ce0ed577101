/// A `tools/call` whose arguments do not fit the tool's schema, said so that the calling agent can
/// correct the call: the tool, the argument and what was wrong with it.
///
/// Answered as a tool error (`isError: true`), not a JSON-RPC error: the model sees tool errors and can
/// retry with fixed arguments, while protocol errors usually stop at the client.
public struct ToolArgumentError: Error, Sendable, CustomStringConvertible, Equatable {
    public let tool: String
    public let argument: String
    public let problem: String

    public var description: String { "invalid arguments for \(tool): \(argument) \(problem)" }
}
