import ArgumentParser
import DelegationStore
import Foundation

/// The database file and its WAL, in bytes.
struct FileSizes: Sendable {
    var database: Int
    var wal: Int

    init(path: String) {
        func size(_ path: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        }
        database = size(path)
        wal = size(path + "-wal")
    }

    var json: JSONValue { ["database_bytes": .int(database), "wal_bytes": .int(wal)] }
    var text: String { "database \(Self.format(database)), WAL \(Self.format(wal))" }

    static func format(_ bytes: Int) -> String {
        switch bytes {
        case ..<1024: "\(bytes) B"
        case ..<(1024 * 1024): String(format: "%.1f KiB", Double(bytes) / 1024)
        default: String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
        }
    }
}

/// Runs one maintenance statement on its own connection: VACUUM and checkpoints cannot run inside the
/// store's write transactions. The store is opened first so the file is known to be a migrated queue.
func maintenance(
    _ options: CommonOptions, _ operation: String, _ body: @escaping @Sendable (Database) throws -> JSONValue
) async throws {
    try await Admin.run(options) { store in
        let configuration = store.configuration
        let before = FileSizes(path: configuration.path)
        let details: JSONValue
        do {
            let database = try Database(path: configuration.path, mode: .readWrite, busyTimeout: configuration.busyTimeout)
            details = try body(database)
        } catch let error as SQLiteError {
            throw DelegationStoreError.database(error, operation: operation)
        }
        let after = FileSizes(path: configuration.path)
        return Report(
            json: ["operation": .string(operation), "before": before.json, "after": after.json, "details": details],
            text: "\(operation)\nbefore  \(before.text)\nafter   \(after.text)")
    }
}

struct VacuumCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vacuum",
        abstract: "Rebuild the file to return the space freed by evictions; report sizes before and after.",
        discussion: "Takes the write lock for the whole rebuild: workers wait (up to their busy timeout). Run it after a large evict.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await maintenance(options, "vacuum") { database in
            try database.execute(script: "VACUUM")
            let row = try database.queryFirst("PRAGMA wal_checkpoint(TRUNCATE)")
            return ["checkpoint_busy": .bool((row?[0].int ?? 0) != 0)]
        }
    }
}

struct CheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Copy the WAL into the database file and truncate it; report sizes before and after.")

    @OptionGroup var options: CommonOptions

    func run() async throws {
        try await maintenance(options, "checkpoint") { database in
            let row = try database.queryFirst("PRAGMA wal_checkpoint(TRUNCATE)")
            return [
                "busy": .bool((row?[0].int ?? 0) != 0), "wal_frames": .int(row?[1].int ?? 0),
                "checkpointed_frames": .int(row?[2].int ?? 0),
            ]
        }
    }
}
