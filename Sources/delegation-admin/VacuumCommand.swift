import ArgumentParser
import DelegationStore

struct VacuumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vacuum",
        abstract: "Rebuild the file to return the space freed by evictions; report sizes before and after.",
        discussion: "Takes the write lock for the whole rebuild: workers wait (up to their busy timeout). Run it after a large evict.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    func run() async throws {
        try await Maintenance.run(options, "vacuum") { try await $0.vacuum() }
    }
}
