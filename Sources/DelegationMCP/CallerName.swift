import Foundation
import Synchronization

/// Who is calling, for the history: the client's name from `initialize` (e.g. "claude-ai"), once known.
///
/// A cancel is recorded as "cancelled by delegation-mcp (workspace ws-self, client claude-ai): reason",
/// so an operator reading `delegation-admin show` can tell an agent's cancel from an operator's.
final class CallerName: Sendable {
    private let client = Mutex<String?>(nil)
    let workspaceID: String?

    init(workspaceID: String?) {
        self.workspaceID = workspaceID
    }

    func setClient(_ name: String) {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        client.withLock { $0 = trimmed.isEmpty ? nil : String(trimmed.prefix(100)) }
    }

    /// "delegation-mcp (workspace ws-self, client claude-ai)", or plain "delegation-mcp" when neither is known.
    var description: String {
        let parts = [workspaceID.map { "workspace \($0)" }, client.withLock { $0 }.map { "client \($0)" }].compactMap { $0 }
        return parts.isEmpty ? "delegation-mcp" : "delegation-mcp (" + parts.joined(separator: ", ") + ")"
    }
}
