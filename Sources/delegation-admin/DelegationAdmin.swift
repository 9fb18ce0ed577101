import ArgumentParser
import DelegationStore
import Foundation

/// `delegation-admin`: what an operator runs against a delegation database. Every subcommand reads or
/// changes the database through the same schema the worker uses, so the triggers guard it here too.
@main
struct DelegationAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegation-admin",
        abstract: "Inspect, repair and tidy a durable delegation database.",
        discussion: """
            Every subcommand takes --db PATH (env DELEGATION_DB, default ./delegations.db) and --json, \
            before or after the subcommand name \
            (exactly one JSON document on stdout; errors as {"error": "..."} with exit code 1). Only \
            `migrate` and `delegate` create a database that does not exist yet.
            Times are ISO 8601 in UTC (2026-11-28, 2026-11-28T02:00, 2026-11-28T02:00:00Z) or relative \
            to now (90s, 30m, 2h, 7d, 1w).
            """,
        subcommands: [
            MigrateCommand.self, DelegateCommand.self, StatusCommand.self, ListCommand.self, ShowCommand.self,
            EventsCommand.self, StatsCommand.self, RetryCommand.self, CancelCommand.self, EvictCommand.self,
            CheckCommand.self, ExportCommand.self, VacuumCommand.self, CheckpointCommand.self,
        ])

    /// `--db`, `--json`, `--busy-timeout`, `--log-format` before the subcommand, as people type `git -C`.
    @OptionGroup var global: CommonOptions

    /// ArgumentParser's own `main`, except that with `--json` a usage error is a JSON document too:
    /// a script that asked for JSON should never have to parse prose.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if arguments.contains("--json"), code != .success {
                Output.printJSON(["error": .string(fullMessage(for: error))])
                Foundation.exit(code.rawValue)
            }
            exit(withError: error)
        }
    }
}
