import ArgumentParser
import DelegationStore
import DelegationTool

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The tool's check_delegation_status answer: one delegation, or every live one and the recent history.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Argument(help: "A delegation id (task_id). Without it: the list form.")
    var id: String?

    func run() async throws {
        try await Admin.run(options, access: .readOnly) { store in
            let tool = DelegationTool(store: store)
            guard let id else {
                let answer = try await tool.listAll()
                let rows = (answer["delegations"]?.arrayValue ?? []).map { entry in
                    [
                        entry["task_id"]?.stringValue ?? "", entry["workspace_id"]?.stringValue ?? "",
                        entry["status"]?.stringValue ?? "",
                        entry["result_preview"]?.stringValue ?? entry["error"]?.stringValue ?? entry["task"]?.stringValue ?? "",
                    ]
                }
                return Report(json: answer, text: Output.table(["TASK_ID", "WORKSPACE", "STATUS", "RESULT / ERROR / TASK"], rows)
                    + "\(rows.count) delegation(s)")
            }
            guard let delegation = try await store.delegation(id: id) else {
                throw DelegationStoreError.notFound(id: id)
            }
            let answer = ToolAnswer.status(of: delegation)
            var lines = [
                "task_id:   \(delegation.id)", "workspace: \(delegation.workspaceID)",
                "status:    \(delegation.status.rawValue)", "task:      \(Output.truncate(delegation.task, to: 200))",
            ]
            if let result = answer["result"]?.stringValue { lines.append("result:    \(Output.truncate(result, to: 500))") }
            if let error = answer["error"]?.stringValue { lines.append("error:     \(Output.truncate(error, to: 500))") }
            return Report(json: answer, text: lines.joined(separator: "\n"))
        }
    }
}
