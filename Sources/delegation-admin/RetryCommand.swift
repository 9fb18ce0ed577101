import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Send failed delegations again: failed → pending, attempts reset, same messageId; audited.",
        discussion: "All or nothing: if one id is unknown or not failed, nothing changes.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Argument(help: "Delegation ids to retry.")
    var ids: [String] = []

    @Option(help: "Retry every delegation in this status instead of listing ids (only failed is retryable).")
    var status: DelegationStatus?

    @Option(help: "With --status: only those that finished at or after this time (ISO 8601 UTC, or relative: 2h).")
    var since: TimeArgument?

    func validate() throws {
        if ids.isEmpty == (status == nil) { throw ValidationError("give delegation ids or --status failed, not both or neither") }
        if let status, status != .failed { throw ValidationError("--status: only failed delegations can be retried, not \(status.rawValue)") }
        if since != nil, status == nil { throw ValidationError("--since needs --status failed") }
    }

    func run() async throws {
        let ids = self.ids
        let since = self.since?.timestamp
        let who = Operator.name
        try await Admin.run(options) { store in
            let retried: [String]
            if ids.isEmpty {
                retried = try await store.retryFailed(finishedSince: since, by: who)
            } else {
                try await store.retry(ids, by: who)
                retried = ids
            }
            return Report(
                json: ["retried": .array(retried.map(JSONValue.string)), "count": .int(retried.count)],
                text: retried.map { "retried \($0)" }.joined(separator: "\n") + (retried.isEmpty ? "nothing to retry" : ""))
        }
    }
}
