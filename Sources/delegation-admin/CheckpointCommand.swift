import ArgumentParser
import DelegationStore

struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Copy the WAL into the database file and truncate it; report sizes before and after.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await Maintenance.run(options, "checkpoint") { try await $0.checkpoint() }
    }
}
