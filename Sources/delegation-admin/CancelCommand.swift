import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel live delegations: pending, in_progress or queued → cancelled; audited.",
        discussion: """
            A worker holding one loses its lease and stops working on it. Completed and cancelled ones are \
            final; the database refuses and nothing changes. All or nothing across the ids given.
            """)

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Argument(help: "Delegation ids to cancel.")
    var ids: [String]

    @Option(help: "Why, recorded as the delegation's error and in its events.")
    var reason: String?

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one delegation id") }
    }

    func run() async throws {
        let ids = self.ids
        let reason = "cancelled by \(Operator.name)" + (reason.map { ": \($0)" } ?? "")
        try await Admin.run(options) { store in
            try await store.cancel(ids, reason: reason)
            return Report(
                json: ["cancelled": .array(ids.map(JSONValue.string)), "count": .int(ids.count)],
                text: ids.map { "cancelled \($0)" }.joined(separator: "\n"))
        }
    }
}
