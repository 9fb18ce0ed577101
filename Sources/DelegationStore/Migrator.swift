import CSQLite
package import SQLiteDatabase

/// Applies migrations in order, recording each in `schema_migrations`.
///
/// Applying is idempotent and atomic: all pending migrations run in one `BEGIN IMMEDIATE` transaction,
/// so two processes starting together cannot both apply one, and a crash leaves the old schema intact.
package enum Migrator {
    package static let createTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT
        """

    /// Brings the schema up to date; returns the versions applied by this call (empty when current).
    @discardableResult
    package static func migrate(_ database: Database, migrations: [Migration] = Migration.all) throws -> [Int] {
        // Fast path without the write lock: every process and CLI call opens the database.
        if try isCurrent(database, migrations: migrations) { return [] }
        // A migration may rebuild a parent table (0004 does): with foreign keys on, dropping it would
        // cascade-delete every event. They are off while migrations run and verified before COMMIT.
        // (The pragma is a no-op inside a transaction, so it is set around it.)
        let foreignKeys = try database.queryFirst("PRAGMA foreign_keys")?[0].int == 1
        if foreignKeys { try database.execute(script: "PRAGMA foreign_keys = OFF") }
        defer { if foreignKeys { try? database.execute(script: "PRAGMA foreign_keys = ON") } }
        return try database.transaction(.immediate) {
            try database.execute(script: createTable)
            let applied = try appliedMigrations(database)
            try verify(applied, against: migrations)
            let done = Set(applied.map(\.version))
            var newlyApplied: [Int] = []
            for migration in migrations where !done.contains(migration.version) {
                do {
                    try database.execute(script: migration.sql)
                } catch let error as SQLiteError {
                    throw DelegationStoreError.migrationFailed(version: migration.version, name: migration.name, error)
                }
                try database.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
                    migration.version, migration.name, migration.checksum)
                newlyApplied.append(migration.version)
            }
            let orphans = try database.query("PRAGMA foreign_key_check")
            if let orphan = orphans.first {
                throw DelegationStoreError.migrationFailed(
                    version: newlyApplied.last ?? 0, name: "foreign key check",
                    SQLiteError(
                        extendedResultCode: SQLiteError.constraintForeignKey,
                        message: "\(orphans.count) row(s) would point at missing parents, e.g. \(orphan)"))
            }
            if let latest = migrations.last?.version {
                try database.execute(script: "PRAGMA user_version = \(latest)")  // an Int, not user input
            }
            return newlyApplied
        }
    }

    package static func appliedMigrations(_ database: Database) throws -> [AppliedMigration] {
        let exists = try database.queryFirst(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") != nil
        guard exists else { return [] }
        return try database.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
            .map {
                AppliedMigration(
                    version: $0[0].int ?? 0, name: $0[1].string ?? "", checksum: $0[2].string ?? "",
                    appliedAt: $0[3].string ?? "")
            }
    }

    package static func isCurrent(_ database: Database, migrations: [Migration]) throws -> Bool {
        let applied = try appliedMigrations(database)
        try verify(applied, against: migrations)
        return applied.count == migrations.count
    }

    /// Refuses a database written by a newer build, or one whose applied migrations were edited since.
    package static func verify(_ applied: [AppliedMigration], against migrations: [Migration]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for record in applied {
            guard let migration = known[record.version] else {
                throw DelegationStoreError.unknownSchemaVersion(
                    found: applied.map(\.version).max() ?? record.version, known: migrations.last?.version ?? 0)
            }
            if migration.checksum != record.checksum {
                throw DelegationStoreError.migrationChanged(version: record.version, name: record.name)
            }
        }
    }
}
