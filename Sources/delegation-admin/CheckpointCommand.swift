import ArgumentParser
import DelegationStore

struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Copy the WAL into the database file and truncate it; report sizes before and after.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    func run() async throws {
        try await Maintenance.run(options, "checkpoint") { try await $0.checkpoint() }
    }
}
