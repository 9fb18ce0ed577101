import ArgumentParser
import DelegationStore
import DelegationTool

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Delegations matching filters, newest first, at most --limit of them.",
        discussion: "Reads one page through an index; it never loads the whole table.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }
    @OptionGroup var filter: ListFilter

    @Option(help: "At most this many rows (1…100000).")
    var limit = 50

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000, not \(limit)") }
    }

    func run() async throws {
        let query = filter.query(limit: limit)
        try await Admin.run(options, access: .readOnly) { store in
            let rows = try await store.list(query)
            let json: JSONValue = ["delegations": .array(rows.map(\.summaryJSON)), "count": .int(rows.count)]
            let table = Output.table(
                ["ID", "WORKSPACE", "STATUS", "ATT", "CREATED", "UPDATED", "TASK", "RESULT / ERROR"],
                rows.map {
                    [
                        $0.id, $0.workspaceID, $0.status.rawValue, String($0.attempts), Output.relative($0.createdAt),
                        Output.relative($0.updatedAt), Output.truncate($0.task, to: 40),
                        Output.truncate($0.error ?? $0.result ?? "", to: 48),
                    ]
                })
            return Report(json: json, text: table + "\(rows.count) delegation(s)" + (rows.count == limit ? " (limit reached; --limit to see more)" : ""))
        }
    }
}
