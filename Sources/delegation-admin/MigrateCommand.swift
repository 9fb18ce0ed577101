import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the database or bring its schema up to date; print the applied versions.",
        discussion: "Idempotent: running it on a current database changes nothing. Refuses a database migrated by a newer build.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    func run() async throws {
        try await Admin.run(options, create: true) { store in
            let path = store.configuration.path
            // Opening the store applied what was missing.
            let applied = try await store.appliedMigrations()
            let fresh = store.migratedAtOpen
            let json: JSONValue = [
                "database": .string(path),
                "schema_version": .int(applied.last?.version ?? 0),
                "applied_now": .array(fresh.map(JSONValue.int)),
                "migrations": .array(applied.map {
                    ["version": .int($0.version), "name": .string($0.name), "applied_at": .string($0.appliedAt)]
                }),
            ]
            let text = "database \(path): schema version \(applied.last?.version ?? 0)\n"
                + Output.table(
                    ["VERSION", "NAME", "APPLIED"],
                    applied.map { [String($0.version), $0.name, "\($0.appliedAt) (\(Output.relative($0.appliedAt)))"] })
            return Report(json: json, text: text)
        }
    }
}
