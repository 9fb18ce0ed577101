import CSQLite
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// The SQL shown in README.md runs against a database the store produced, and answers something.
@Suite struct ReadmeQueryTests {
    static func readmeSQL(section: String) throws -> [String] {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: section) else { return [] }
        let rest = readme[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return rest[..<end].components(separatedBy: "```sql\n").dropFirst().map {
            String($0[..<($0.range(of: "```")?.lowerBound ?? $0.endIndex)])
        }
    }

    @Test func forensicQueriesAnswerAboutARealHistory() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        func delegate(_ task: String, to workspace: String = "ws-a") async throws -> String {
            try #require(try await store.delegate(workspaceID: workspace, task: task)["task_id"]?.stringValue)
        }
        // A failure, a success after a retry, a success at once, and a worker that died holding a row.
        let failed = try await delegate("will fail")
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.fail(id: failed, worker: "w1", error: "Discovery failed: HTTP 404")
        let retried = try await delegate("needs a retry", to: "ws-b")
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.scheduleRetry(id: retried, worker: "w1", error: "HTTP 503", after: .zero)
        _ = try await store.claim(worker: "w2", limit: 1, lease: .seconds(30))
        try await store.complete(id: retried, worker: "w2", result: "ok")
        let quick = try await delegate("quick")
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.complete(id: quick, worker: "w1", result: "ok")
        _ = try await delegate("orphaned")
        _ = try await store.claim(worker: "crashed-worker", limit: 1, lease: .milliseconds(1))
        await store.close()
        try await Task.sleep(for: .milliseconds(20))

        let queries = try Self.readmeSQL(section: "### Forensic queries")
        #expect(queries.count == 5)
        let raw = RawConnection(directory.file("delegations.db"))
        var answers: [[String?]] = []
        for query in queries {
            answers.append(raw.column(query))
            #expect(!answers.last!.isEmpty, "no rows for: \(query)")
        }
        #expect(answers[0] == [failed], "what failed, and why")
        #expect(answers[1] == [retried], "which needed more than one attempt")
        #expect(raw.column(queries[2]).count == 1, "the orphaned row")
        #expect(raw.value(queries[2].replacingOccurrences(of: "SELECT id,", with: "SELECT lease_owner,")) == "crashed-worker")
    }

    @Test func thePlainSQLEnqueueWorks() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let insert = try #require(try Self.readmeSQL(section: "### Enqueue with plain SQL").first)
        let raw = RawConnection(path)
        let id = try #require(raw.value(insert))
        let store = try makeStore(directory)
        #expect(try await store.checkStatus(taskID: id)["status"] == "pending")
        await store.close()
    }
}
