import ArgumentParser
import DelegationStore
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create the database or bring its schema up to date; print the applied versions.",
        discussion: "Idempotent: running it on a current database changes nothing. Refuses a database migrated by a newer build.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let before = alreadyApplied()
        try await Admin.run(options, create: true) { store in
            let path = store.configuration.path
            // Opening the store applied what was missing.
            let applied = try await store.read("reading schema_migrations") { try Migrator.appliedMigrations($0) }
            let fresh = applied.map(\.version).filter { !before.contains($0) }
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

    /// The versions the file held before this run (none when it does not exist or cannot be read yet).
    private func alreadyApplied() -> Set<Int> {
        guard let path = try? options.configuration(create: true).path, FileManager.default.fileExists(atPath: path),
            let database = try? Database(path: path, mode: .readOnly),
            let applied = try? Migrator.appliedMigrations(database)
        else { return [] }
        return Set(applied.map(\.version))
    }
}

struct DelegateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegate",
        abstract: "Enqueue a delegation; prints the tool's \"delegated\" answer.",
        discussion: "Roles come from WORKSPACE_ROLES (comma list, default operator); a denied caller stores nothing and exits 1.")

    @OptionGroup var options: CommonOptions

    @Option(help: "The target workspace id.")
    var workspace: String

    @Option(help: "The task text sent to the peer.")
    var task: String

    @Option(name: .customLong("max-attempts"), help: "Attempts before giving up (default: the worker's --retry-attempts).")
    var maxAttempts: Int?

    func run() async throws {
        try await Admin.run(options, create: true) { store in
            let answer = try await store.delegate(workspaceID: workspace, task: task, maxAttempts: maxAttempts)
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
