@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// The README's three forensic questions: the CLI commands and the plain SQL give the same answers.
@Suite struct ReadmeForensicsTests {
    static func section() throws -> (commands: [String], queries: [String]) {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "### Three forensic questions"))
        let rest = readme[start.upperBound...]
        let body = String(rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)])
        func blocks(_ fence: String) -> [String] {
            body.components(separatedBy: fence).dropFirst().map { String($0[..<($0.range(of: "```")?.lowerBound ?? $0.endIndex)]) }
        }
        return (blocks("```sh\n"), blocks("```sql\n"))
    }

    @Test func cliAndSQLAnswerTheSameQuestions() async throws {
        var fixture = try await Fixture()
        let failed = try await fixture.make("broken", workspace: "ws-research", .failed, detail: "Discovery failed: HTTP 404")
        // A delegation that needed a retry, then completed.
        let retried = try await fixture.make("flaky", workspace: "ws-research", .pending)
        _ = try await fixture.store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await fixture.store.scheduleRetry(id: retried, worker: "w1", error: "HTTP 503", after: .zero)
        _ = try await fixture.store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await fixture.store.complete(id: retried, worker: "w1", result: "ok")
        // A worker that died holding a row, and the one that took it over.
        let orphan = try await fixture.make("orphan", workspace: "ws-other", .pending)
        _ = try await fixture.store.claim(worker: "crashed-worker", limit: 1, lease: .milliseconds(1))
        try await Task.sleep(for: .milliseconds(20))
        _ = try await fixture.store.claim(worker: "rescuer", limit: 1, lease: .seconds(30))

        let (commands, queries) = try Self.section()
        #expect(commands.count == 3 && queries.count == 3)
        let now = Date()
        let from = Timestamp.string(from: now.addingTimeInterval(-600))
        let to = Timestamp.string(from: now.addingTimeInterval(600))
        func hour(_ text: String) -> String {
            text.replacingOccurrences(of: "2026-11-28T02:00", with: from).replacingOccurrences(of: "2026-11-28T03:00", with: to)
        }
        let raw = RawConnection(fixture.path)
        let admin = Admin(path: fixture.path)

        // 1. What failed in the window, and why.
        let sqlFailed = raw.column(hour(queries[0]).replacingOccurrences(of: "SELECT e.at, e.delegation_id,", with: "SELECT e.delegation_id,"))
        #expect(sqlFailed == [failed])
        let cliFailed = try await admin.run(Self.arguments(hour(commands[0])) + ["--json"])
        #expect(cliFailed.json?["events"]?.arrayValue?.compactMap { $0["delegation_id"]?.stringValue } == [failed])
        #expect(cliFailed.json?["events"]?[0]?["detail"] == .string("Discovery failed: HTTP 404"))

        // 2. More than one attempt, and what went wrong on the way.
        let sqlRetried = raw.column(queries[1])
        #expect(sqlRetried == [retried])
        #expect(raw.column(queries[1].replacingOccurrences(of: "SELECT d.id,", with: "SELECT e.detail, d.id,")).first??
            .contains("after: HTTP 503") == true)
        let listed = try await admin("list", "--workspace", "ws-research", "--json")
        #expect(listed.json?["delegations"]?.arrayValue?.filter { ($0["attempts"]?.intValue ?? 0) > 1 }.compactMap { $0["id"]?.stringValue } == [retried])
        let timeline = try await admin("events", "--delegation", retried, "--json")
        #expect(timeline.json?["events"]?.arrayValue?.contains { $0["detail"]?.stringValue?.contains("after: HTTP 503") == true } == true)

        // 3. Who held a row when it was taken over.
        let sqlTakeover = raw.column(queries[2].replacingOccurrences(of: "SELECT at, delegation_id,", with: "SELECT delegation_id,"))
        #expect(sqlTakeover == [orphan])
        let cliTakeover = try await admin.run(Self.arguments(commands[2]) + ["--json"])
        let event = cliTakeover.json?["events"]?[0]
        #expect(event?["delegation_id"] == .string(orphan))
        #expect(event?["worker"] == .string("rescuer"))
        #expect(event?["detail"]?.stringValue?.contains("took over from crashed-worker") == true)
    }

    /// `delegation-admin events --a b` → `["events", "--a", "b"]` (the README's commands use no quoting).
    static func arguments(_ command: String) -> [String] {
        let line = command.split(separator: "\n").first.map(String.init) ?? ""
        let words = line.split(separator: "#").first!.split(separator: " ").map(String.init)
        return Array(words.dropFirst())
    }
}
