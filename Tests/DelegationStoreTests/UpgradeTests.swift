@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// A database made by an earlier build upgrades in place with its history intact, and the mirror's
/// waiting calls leave the due index (migration 0004).
@Suite struct UpgradeTests {
    /// Every event and every mirror call of a file, one line each: compared before and after an upgrade.
    static let eventsRead = "SELECT id || '|' || delegation_id || '|' || kind || '|' || coalesce(to_status, '') || '|' || coalesce(detail, '') FROM delegation_events ORDER BY id"
    static let outboxRead = "SELECT id || '|' || kind || '|' || coalesce(delivered_at, '') FROM platform_outbox ORDER BY id"

    /// A file's rows (as `rowsRead` lists them), events and mirror calls, one line each.
    struct History: Equatable {
        var rows, events, outbox: [String?]
        init(_ connection: RawConnection, rowsRead: String) {
            (rows, events, outbox) = (connection.column(rowsRead), connection.column(UpgradeTests.eventsRead), connection.column(UpgradeTests.outboxRead))
        }
    }

    /// `fixture` copied into `directory`, and its history before anything opens it.
    static func copy(_ fixture: String, into directory: TemporaryDirectory, rowsRead: String) throws -> (path: String, before: RawConnection, history: History) {
        let path = directory.file("upgraded.db")
        try FileManager.default.copyItem(atPath: fixture, toPath: path)
        let before = RawConnection(path)
        return (path, before, History(before, rowsRead: rowsRead))
    }

    /// `Tests/Fixtures/main-f131009.sqlite`: made by main at f131009 (schema 3) with the demo's six settled
    /// delegations plus rows pending, in progress, queued, cancelled, an old-style follow-up, and mirror
    /// calls undelivered and waiting behind an earlier one.
    static let fixture = packageRoot.appendingPathComponent("Tests/Fixtures/main-f131009.sqlite").path

    @Test func aDatabaseMadeByTheLastReleaseUpgradesWithItsHistoryIntact() async throws {
        let directory = TemporaryDirectory()
        let rowsRead = "SELECT id || '|' || status || '|' || attempts || '|' || coalesce(result, '') || '|' || coalesce(error, '') FROM delegations ORDER BY id"
        let (path, before, history) = try Self.copy(Self.fixture, into: directory, rowsRead: rowsRead)
        #expect(before.value("SELECT max(version) FROM schema_migrations") == "3")
        #expect(history.rows.count == 12 && history.events.count > 50)

        let store = try DelegationStore(StoreConfiguration(path: path))
        let after = RawConnection(path)
        #expect(after.value("SELECT max(version) FROM schema_migrations") == String(Migration.all.last!.version))
        #expect(History(after, rowsRead: rowsRead) == history, "every row, event and mirror call kept")
        #expect(after.column("PRAGMA foreign_key_check").isEmpty)
        #expect(after.value("PRAGMA integrity_check") == "ok")

        // The queued row and the old follow-up know when they were accepted (their deadlines count from it).
        #expect(after.value("SELECT count(*) FROM delegations WHERE (status = 'queued' OR remote_task_id IS NOT NULL) AND accepted_at IS NULL") == "0")
        // update and notify of the cancelled row wait behind its undelivered record, outside the due index.
        let waiting = after.column("SELECT kind FROM platform_outbox WHERE next_attempt_at = '9999-12-31T23:59:59.999Z' ORDER BY id")
        #expect(waiting == ["update", "notify"])

        // The state machine still holds on the upgraded file.
        let completed = try #require(after.value("SELECT id FROM delegations WHERE status = 'completed' LIMIT 1"))
        #expect(after.run("UPDATE delegations SET status = 'pending' WHERE id = ?", completed).message.contains("completed is final"))
        #expect(after.run("DELETE FROM delegation_events WHERE delegation_id = ?", completed).message.contains("append-only"))

        // And the rows in flight carry on: the expired old follow-up and the in-progress row are claimable.
        let claimed = try await store.claim(worker: "new-worker", limit: 10, lease: .seconds(30))
        #expect(claimed.contains { $0.remoteTaskID == "peer-task-2" && $0.attempts == 1 }, "an old follow-up is polled, not resent")
        #expect(claimed.contains { $0.remoteTaskID == "peer-task-4" && $0.attempts == 1 })
        await store.close()
    }

    /// `Tests/Fixtures/main-96fa6bc.sqlite`: made by main at 96fa6bc (schema 5: counts and the trigram index
    /// written per row) with `delegation-admin delegate` and hand-typed transitions: completed, failed,
    /// pending after a retry, queued, cancelled, in progress under an expired lease, pending.
    static let schema5Fixture = packageRoot.appendingPathComponent("Tests/Fixtures/main-96fa6bc.sqlite").path

    @Test func aDatabaseMadeBeforeTheLeanWritesUpgradesAndSearchesAsBefore() async throws {
        let directory = TemporaryDirectory()
        let rowsRead = "SELECT seq || '|' || id || '|' || status || '|' || attempts || '|' || coalesce(result, '') || '|' || coalesce(error, '') || '|' || coalesce(lease_owner, '') FROM delegations ORDER BY seq"
        let (path, before, history) = try Self.copy(Self.schema5Fixture, into: directory, rowsRead: rowsRead)
        #expect(before.value("SELECT max(version) FROM schema_migrations") == "5")
        #expect(history.rows.count == 7 && history.events.count == 18 && history.outbox.count == 12)

        let store = try DelegationStore(StoreConfiguration(path: path))
        #expect(store.migratedAtOpen == [6, 7])
        let after = RawConnection(path)
        #expect(History(after, rowsRead: rowsRead) == history, "every row, event and mirror call kept")
        #expect(after.value("PRAGMA integrity_check") == "ok")
        #expect(after.value("SELECT count(*) FROM sqlite_master WHERE name LIKE 'delegation_search%' AND name NOT IN ('delegation_search_queue', 'delegation_search_progress') AND type = 'table'") == "0",
                "0005's index left the database (0007)")
        #expect(FileManager.default.fileExists(atPath: SearchIndex.path(forDatabaseAt: path)), "for a file of its own")
        #expect(after.column("SELECT status || ':' || rows FROM delegation_counts ORDER BY status")
            == ["cancelled:1", "completed:1", "failed:1", "in_progress:1", "pending:2", "queued:1"])

        // Found by task, result and error as before the upgrade.
        func search(_ text: String) async throws -> [String] { try await store.list(DelegationQuery(search: text)).map(\.task) }
        #expect(try await search("q3 REPORT") == ["summarise the Q3 report"])
        #expect(try await search("up 12%") == ["summarise the Q3 report"])
        #expect(try await search("translation service") == ["translate the release notes"])
        #expect(try await search("timed out") == ["draft the incident review"])

        // The new indexes serve the claim: the retried and the fresh pending rows, and the expired lease.
        let claimed = try await store.claim(worker: "new-worker", limit: 10, lease: .seconds(30))
        #expect(Set(claimed.map(\.task)) == ["draft the incident review", "review the pull request", "archive the old tickets"])
        #expect(claimed.first { $0.task == "review the pull request" }?.takeovers == 1, "taken over from worker-a")
        #expect(try await store.renewLeases(worker: "new-worker", lease: .seconds(60)).count == 3)
        try await store.complete(id: claimed[0].id, worker: "new-worker", result: "finished after the upgrade")
        #expect(try await search("after the upgrade") == [claimed[0].task], "a changed row is found (queued or indexed)")
        #expect(try await store.releaseLeases(worker: "new-worker").count == 2)
        #expect(try await store.rowsLeftForTheSearchIndex() == 0, "the search index caught up")
        let findings = try await store.check(.nothingIsOld)
        #expect(findings.first { $0.name == "search_index" }?.ok == true, "\(findings)")
        await store.close()
    }

    /// `Tests/Fixtures/main-0ebf603.sqlite`: made by main at 0ebf603 (schema 6: the trigram index in the
    /// database, caught up in batches) with `delegation-admin delegate` and `cancel`, then hand-typed
    /// transitions and an insert: rows indexed, rows queued with older text in the index (a completion and
    /// a failure), a row never indexed, and a task with non-ASCII letters.
    static let schema6Fixture = packageRoot.appendingPathComponent("Tests/Fixtures/main-0ebf603.sqlite").path

    @Test func aDatabaseMadeBeforeTheIndexFileUpgradesAndSearchesAsBefore() async throws {
        let directory = TemporaryDirectory()
        let rowsRead = "SELECT seq || '|' || id || '|' || status || '|' || attempts || '|' || coalesce(result, '') || '|' || coalesce(error, '') FROM delegations ORDER BY seq"
        let (path, before, history) = try Self.copy(Self.schema6Fixture, into: directory, rowsRead: rowsRead)
        #expect(before.value("SELECT max(version) FROM schema_migrations") == "6")
        #expect(before.column("SELECT seq || ':' || indexed FROM delegation_search_queue ORDER BY seq") == ["2:1", "3:1", "6:0"])
        #expect(history.rows.count == 6)

        let store = try DelegationStore(StoreConfiguration(path: path))
        #expect(store.migratedAtOpen == [7])
        let after = RawConnection(path)
        #expect(History(after, rowsRead: rowsRead) == history, "every row, event and mirror call kept")
        #expect(after.value("PRAGMA integrity_check") == "ok")
        #expect(after.value("SELECT count(*) FROM sqlite_master WHERE name LIKE 'delegation_search%' AND type = 'table'") == "2", "the queue and its progress alone")

        func search(_ text: String) async throws -> [String] { try await store.list(DelegationQuery(search: text)).map(\.task) }
        for round in ["queued or indexed", "indexed"] {
            if round == "indexed" { #expect(try await store.rowsLeftForTheSearchIndex() == 0, "the search index caught up") }
            #expect(try await search("VENDOR quotes") == ["compare vendor quotes for Q4"], "\(round)")
            #expect(try await search("8% cheaper") == ["compare vendor quotes for Q4"], "\(round): in the result")
            #expect(try await search("authority unreachable") == ["rotate the staging certificates"], "\(round): in the error")
            #expect(try await search("cancelled by delegation-admin") == ["reindex the wiki search"], "\(round)")
            #expect(try await search("release notes") == ["translate the release notes"], "\(round)")
            #expect(try await search("Ärger survey") == ["collect the Ärger survey answers"], "\(round)")
        }
        #expect(try await search("ärger survey") == ["collect the Ärger survey answers"], "the index folds non-ASCII case too")
        let index = try Database(path: SearchIndex.path(forDatabaseAt: path))
        #expect(try index.queryFirst("SELECT count(*) FROM search_docs")?[0].int == 6)
        try index.execute("INSERT INTO search_index (search_index, rank) VALUES ('integrity-check', 1)")
        let findings = try await store.check(.nothingIsOld)
        #expect(findings.first { $0.name == "search_index" }?.ok == true, "\(findings)")
        #expect(findings.first { $0.name == "schema" }?.ok == true, "\(findings)")
        await store.close()
    }

    @Test func mirrorCallsThatWaitAreOutOfTheDueIndexUntilTheEarlierOneIsDone() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        try await store.complete(id: id, worker: "w", result: "done")
        let raw = RawConnection(directory.file("delegations.db"))
        #expect(raw.column("SELECT kind || ':' || (next_attempt_at = '9999-12-31T23:59:59.999Z') FROM platform_outbox ORDER BY id")
            == ["record:0", "update:1", "notify:1"])

        let first = try await store.write("claim") { try Outbox.claim($0, worker: "m", limit: 10, lease: .seconds(30)) }
        #expect(first.map(\.kind) == [.record], "only the head of the delegation's calls is due")
        #expect(try await store.write("claim") { try Outbox.claim($0, worker: "m", limit: 10, lease: .seconds(30)) }.isEmpty,
                "a leased call is not due again until its lease expires")
        try await store.write("deliver") { try Outbox.delivered($0, item: first[0], worker: "m", status: 202) }
        let second = try await store.write("claim") { try Outbox.claim($0, worker: "m", limit: 10, lease: .seconds(30)) }
        #expect(second.map(\.kind) == [.update], "delivering the record let the update go")
        try await store.write("refuse") { try Outbox.dead($0, item: second[0], worker: "m", error: "HTTP 400") }
        let third = try await store.write("claim") { try Outbox.claim($0, worker: "m", limit: 10, lease: .seconds(30)) }
        #expect(third.map(\.kind) == [.notify], "a refused call lets the next one go too")
        await store.close()
    }

    @Test func claimingTheOutboxReadsOnlyWhatItReturns() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        // 2,000 delegations whose record failed (retry later) and whose update and notify wait behind it.
        try await store.write("seed") { database in
            for index in 0..<2_000 {
                let id = try Transitions.enqueue(database, workspaceID: "ws", task: "t\(index)", sourceWorkspaceID: nil, maxAttempts: nil).id
                _ = try database.execute("UPDATE delegations SET status = 'in_progress', lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE id = ?", id)
                _ = try database.execute("UPDATE platform_outbox SET next_attempt_at = '2999-01-01T00:00:00.000Z' WHERE delegation_id = ?", id)
                _ = try database.execute("UPDATE delegations SET status = 'failed', error = 'x' WHERE id = ?", id)
            }
        }
        let steps = try await store.write("claim") { database -> Int in
            _ = database.lastStatementSteps
            _ = try Outbox.claim(database, worker: "m", limit: 64, lease: .seconds(30))
            return database.lastStatementSteps
        }
        print("outbox claim VM steps with 6,000 calls waiting:", steps)
        #expect(steps < 500, "the claim visited \(steps) rows with 6,000 calls waiting; it should visit only due ones")
        await store.close()
    }
}
