@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// `evict`, `check`, `stats`, `export`, `vacuum` and `checkpoint` against real files.
@Suite struct AdminMaintenanceTests {
    /// Ten finished rows (oldest first), three live ones, every mirror call delivered.
    func history() async throws -> (Fixture, finished: [String], live: [String]) {
        var fixture = try await Fixture()
        var finished: [String] = []
        for index in 0..<10 {
            let status: DelegationStatus = [.completed, .failed, .cancelled][index % 3]
            finished.append(try await fixture.make("old-\(index)", status))
        }
        let live = [
            try await fixture.make("live-p", .pending), try await fixture.make("live-q", .queued),
            try await fixture.make("live-i", .inProgress),
        ]
        fixture.deliverOutbox()
        return (fixture, finished, live)
    }

    @Test func evictKeepsExactlyNFinishedRowsAndArchivesWhatItDeletes() async throws {
        let (fixture, finished, live) = try await history()
        let admin = Admin(path: fixture.path)
        let raw = RawConnection(fixture.path)

        let dryRun = try await admin("evict", "--keep", "4", "--dry-run", "--json")
        #expect(dryRun.status == 0, "\(dryRun.stdout)\(dryRun.stderr)")
        #expect(dryRun.json?["would_evict"] == .int(6))
        #expect(dryRun.json?["delegations"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == Array(finished.prefix(6)))
        #expect(raw.value("SELECT count(*) FROM delegations") == "13", "a dry run changes nothing")

        let archive = fixture.directory.file("evicted.jsonl")
        let evicted = try await admin("evict", "--keep", "4", "--archive", archive, "--batch-size", "4", "--json")
        #expect(evicted.status == 0, "\(evicted.stdout)")
        #expect(evicted.json?["evicted"] == .int(6))
        #expect(evicted.json?["batches"] == .int(2))
        let remaining = Set(raw.column("SELECT id FROM delegations").compactMap { $0 })
        #expect(remaining == Set(finished.suffix(4) + live), "the 4 newest finished and every live row stay")
        #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id NOT IN (SELECT id FROM delegations)") == "0")

        let lines = try String(contentsOfFile: archive, encoding: .utf8).split(separator: "\n")
        let archived = try lines.map { try JSONValue.parse(String($0)) }
        #expect(archived.compactMap { $0["delegation"]?["id"]?.stringValue } == Array(finished.prefix(6)))
        #expect(archived.allSatisfy { ($0["events"]?.arrayValue?.count ?? 0) >= 2 }, "each with its events")
        #expect(archived.first?["events"]?[0]?["to_status"] == .string("pending"))
        let mode = try FileManager.default.attributesOfItem(atPath: archive)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        let again = try await admin("evict", "--keep", "4", "--json")
        #expect(again.json?["evicted"] == .int(0))
        let none = try await admin("evict", "--keep", "0", "--json")
        #expect(none.json?["evicted"] == .int(4))
        #expect(Set(raw.column("SELECT id FROM delegations").compactMap { $0 }) == Set(live), "live rows are never evicted")
    }

    @Test func evictHonoursAgeTheHistoryLimitAndUndeliveredMirrors() async throws {
        var (fixture, finished, _) = try await history()
        let admin = Admin(path: fixture.path)
        let raw = RawConnection(fixture.path)
        let young = try await admin("evict", "--older-than", "1h", "--json")
        #expect(young.json?["evicted"] == .int(0), "nothing finished an hour ago")
        // Finished rows whose platform mirror is not yet delivered stay until it is.
        let undelivered = try await fixture.make("fresh", .completed)
        let byLimit = try await admin("evict", "--json", environment: ["MAX_DELEGATION_HISTORY": "2"])
        #expect(byLimit.status == 0)
        #expect(byLimit.json?["keep"] == .int(2))
        #expect(byLimit.json?["held_back_undelivered_mirror"] == .int(0))
        let left = Set(raw.column("SELECT id FROM delegations WHERE finished_at IS NOT NULL").compactMap { $0 })
        #expect(left == [undelivered, finished.last!])
        let all = try await admin("evict", "--keep", "0", "--json")
        #expect(all.json?["held_back_undelivered_mirror"] == .int(1))
        #expect(raw.value("SELECT count(*) FROM delegations WHERE id = ?", undelivered) == "1")
        let badLimit = try await admin("evict", "--json", environment: ["MAX_DELEGATION_HISTORY": "lots"])
        #expect(badLimit.status == 1 && badLimit.error?.contains("MAX_DELEGATION_HISTORY") == true)
        let archiveInMissingDirectory = try await admin("evict", "--keep", "0", "--archive", "/nonexistent/dir/a.jsonl", "--json")
        #expect(archiveInMissingDirectory.status == 1)
        #expect(archiveInMissingDirectory.error?.contains("cannot open archive") == true)
    }

    @Test func checkPassesOnAHealthyQueueAndFindsHandMadeDamage() async throws {
        let (fixture, finished, live) = try await history()
        let admin = Admin(path: fixture.path)
        let healthy = try await admin("check", "--json")
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(healthy.json?["ok"] == .bool(true))
        #expect((healthy.json?["checks"]?.arrayValue?.count ?? 0) >= 8)

        // Someone with a sqlite3 shell drops the audit trigger and edits a row behind its back.
        let raw = RawConnection(fixture.path)
        #expect(raw.run("DROP TRIGGER delegations_audit_status").code == 0)
        #expect(raw.run("DROP TRIGGER delegations_status_bookkeeping").code == 0)
        #expect(raw.run("UPDATE delegations SET status = 'cancelled' WHERE id = ?", live[0]).code == 0)
        // And a worker died long ago holding a lease.
        #expect(raw.run("UPDATE delegations SET lease_expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", live[2]).code == 0)

        let damaged = try await admin("check", "--json")
        #expect(damaged.status == 1)
        #expect(damaged.json?["ok"] == .bool(false))
        let failedChecks = Set(damaged.json?["checks"]?.arrayValue?.filter { $0["ok"] == .bool(false) }.compactMap { $0["name"]?.stringValue } ?? [])
        #expect(failedChecks.isSuperset(of: ["schema", "status_matches_events", "stale_leases", "finished_at"]), "\(failedChecks)")
        #expect(!failedChecks.contains("integrity_check"))
        let text = try await admin("check")
        #expect(text.status == 1 && text.stdout.contains("FAILED") && text.stdout.contains("missing trigger delegations_audit_status"))
        _ = finished
    }

    @Test func checkReportsQueuedRowsOlderThanHalfTheQueuedDeadline() async throws {
        var fixture = try await Fixture()
        let id = try await fixture.make("q", .queued)
        fixture.deliverOutbox()
        let admin = Admin(path: fixture.path)
        let fresh = try await admin("check", "--json", "--queued-timeout", "1h")
        #expect(fresh.status == 0, "\(fresh.stdout)")
        // Accepted 40 minutes ago: past half of a one-hour deadline.
        RawConnection(fixture.path).run(
            "UPDATE delegations SET accepted_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-40 minutes') WHERE id = ?", id)
        let old = try await admin("check", "--json", "--queued-timeout", "1h")
        #expect(old.status == 1)
        let finding = old.json?["checks"]?.arrayValue?.first { $0["name"] == "queued_age" }
        #expect(finding?["ok"] == .bool(false) && finding?["examples"]?[0]?.stringValue?.contains(id) == true, "\(old.stdout)")
        // The workers' environment variable, in seconds, sets the same deadline.
        let longer = try await admin.run(["check", "--json"], environment: ["DELEGATION_QUEUED_TIMEOUT": "7200"])
        #expect(longer.status == 0, "40 minutes is under half of two hours: \(longer.stdout)")
    }

    @Test func statsCountsLeasesAttemptsAndTheMirrorBacklog() async throws {
        var fixture = try await Fixture()
        try await fixture.make("a", .completed)
        try await fixture.make("b", .completed)
        try await fixture.make("c", .failed)
        try await fixture.make("d", .inProgress)
        try await fixture.make("e", .pending)
        let stats = try await Admin(path: fixture.path)("stats", "--json")
        #expect(stats.status == 0)
        let json = try #require(stats.json)
        #expect(json["counts"]?["completed"] == .int(2))
        #expect(json["counts"]?["failed"] == .int(1))
        #expect(json["counts"]?["pending"] == .int(1))
        #expect(json["counts"]?["queued"] == .int(0))
        #expect(json["total"] == .int(5))
        #expect(json["leases"]?["held"] == .int(1))
        #expect(json["leases"]?["expired"] == .int(0))
        #expect(json["time_to_complete"]?["completed"] == .int(2))
        #expect(json["time_to_complete"]?["p50_seconds"]?.isNumber == true)
        #expect(json["time_to_complete"]?["p99_seconds"]?.isNumber == true)
        #expect(json["outbox"]?["pending"]?.intValue ?? 0 >= 7, "record for each claimed row, update and notify for each finished one")
        #expect(json["oldest_pending_age_seconds"]?.isNumber == true)
        #expect(json["attempts_histogram"]?["1"] == .int(4))
        let text = try await Admin(path: fixture.path)("stats")
        #expect(text.stdout.contains("time to complete") && text.stdout.contains("p95"))
    }

    @Test func exportStreamsEveryColumnAsJSONLinesCSVOrOneDocument() async throws {
        var fixture = try await Fixture()
        try await fixture.make("plain", .completed)
        try await fixture.make("tricky", task: "a, \"quoted\"\nsecond line", .failed)
        try await fixture.make("other", workspace: "ws-other", .pending)
        let admin = Admin(path: fixture.path)

        let jsonl = try await admin("export", "--order", "oldest", "--events")
        #expect(jsonl.status == 0)
        let rows = try jsonl.stdout.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 3)
        #expect(rows[1]["task"] == .string("a, \"quoted\"\nsecond line"))
        #expect(rows[0]["result"] == .string("result of plain"))
        #expect((rows[0]["events"]?.arrayValue?.count ?? 0) >= 3)

        let csv = try await admin("export", "--format", "csv", "--status", "failed")
        let lines = csv.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first?.hasPrefix("id,workspace_id,source_workspace_id,task,status") == true)
        #expect(csv.stdout.contains("\"a, \"\"quoted\"\"\nsecond line\""), "RFC 4180 quoting")

        let document = try await admin("export", "--workspace", "ws-other", "--json")
        #expect(document.json?["count"] == .int(1))
        #expect(document.json?["delegations"]?[0]?["status"] == .string("pending"))
        let conflicting = try await admin("export", "--format", "csv", "--json")
        #expect(conflicting.status == 64)
    }

    @Test func vacuumAndCheckpointReportSizes() async throws {
        let (fixture, _, _) = try await history()
        let admin = Admin(path: fixture.path)
        _ = try await admin("evict", "--keep", "0")
        let checkpoint = try await admin("checkpoint", "--json")
        #expect(checkpoint.status == 0, "\(checkpoint.stdout)")
        #expect(checkpoint.json?["after"]?["wal_bytes"] == .int(0))
        #expect(checkpoint.json?["before"]?["database_bytes"]?.intValue ?? 0 > 0)
        let vacuum = try await admin("vacuum", "--json")
        #expect(vacuum.status == 0, "\(vacuum.stdout)")
        #expect(vacuum.json?["after"]?["database_bytes"]?.intValue ?? 0 > 0)
        let text = try await admin("vacuum")
        #expect(text.stdout.contains("before") && text.stdout.contains("after"))
        let check = try await admin("check", "--json")
        #expect(check.json?["ok"] == .bool(true), "maintenance leaves a healthy queue")
    }
}

extension JSONValue {
    var isNumber: Bool {
        switch self {
        case .int, .double: true
        default: false
        }
    }
}
