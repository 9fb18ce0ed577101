import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct DelegateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegate",
        abstract: "Enqueue a delegation; prints the tool's \"delegated\" answer.",
        discussion: "Roles come from WORKSPACE_ROLES (comma list, default operator); a denied caller stores nothing and exits 1.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Option(help: "The target workspace id.")
    var workspace: String

    @Option(help: "The task text sent to the peer.")
    var task: String

    @Option(name: .customLong("max-attempts"), help: "Attempts before giving up (default: the worker's --retry-attempts).")
    var maxAttempts: Int?

    func run() async throws {
        try await Admin.run(options, create: true) { store in
            let answer = try await DelegationTool(store: store, environment: ProcessInfo.processInfo.environment).delegate(workspaceID: workspace, task: task, maxAttempts: maxAttempts)
            let denied = answer["success"]?.boolValue == false
            let text: String
            if denied {
                text = "denied: \(answer["error"]?.stringValue ?? "")"
            } else {
                text = "delegated \(answer["task_id"]?.stringValue ?? "") to \(workspace)"
            }
            return Report(json: answer, text: text, failed: denied)
        }
    }
}
