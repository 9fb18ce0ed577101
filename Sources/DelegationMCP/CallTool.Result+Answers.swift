import DelegationTool
import MCP

/// Tool answers as MCP results: the same JSON the admin CLI prints with `--json`, as one text content.
///
/// Text, not only `structuredContent`: every MCP client shows text to the model, and the keys stay in
/// the tool's order (`task_id`, `workspace_id`, `status`, …), which the SDK's unordered `Value` would lose.
extension CallTool.Result {
    static func answer(_ json: JSONValue, isError: Bool = false) -> CallTool.Result {
        CallTool.Result(content: [.text(text: json.serialized, annotations: nil, _meta: nil)], isError: isError)
    }

    /// A refusal or failure the calling agent should read and act on (`isError: true`), in plain words.
    static func failure(_ message: String) -> CallTool.Result {
        CallTool.Result(content: [.text(text: message, annotations: nil, _meta: nil)], isError: true)
    }
}
