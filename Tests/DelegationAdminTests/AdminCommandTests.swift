@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// `delegation-admin` run as a child process against real database files made by the store.
@Suite struct AdminCommandTests {
    @Test func migrateCreatesTheDatabaseOnceAndIsIdempotent() async throws {
        let directory = TemporaryDirectory()
        let admin = Admin(path: directory.file("new.db"))
        let first = try await admin("migrate", "--json")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.json?["applied_now"] == .array(Migration.all.map { .int($0.version) }))
        #expect(first.json?["schema_version"] == .int(Migration.all.last!.version))
        let mode = try FileManager.default.attributesOfItem(atPath: admin.path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600, "the queue's file is private")

        let second = try await admin("migrate", "--json")
        #expect(second.status == 0)
        #expect(second.json?["applied_now"] == .array([]))
        #expect(second.json?["migrations"]?.arrayValue?.count == Migration.all.count)

        let text = try await admin("migrate")
        #expect(text.stdout.contains("schema version \(Migration.all.last!.version)"))
        #expect(text.stdout.contains("VERSION") && text.stdout.contains("delegations"))
    }

    @Test func delegateAndStatusAnswerInTheSeedShapes() async throws {
        let directory = TemporaryDirectory()
        let admin = Admin(path: directory.file("d.db"))
        let delegated = try await admin("delegate", "--workspace", "ws-peer", "--task", "summarise the logs", "--json")
        #expect(delegated.status == 0, "\(delegated.stderr)")
        let json = try #require(delegated.json)
        guard case .object(let pairs) = json else { Issue.record("not an object"); return }
        #expect(pairs.map(\.0) == ["success", "task_id", "status", "message"])
        #expect(json["status"] == .string("delegated"))
        let id = try #require(json["task_id"]?.stringValue)

        let one = try await admin("status", id, "--json")
        #expect(one.status == 0)
        #expect(one.json?["task_id"] == .string(id))
        #expect(one.json?["status"] == .string("pending"))
        #expect(one.json?["task"] == .string("summarise the logs"))

        let all = try await admin("status", "--json")
        #expect(all.json?["count"] == .int(1))
        #expect(all.json?["delegations"]?[0]?["task_id"] == .string(id))

        let denied = try await admin("delegate", "--workspace", "ws-peer", "--task", "x", "--json", environment: ["WORKSPACE_ROLES": "viewer"])
        #expect(denied.status == 1)
        #expect(denied.json?["success"] == .bool(false))
        #expect(denied.json?["error"]?.stringValue?.contains("viewer") == true)
        #expect(RawConnection(admin.path).value("SELECT count(*) FROM delegations") == "1", "a denial stores nothing")

        let human = try await admin("status", id)
        #expect(human.stdout.contains("status:    pending"))
    }

    /// Output that cannot be written (a full disk under `> file`) ends the command with 1 and says so on
    /// stderr. Foundation's `FileHandle.write(_: Data)` is `try!` on Linux: it trapped.
    @Test func anOutputThatCannotBeWrittenIsAnErrorNotACrash() async throws {
        var fixture = try await Fixture()
        try await fixture.make("done", .completed)
        let full = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(full >= 0, "/dev/full answers every write with ENOSPC")
        defer { close(full) }
        for arguments in [["list"], ["list", "--json"], ["show", fixture.ids["done"] ?? ""], ["export"]] {
            let ends = try #require(closeOnExecPipe())
            let admin = try SpawnedProcess(Admin.binary, arguments + ["--db", fixture.path], stdout: full, stderr: ends.write)
            close(ends.write)
            let ended = await admin.waitForExit(timeout: .seconds(60))
            if !ended { admin.signal(SIGKILL); admin.waitUntilExit() }
            let stderr = String(decoding: FileHandle(fileDescriptor: ends.read, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
            #expect(ended && !admin.wasSignalled && admin.terminationStatus == 1, "\(arguments): \(stderr)")
            #expect(stderr.contains("could not write to standard output: No space left on device"), "\(arguments): \(stderr)")
        }
        await fixture.store.close()
    }

    @Test func listFiltersBindEveryValue() async throws {
        var fixture = try await Fixture()
        try await fixture.make("done", .completed)
        try await fixture.make("broken", workspace: "ws-other", .failed)
        try await fixture.make("waiting", .queued)
        try await fixture.make("gone", .cancelled)
        try await fixture.make("percent", task: "offer 50%_off today", .pending)
        try await fixture.make("quote", task: "it's \"quoted\"; DROP TABLE delegations; --", .pending)
        let admin = Admin(path: fixture.path)

        let everything = try await admin("list", "--json")
        #expect(everything.json?["count"] == .int(6))
        let newest = everything.json?["delegations"]?[0]?["id"]?.stringValue
        #expect(newest == fixture.ids["quote"], "newest first by default")
        let oldest = try await admin("list", "--order", "oldest", "--limit", "1", "--json")
        #expect(oldest.json?["delegations"]?[0]?["id"]?.stringValue == fixture.ids["done"])
        #expect(oldest.json?["count"] == .int(1))

        let failedOrQueued = try await admin("list", "--status", "failed", "--status", "queued", "--json")
        let found = Set(failedOrQueued.json?["delegations"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [])
        #expect(found == [fixture.ids["broken"]!, fixture.ids["waiting"]!])

        let other = try await admin("list", "--workspace", "ws-other", "--json")
        #expect(other.json?["count"] == .int(1))
        #expect(other.json?["delegations"]?[0]?["error"] == .string("peer said no"))

        // % and _ are literal text, not wildcards.
        let literal = try await admin("list", "--search", "50%_off", "--json")
        #expect(literal.json?["count"] == .int(1))
        let wildcard = try await admin("list", "--search", "5_%o", "--json")
        #expect(wildcard.json?["count"] == .int(0))
        let injection = try await admin("list", "--search", "\"quoted\"; DROP TABLE delegations; --", "--json")
        #expect(injection.json?["count"] == .int(1))
        let apostrophe = try await admin("list", "--search", "it's", "--workspace", "ws-peer' OR '1'='1", "--json")
        #expect(apostrophe.json?["count"] == .int(0))
        let byResult = try await admin("list", "--search", "RESULT OF DONE", "--json")
        #expect(byResult.json?["count"] == .int(1), "searches results, case-insensitively")
        #expect(RawConnection(fixture.path).value("SELECT count(*) FROM delegations") == "6")

        let recent = try await admin("list", "--since", "1h", "--json")
        #expect(recent.json?["count"] == .int(6))
        let before = try await admin("list", "--until", "1h", "--json")
        #expect(before.json?["count"] == .int(0))
        let future = try await admin("list", "--since", "2999-01-01", "--json")
        #expect(future.json?["count"] == .int(0))

        let table = try await admin("list")
        #expect(table.status == 0)
        #expect(table.stdout.contains("STATUS") && (table.stdout.contains("just now") || table.stdout.contains(" s ago")) && table.stdout.contains("6 delegation(s)"))
    }

    @Test func showAndEventsReconstructTheHistory() async throws {
        var fixture = try await Fixture()
        let failed = try await fixture.make("broken", .failed, detail: "HTTP 500 from peer")
        try await fixture.make("done", .completed)
        let admin = Admin(path: fixture.path)

        let shown = try await admin("show", failed, "--json")
        #expect(shown.status == 0)
        #expect(shown.json?["delegation"]?["status"] == .string("failed"))
        #expect(shown.json?["delegation"]?["message_id"]?.stringValue?.isEmpty == false)
        let transitions = shown.json?["events"]?.arrayValue?.filter { $0["kind"] == .string("status") }.map {
            "\($0["from_status"]?.stringValue ?? "∅")>\($0["to_status"]?.stringValue ?? "")"
        }
        #expect(transitions == ["∅>pending", "pending>in_progress", "in_progress>failed"])
        #expect(shown.json?["outbox"]?.arrayValue?.map { $0["kind"]?.stringValue ?? "" } == ["record", "update", "notify"])

        let human = try await admin("show", failed)
        #expect(human.stdout.contains("in_progress → failed") && human.stdout.contains("HTTP 500 from peer"))

        let timeline = try await admin("events", "--delegation", failed, "--json")
        #expect(timeline.json?["count"] == shown.json?["events"]?.arrayValue.map { .int($0.count) })
        #expect(timeline.json?["events"]?[0]?["to_status"] == .string("pending"), "oldest first for one delegation")

        let now = Date()
        let window = try await admin(
            "events", "--to-status", "failed", "--since", Timestamp.string(from: now.addingTimeInterval(-60)),
            "--until", Timestamp.string(from: now.addingTimeInterval(60)), "--json")
        #expect(window.json?["count"] == .int(1))
        #expect(window.json?["events"]?[0]?["delegation_id"] == .string(failed))
        #expect(window.json?["events"]?[0]?["detail"] == .string("HTTP 500 from peer"))
        #expect(window.json?["events"]?[0]?["workspace_id"] == .string("ws-peer"))
        let earlier = try await admin("events", "--to-status", "failed", "--until", "1h", "--json")
        #expect(earlier.json?["count"] == .int(0))
    }

    @Test func cancelAndRetryAreAuditedAndAllOrNothing() async throws {
        var fixture = try await Fixture()
        let pending = try await fixture.make("p", .pending)
        let completed = try await fixture.make("c", .completed)
        let failed = try await fixture.make("f", .failed)
        let admin = Admin(path: fixture.path)
        let raw = RawConnection(fixture.path)

        let refused = try await admin("cancel", pending, completed, "--json")
        #expect(refused.status == 1)
        #expect(refused.error?.contains("\(completed): a completed or cancelled delegation is final") == true, "the database's own words: \(refused.stdout)")
        #expect(raw.value("SELECT status FROM delegations WHERE id = ?", pending) == "pending", "nothing changed")

        let cancelled = try await admin("cancel", pending, "--reason", "duplicate request", "--json")
        #expect(cancelled.status == 0, "\(cancelled.stdout)")
        #expect(raw.value("SELECT status FROM delegations WHERE id = ?", pending) == "cancelled")
        #expect(raw.value("SELECT error FROM delegations WHERE id = ?", pending)?.contains("duplicate request") == true)
        #expect(raw.value("SELECT detail FROM delegation_events WHERE delegation_id = ? ORDER BY id DESC LIMIT 1", pending)?
            .contains("delegation-admin") == true)

        let notFailed = try await admin("retry", completed)
        #expect(notFailed.status == 1)
        #expect(notFailed.stderr.contains("only failed delegations can be retried"))

        let retried = try await admin("retry", failed, "--json")
        #expect(retried.status == 0)
        #expect(retried.json?["retried"] == .array([.string(failed)]))
        #expect(raw.value("SELECT status || '/' || attempts FROM delegations WHERE id = ?", failed) == "pending/0")
        #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ? AND kind = 'retry'", failed) == "1")

        var more = fixture
        let a = try await more.make("f2", .failed)
        let b = try await more.make("f3", .failed)
        let bulk = try await admin("retry", "--status", "failed", "--since", "1h", "--json")
        #expect(bulk.json?["count"] == .int(2))
        #expect(Set(bulk.json?["retried"]?.arrayValue?.compactMap(\.stringValue) ?? []) == [a, b])
        let wrongStatus = try await admin("retry", "--status", "completed")
        #expect(wrongStatus.status != 0 && wrongStatus.stderr.contains("only failed"))
    }

    @Test func unknownIdsMissingFilesAndBadArgumentsAreClearErrors() async throws {
        let fixture = try await Fixture()
        let admin = Admin(path: fixture.path)
        for command in [["status", "nope"], ["show", "nope"], ["cancel", "nope"], ["retry", "nope"], ["events", "--delegation", "nope"]] {
            let json = try await admin.run(command + ["--json"])
            #expect(json.status == 1, "\(command)")
            #expect(json.error == "No delegation found with task_id nope", "\(command): \(json.stdout)")
            let text = try await admin.run(command)
            #expect(text.status == 1)
            #expect(text.stderr.contains("No delegation found with task_id nope"))
        }

        let directory = TemporaryDirectory()
        let missing = Admin(path: directory.file("missing.db"))
        for command in [["list"], ["stats"], ["check"], ["evict"], ["vacuum"], ["status", "x"]] {
            let result = try await missing.run(command + ["--json"])
            #expect(result.status == 1)
            #expect(result.error?.contains("no delegation database at") == true, "\(command): \(result.stdout)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing.path), "inspecting never creates a database")
        let nowhere = Admin(path: directory.file("no/such/dir.db"))
        let noDirectory = try await nowhere("migrate", "--json")
        #expect(noDirectory.status == 1 && noDirectory.error?.contains("does not exist") == true)

        let notSQLite = directory.file("notes.txt")
        try Data("hello, this is not a database, not at all, no".utf8).write(to: URL(fileURLWithPath: notSQLite))
        let garbage = try await Admin(path: notSQLite)("list", "--json")
        #expect(garbage.status == 1 && garbage.error?.contains("not a SQLite database") == true, "\(garbage.stdout)")

        let badTime = try await admin("list", "--since", "yesterday-ish")
        #expect(badTime.status == 64)
        #expect(badTime.stderr.contains("--since"))
        let badTimeJSON = try await admin("events", "--until", "3 parsecs", "--json")
        #expect(badTimeJSON.status == 64)
        #expect(badTimeJSON.error?.contains("--until") == true, "usage errors are JSON too with --json: \(badTimeJSON.stdout)")
        let badAge = try await admin("evict", "--older-than", "-3d")
        #expect(badAge.status == 64 && badAge.stderr.contains("--older-than"))
        let hugeLimit = try await admin("list", "--limit", "99999999999999999999")
        #expect(hugeLimit.status == 64 && hugeLimit.stderr.contains("--limit"))
        let zeroLimit = try await admin("list", "--limit", "0", "--json")
        #expect(zeroLimit.status == 64 && zeroLimit.error?.contains("--limit") == true)
        let badStatus = try await admin("list", "--status", "exploded")
        #expect(badStatus.status == 64 && badStatus.stderr.contains("--status"))
        let nonUTF8 = try await admin.run(["list", "--search", String(decoding: [0x66, 0xFF, 0xFE, 0x27], as: UTF8.self), "--json"])
        #expect(nonUTF8.status == 0 && nonUTF8.json?["count"] == .int(0))
    }

    @Test func readOnlyCommandsOpenTheFileReadOnlyAndNeverMigrate() async throws {
        // A file an earlier build made (schema 3): looking at it must not upgrade it behind the operator's back.
        let directory = TemporaryDirectory()
        let path = directory.file("old.db")
        try FileManager.default.copyItem(
            atPath: packageRoot.appendingPathComponent("Tests/Fixtures/main-f131009.sqlite").path, toPath: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let admin = Admin(path: path)
        for command in [["list"], ["stats"], ["check"], ["show", "x"], ["events"], ["status"], ["export"], ["evict", "--keep", "0", "--dry-run"]] {
            let result = try await admin.run(command + ["--json"])
            #expect(result.status == 1, "\(command)")
            #expect(result.error?.contains("older than this build") == true && result.error?.contains("delegation-admin migrate") == true,
                    "\(command): \(result.stdout)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "not a byte changed")
        #expect(RawConnection(path).value("SELECT max(version) FROM schema_migrations") == "3")

        // After `migrate`, the same commands read it without writing: a read-only file is enough.
        #expect(try await admin("migrate", "--json").status == 0)
        #expect(RawConnection(path).value("PRAGMA wal_checkpoint(TRUNCATE)") != nil)
        let stamp = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        for command in [["list"], ["stats"], ["status"], ["events"], ["evict", "--keep", "0", "--dry-run"]] {
            let result = try await admin.run(command + ["--json"])
            #expect(result.status == 0, "\(command): \(result.stdout)")
        }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date == stamp)
        let retried = try await admin("retry", "--status", "failed", "--json")
        #expect(retried.status == 0, "writing commands still write: \(retried.stdout)")
    }

    @Test func globalOptionsWorkBeforeAndAfterTheSubcommand() async throws {
        var fixture = try await Fixture()
        try await fixture.make("a", .completed)
        let path = fixture.path
        func run(_ arguments: [String]) async throws -> Admin.Result {
            let child = try Child(Admin.binary, arguments)
            let result = await child.finish(within: .seconds(30))
            return Admin.Result(status: result.status, stdout: result.stdout, stderr: result.stderr)
        }
        let after = try await run(["list", "--db", path, "--json"])
        let before = try await run(["--db", path, "--json", "list"])
        let mixed = try await run(["--db", path, "list", "--json"])
        #expect(after.status == 0 && before.status == 0 && mixed.status == 0)
        #expect(before.stdout == after.stdout && mixed.stdout == after.stdout)
        #expect((try JSONValue.parse(before.stdout))["count"] == 1)
        // After the subcommand wins over before it.
        let other = try await run(["--db", "/nonexistent/elsewhere.db", "stats", "--db", path, "--json"])
        #expect(other.status == 0, "\(other.stdout)")
        let missing = try await run(["--json", "--db", fixture.directory.file("none.db"), "list"])
        let missingError = try JSONValue.parse(missing.stdout)["error"]?.stringValue
        #expect(missing.status == 1 && missingError?.contains("no delegation database") == true)
    }

    @Test func aLockedDatabaseWaitsForTheBusyTimeoutThenSaysSo() async throws {
        var fixture = try await Fixture()
        let id = try await fixture.make("p", .pending)
        let holder = RawConnection(fixture.path)
        #expect(holder.run("BEGIN IMMEDIATE").code == 0)
        let started = ContinuousClock.now
        let locked = try await Admin(path: fixture.path)("cancel", id, "--busy-timeout", "0.3", "--json")
        let waited = ContinuousClock.now - started
        #expect(locked.status == 1)
        #expect(locked.error?.contains("locked") == true, "\(locked.stdout)")
        #expect(waited >= .milliseconds(300))
        holder.run("ROLLBACK")
        #expect(RawConnection(fixture.path).value("SELECT status FROM delegations WHERE id = ?", id) == "pending")
        let reads = try await Admin(path: fixture.path)("list", "--json")
        #expect(reads.status == 0, "readers are never blocked by a writer (WAL)")
    }
}
