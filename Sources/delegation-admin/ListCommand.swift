import ArgumentParser
import DelegationStore

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Delegations matching filters, newest first, at most --limit of them.",
        discussion: "Reads one page through an index; it never loads the whole table.")

    @OptionGroup var options: CommonOptions
    @OptionGroup var filter: ListFilter

    @Option(help: "At most this many rows (1…100000).")
    var limit = 50

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000, not \(limit)") }
    }

    func run() async throws {
        let (condition, arguments) = filter.whereClause
        let sql = "SELECT \(Delegation.columns) FROM delegations \(condition) \(filter.orderClause) LIMIT ?"
        let limit = self.limit
        try await Admin.run(options) { store in
            let rows = try await store.read("listing delegations") { database in
                try database.query(sql, arguments: arguments + [limit]).map(Delegation.init(row:))
            }
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

extension Delegation {
    /// A row for lists: every small column, the long texts cut to previews.
    var summaryJSON: JSONValue {
        [
            "id": .string(id), "workspace_id": .string(workspaceID), "status": .string(status.rawValue),
            "attempts": .int(attempts), "created_at": .string(createdAt), "updated_at": .string(updatedAt),
            "finished_at": finishedAt.map(JSONValue.string) ?? .null,
            "lease_owner": leaseOwner.map(JSONValue.string) ?? .null,
            "task": .string(ToolAnswer.preview(task)),
            "result_preview": result.map { .string(ToolAnswer.preview($0)) } ?? .null,
            "error": error.map(JSONValue.string) ?? .null,
        ]
    }
}
