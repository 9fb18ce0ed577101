@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import CSQLite
import Foundation
import TestSupport
import Testing

/// Files and disks that misbehave: each gives a typed error, and nothing committed is lost.
@Suite struct FailureTests {
    @Test func aFullDiskIsATypedErrorAndKeepsWhatWasCommitted() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        var committed: [String] = []
        for index in 0..<5 {
            committed.append(try #require(try await store.delegate(workspaceID: "ws", task: "t\(index)")["task_id"]?.stringValue))
        }
        // The database may not grow past its current size: the next large insert cannot fit.
        try await store.write("limiting") { database in
            let pages = try database.queryFirst("PRAGMA page_count")?[0].int ?? 0
            try database.execute(script: "PRAGMA max_page_count = \(pages)")
        }
        let big = String(repeating: "x", count: 200_000)
        do {
            _ = try await store.delegate(workspaceID: "ws", task: big)
            Issue.record("the write must not fit")
        } catch let error as DelegationStoreError {
            #expect(error.code == .diskFull && error.isTransient)
            #expect(error.description.contains("full"))
            #expect((error.underlying as? SQLiteError)?.code == .full)
        }
        #expect(try await store.listAll()["count"] == .int(committed.count))
        let claimed = try await store.claim(worker: "w", limit: 10, lease: .seconds(30))
        #expect(claimed.count == committed.count, "small writes still work on the full database")
        await store.close()
    }

    @Test func aReadOnlyDatabaseIsATypedError() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        if geteuid() != 0 {
            chmod(path, 0o400)
            #expect(throws: DelegationStoreError.self) { try DelegationStore(StoreConfiguration(path: path), logger: quietLogger) }
            return
        }
        // root ignores file modes; a connection that may only read reports SQLITE_READONLY the same way.
        let store = try DelegationStore(StoreConfiguration(path: path), logger: quietLogger)
        try await store.write("setting up") { try $0.execute(script: "PRAGMA query_only = ON") }
        do {
            _ = try await store.delegate(workspaceID: "ws", task: "t")
            Issue.record("the database is read-only")
        } catch let error as DelegationStoreError {
            #expect(error.code == .readOnly && !error.isTransient)
            #expect(error.description.contains("read-only"))
        }
        await store.close()
    }

    /// A task larger than a request to a peer may carry is refused when it is delegated, with its size.
    @Test func aTaskOverSixteenMebibytesIsRefusedWhenDelegated() async throws {
        let directory = TemporaryDirectory()
        let store = try DelegationStore(StoreConfiguration(path: directory.file("q.db"), sourceWorkspaceID: "ws-self"), logger: quietLogger)
        do {
            _ = try await store.enqueue(workspaceID: "ws", task: String(repeating: "é", count: TextLimit.task / 2 + 1))
            Issue.record("a task of 16 MiB + 2 bytes was accepted")
        } catch let error as DelegationStoreError {
            #expect(error.code == .invalidInput && error.description.contains("16777218 bytes"), "\(error)")
        }
        #expect(try await store.rowCounts().values.reduce(0, +) == 0, "nothing was written")
        _ = try await store.enqueue(workspaceID: "ws", task: String(repeating: "x", count: 1000))
        await store.close()
    }

    /// Raw SQL may leave a counter at SQLite's largest integer (the CHECKs only ask for ≥ 0). `+ 1` would make
    /// it a REAL the STRICT column refuses, and every claim that took the row would fail, for every worker:
    /// the counters saturate instead.
    @Test func countersAtSQLitesLargestIntegerSaturateInsteadOfFailingEveryClaim() async throws {
        let directory = TemporaryDirectory()
        let store = try DelegationStore(StoreConfiguration(path: directory.file("q.db"), sourceWorkspaceID: "ws-self"), logger: quietLogger)
        let id = try await store.enqueue(workspaceID: "ws", task: "t").id
        try await store.write("raw SQL") { try $0.execute("UPDATE delegations SET attempts = 9223372036854775807") }
        let claimed = try await store.claim(worker: "w1", limit: 10, lease: .seconds(30))
        #expect(claimed.map(\.id) == [id])
        #expect(claimed.first?.attempts == Int.max)

        // A take-over of an expired lease counts one more take-over.
        try await store.write("raw SQL") {
            try $0.execute("UPDATE delegations SET takeovers = 9223372036854775807, lease_expires_at = '2000-01-01T00:00:00.000Z'")
        }
        let taken = try await store.claim(worker: "w2", limit: 10, lease: .seconds(30))
        #expect(taken.map(\.id) == [id])
        #expect(taken.first?.takeovers == Int.max)

        // The mirror's outbox counts its delivery attempts the same way.
        try await store.write("raw SQL") { try $0.execute("UPDATE platform_outbox SET attempts = 9223372036854775807") }
        let calls = try await store.claimOutbox(worker: "w2", limit: 10, lease: .seconds(30))
        #expect(!calls.isEmpty && calls.allSatisfy { $0.attempts == Int.max })
        await store.close()
    }

    /// A write that failed for a moment must be tried again (the worker's `persistently`), not taken as an
    /// answer: a peer's outcome would be dropped and the task sent again after the lease. A database that
    /// is read-only stays an answer, whatever the reason SQLite gives.
    @Test func momentaryFailuresAreTransientAndReadOnlyIsNot() {
        func classified(_ extendedCode: Int32) -> DelegationStoreError {
            DelegationStoreError.database(SQLiteError(extendedResultCode: extendedCode, message: "test"), operation: "testing")
        }
        // SQLITE_CANTOPEN (a -wal or -shm file, or no descriptor left) and SQLITE_CANTOPEN_NOTEMPDIR.
        for code: Int32 in [SQLITE_CANTOPEN, SQLITE_CANTOPEN | (1 << 8)] {
            #expect(classified(code).isTransient, "extended code \(code)")
        }
        // Read-only: a plain SQLITE_READONLY (query_only, file modes), and the extended codes (the C macros
        // are not imported) _RECOVERY, _CANTLOCK, _ROLLBACK, _DBMOVED, _CANTINIT, _DIRECTORY — permissions
        // of the log's files, a moved or deleted file: waiting does not cure them.
        for code: Int32 in [SQLITE_READONLY] + (1...6).map({ SQLITE_READONLY | ($0 << 8) }) {
            let error = classified(code)
            #expect(error.code == .readOnly && !error.isTransient, "extended code \(code)")
        }
        #expect(!classified(SQLITE_CONSTRAINT).isTransient && !classified(SQLITE_ERROR).isTransient)
    }

    /// Busy timeouts, lock-wait limits and the writer's idle interval all go through this: no duration
    /// a flag can hold overflows it.
    @Test func durationsSaturateToTheMillisecondsACallerCanUse() {
        #expect(Duration.milliseconds(1500).milliseconds(clampedTo: 0...10_000) == 1500)
        #expect(Duration.seconds(-5).milliseconds(clampedTo: 0...10_000) == 0)
        #expect(Duration.zero.milliseconds(clampedTo: 1...86_400_000) == 1)
        #expect(Duration.seconds(Int64.max).milliseconds(clampedTo: 0...Int64(Int32.max)) == Int64(Int32.max))
        #expect(Duration.seconds(Int64.min).milliseconds(clampedTo: -5...5) == -5)
        #expect(Duration.nanoseconds(2_999_999).milliseconds(clampedTo: 0...100) == 2)
    }

    @Test func aMissingDirectoryIsNamed() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("no/such/dir/delegations.db")
        do {
            _ = try DelegationStore(StoreConfiguration(path: path))
            Issue.record("must not open")
        } catch let error as DelegationStoreError {
            #expect(error.description.contains("directory \(directory.file("no/such/dir")) does not exist"))
        }
    }

    @Test func aMissingFileIsNotCreatedWhenNotAsked() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("absent.db")
        do {
            _ = try DelegationStore(StoreConfiguration(path: path, createIfMissing: false))
            Issue.record("must not open")
        } catch let error as DelegationStoreError {
            #expect(error.code == .databaseMissing && error.description.contains(path))
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aFileThatIsNotSQLiteIsRefusedUntouched() throws {
        let directory = TemporaryDirectory()
        let path = directory.file("notes.db")
        let content = Data(String(repeating: "these are my notes, not a database\n", count: 200).utf8)
        try content.write(to: URL(fileURLWithPath: path))
        do {
            _ = try DelegationStore(StoreConfiguration(path: path))
            Issue.record("must not open")
        } catch let error as DelegationStoreError {
            #expect(error.description.contains("not a SQLite database"), "\(error)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content)
    }

    @Test func newDatabasesAreReadableByTheirOwnerOnly() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test(arguments: StoreConfiguration.Durability.allCases)
    func durabilityIsTheConfiguredSynchronousLevel(durability: StoreConfiguration.Durability) async throws {
        let directory = TemporaryDirectory()
        let store = try DelegationStore(StoreConfiguration(path: directory.file("d.db"), durability: durability), logger: quietLogger)
        let (level, mode) = try await store.write("reading pragmas") { database in
            (try database.queryFirst("PRAGMA synchronous")?[0].int, try database.queryFirst("PRAGMA journal_mode")?[0].string)
        }
        #expect(level == (durability == .full ? 2 : 1))
        #expect(mode == "wal")
        await store.close()
    }
}

@Suite struct MigrationTests {
    /// The repository's migrations/ directory, read straight from disk.
    static func shippedFiles() throws -> [(name: String, sql: String)] {
        let directory = packageRoot.appendingPathComponent("migrations")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
            .map { ($0.replacingOccurrences(of: ".sql", with: ""), try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) }
    }

    @Test func theShippedFilesAreTheOnesApplied() async throws {
        let files = try Self.shippedFiles()
        #expect(!files.isEmpty)
        #expect(files.map(\.name) == Migration.all.map(\.name))
        #expect(files.map(\.sql) == Migration.all.map(\.sql), "the binary embeds the files byte for byte")
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let applied = try await store.read { try Migrator.appliedMigrations($0) }
        #expect(applied.map(\.name) == files.map(\.name))
        #expect(applied.map(\.checksum) == files.map { Migration(version: 0, name: "", sql: $0.sql).checksum })
        let version = try await store.read { try $0.queryFirst("PRAGMA user_version")?[0].int }
        #expect(version == Migration.all.last?.version)
        await store.close()
    }

    @Test func applyingTwiceChangesNothing() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let again = try await store.write("migrating") { try Migrator.migrate($0) }
        #expect(again.isEmpty)
        let schemaBefore = try await store.read { try $0.query("SELECT sql FROM sqlite_master ORDER BY name").map { $0[0].string ?? "" } }
        await store.close()
        let reopened = try makeStore(directory)
        let schemaAfter = try await reopened.read { try $0.query("SELECT sql FROM sqlite_master ORDER BY name").map { $0[0].string ?? "" } }
        #expect(schemaBefore == schemaAfter)
        let rows = try await reopened.read { try $0.queryFirst("SELECT count(*) FROM schema_migrations")?[0].int }
        #expect(rows == Migration.all.count)
        await reopened.close()
    }

    @Test func aFailingMigrationLeavesTheOldSchema() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let database = try Database(path: path)
        let broken = Migration.all + [Migration(version: 9001, name: "9001_broken", sql: "CREATE TABLE extra (x INTEGER); SELECT no_such_function();")]
        #expect(throws: DelegationStoreError.self) { try Migrator.migrate(database, migrations: broken) }
        #expect(try database.queryFirst("SELECT 1 FROM sqlite_master WHERE name = 'extra'") == nil, "rolled back as a whole")
        #expect(try Migrator.appliedMigrations(database).count == Migration.all.count)
    }

    @Test func aNewerOrEditedSchemaIsRefused() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let raw = RawConnection(path)
        raw.run("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'x')")
        do {
            _ = try DelegationStore(StoreConfiguration(path: path), logger: quietLogger)
            Issue.record("a newer schema must be refused")
        } catch let error as DelegationStoreError {
            #expect(error.code == .unknownSchemaVersion)
            #expect(error.description.contains("schema version 9999") && error.description.contains("(\(Migration.all.last!.version))"))
        }
        raw.run("DELETE FROM schema_migrations WHERE version = 9999")
        raw.run("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
        #expect(throws: DelegationStoreError.self) { try DelegationStore(StoreConfiguration(path: path), logger: quietLogger) }
    }
}
