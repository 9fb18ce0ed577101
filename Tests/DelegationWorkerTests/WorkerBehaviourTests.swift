import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import Synchronization
import TestSupport
import Testing

/// What the worker does beyond the seed: both A2A generations, follow-ups, backoff, the outbox, leases.
@Suite struct WorkerBehaviourTests {
    @Test func aOneDotZeroPeerIsAnsweredInOneDotZeroAndRemembered() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-new", dialect: .v10) { _ in .completed("spoken in 1.0") }
        let first = try await scenario.delegate("ws-new")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(first).result == "spoken in 1.0")
        #expect(peer.received.map(\.method) == ["SendMessage"], "the refused 0.3 send is not recorded as received")
        let sent = try #require(peer.sends.first)
        #expect(sent.version == "1.0" && sent.header("A2A-Version") == "1.0")
        #expect(sent.params["message"]?["role"] == "ROLE_USER")
        #expect(try await scenario.events(first).contains { $0.kind == "a2a.generation" })
        let remembered = try await scenario.store.read { try PeerProtocols.all($0) }
        #expect(remembered[peer.url] == "1.0")

        // A new worker process (new memory) asks in 1.0 straight away.
        let second = try await scenario.delegate("ws-new")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(second).status == .completed)
        #expect(try await !scenario.events(second).contains { $0.kind == "a2a.generation" })
        await scenario.close()
    }

    /// A task past what a request carries (16 MiB) is refused when delegated; one written by raw SQL fails
    /// at once with the reason, and nothing is sent: its request body, escaped, could pass the HTTP
    /// client's 4 GiB buffer, whose size conversion traps — every in-flight delegation with it, on every
    /// worker.
    @Test func aTaskTooLargeToSendFailsAtOnceAndIsNotSent() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-big") { _ in .completed("ran") }
        let huge = String(repeating: "x", count: TextLimit.task + 1)
        await #expect(throws: DelegationStoreError.self) { try await scenario.delegate("ws-big", huge) }
        let tooLarge = try await scenario.store.write("raw SQL, as an operator might") { database in
            try database.execute(
                "INSERT INTO delegations (workspace_id, task, source_workspace_id) VALUES ('ws-big', ?, ?)", huge, Scenario.selfID)
            return try database.queryFirst("SELECT id FROM delegations WHERE seq = last_insert_rowid()")?[0].string ?? ""
        }
        let usual = try await scenario.delegate("ws-big", "an ordinary task")
        try await scenario.runUntilIdle()
        let failed = try await scenario.row(tooLarge)
        #expect(failed.status == .failed)
        #expect(failed.error?.contains("16777217 bytes") == true && failed.error?.contains("not sent") == true, "\(failed.error ?? "")")
        #expect(try await scenario.row(usual).result == "ran", "the ordinary task beside it is sent and completes")
        #expect(peer.sends.count == 1, "only the ordinary task reached the peer")
        await scenario.close()
    }

    @Test func zeroDotOneTextPartsAreRead() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-old") { _ in .legacyMessage("typed the old way") }
        let id = try await scenario.delegate("ws-old")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).result == "typed the old way")
        await scenario.close()
    }

    @Test(arguments: [FakePeer.Dialect.v03, .v10])
    func aWorkingTaskIsFollowedUntilItEnds(dialect: FakePeer.Dialect) async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow", dialect: dialect) { _ in .task(state: "working", text: nil, taskID: "peer-task-7") }
        peer.setTask("peer-task-7", replies: [.task(state: "working", text: nil, taskID: "peer-task-7"), .completed("finally done")])
        let id = try await scenario.delegate("ws-slow")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "finally done")
        #expect(row.remoteTaskID == "peer-task-7")
        #expect(row.attempts == 1, "following up is not a new attempt")
        #expect(peer.sends.count == 1)
        let polls = peer.received.filter { $0.method == "tasks/get" || $0.method == "GetTask" }
        #expect(polls.count == 2)
        #expect(polls.allSatisfy { $0.params["id"] == "peer-task-7" })
        await scenario.close()
    }

    @Test func retryAfterIsHonoured() async throws {
        let scenario = try await Scenario()
        let times = Mutex<[ContinuousClock.Instant]>([])
        try await scenario.peer("ws-busy") { _ in
            let count = times.withLock { times in
                times.append(.now)
                return times.count
            }
            return count == 1
                ? .http(503, #"{"error":"busy","busy":true,"retry_after":1}"#, headers: [("Retry-After", "1")])
                : .completed("after waiting")
        }
        let id = try await scenario.delegate("ws-busy")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).result == "after waiting")
        let sent = times.withLock { $0 }
        #expect(sent.count == 2)
        #expect(sent[1] - sent[0] >= .milliseconds(950), "waited for Retry-After (1 s), not the 50 ms backoff")
        await scenario.close()
    }

    @Test func aServerErrorIsRetriedThenSucceeds() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        try await scenario.peer("ws-flaky") { calls.next($0.delegationID) == 1 ? .http(500, "oops", headers: []) : .completed("second time") }
        let id = try await scenario.delegate("ws-flaky")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.attempts == 2)
        let retryEvent = try await scenario.events(id).first { $0.fromStatus == "in_progress" && $0.toStatus == "pending" }
        #expect(retryEvent?.detail?.contains("HTTP 500: oops") == true)
        await scenario.close()
    }

    @Test func spentRetriesFailWithTheLastError() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        let peer = try await scenario.peer("ws-down") { .http(502, "bad gateway #\(calls.next($0.delegationID))", headers: []) }
        let id = try await scenario.delegate("ws-down")
        let capped = try await scenario.delegate("ws-down", maxAttempts: 1)
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.attempts == 3)
        #expect(row.error == "HTTP 502: bad gateway #3")
        #expect(try await scenario.row(capped).attempts == 1, "a row's own max_attempts wins")
        #expect(peer.sends.count == 4)
        await scenario.close()
    }

    @Test func definitiveAnswersFailAtOnce() async throws {
        let scenario = try await Scenario()
        let replies: [String: FakePeer.Reply] = [
            "input": .task(state: "input-required", text: "which quarter?", taskID: nil),
            "rejected": .task(state: "rejected", text: "not my job", taskID: nil),
            "canceled": .task(state: "canceled", text: nil, taskID: nil),
            "notjson": .http(200, "<html>hello</html>", headers: []),
            "array": .http(200, "[1, 2]", headers: []),
            "gone": .http(410, #"{"error":"gone for good"}"#, headers: []),
        ]
        var ids: [String: String] = [:]
        for (name, reply) in replies {
            try await scenario.peer(name) { _ in reply }
            ids[name] = try await scenario.delegate(name)
        }
        try await scenario.runUntilIdle()
        func error(_ name: String) async throws -> String { try await scenario.row(ids[name]!).error ?? "" }
        #expect(try await error("input") == "peer task needs input, which a delegation cannot give: which quarter?")
        #expect(try await error("rejected") == "peer task rejected: not my job")
        #expect(try await error("canceled") == "peer task canceled")
        #expect(try await error("notjson") == "invalid JSON response")
        #expect(try await error("array") == "invalid JSON-RPC response: not an object")
        #expect(try await error("gone") == #"HTTP 410: {"error":"gone for good"}"#)
        for id in ids.values { #expect(try await scenario.row(id).attempts == 1) }
        await scenario.close()
    }

    @Test func theMessageIDAndTraceparentStayTheSameAcrossRetries() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        let peer = try await scenario.peer("ws-flaky") { calls.next($0.delegationID) < 3 ? .http(503, "busy", headers: []) : .completed("ok") }
        let id = try await scenario.delegate("ws-flaky", "the task text")
        try await scenario.runUntilIdle {
            $0.retryAttempts = 5
        }
        let row = try await scenario.row(id)
        #expect(row.status == .completed)
        let sends = peer.sends
        #expect(sends.count == 3)
        #expect(Set(sends.compactMap(\.messageID)) == [row.messageID])
        #expect(Set(sends.compactMap { $0.header("traceparent") }) == [row.traceparent])
        for send in sends {
            #expect(send.delegationID == id, "params.message.metadata.delegation_id")
            #expect(send.params["metadata"] == [
                "parent_task_id": .string(id), "source_workspace_id": .string(Scenario.selfID), "traceparent": .string(row.traceparent),
            ])
            #expect(send.text == "the task text")
        }
        await scenario.close()
    }

    @Test func everyPlatformCallCarriesTheToken() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("ok") }
        _ = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let calls = scenario.platform.calls
        #expect(calls.count >= 4)
        #expect(calls.allSatisfy { $0.authorization == "Bearer \(Scenario.token)" })
        #expect(calls.allSatisfy { $0.workspaceHeader == Scenario.selfID })
        #expect(calls.allSatisfy { $0.accepted })
        await scenario.close()
    }

    @Test func theOutboxIsDeliveredOnceWhenThePlatformComesBack() async throws {
        let scenario = try await Scenario()
        let platform = scenario.platform
        // The platform goes down while the peer is working: the outcome cannot be mirrored yet.
        try await scenario.peer("ws-peer") { _ in
            await platform.stop()
            return .completed("done while the platform was down")
        }
        let id = try await scenario.delegate("ws-peer")
        let store = scenario.store
        try await scenario.run(until: {
            let failedDeliveries = try await store.read {
                try $0.queryFirst("SELECT count(*) FROM platform_outbox WHERE kind = 'update' AND last_error IS NOT NULL")?[0].int
            }
            return try await scenario.row(id).status == .completed && failedDeliveries == 1
        })
        #expect(try await scenario.row(id).status == .completed)
        let backlog = try await scenario.store.read { try Outbox.backlog($0) }
        #expect(backlog >= 2, "update and notify wait in the outbox")
        let lastError = try await scenario.store.read {
            try $0.queryFirst("SELECT last_error FROM platform_outbox WHERE kind = 'update'")?[0].string
        }
        #expect(lastError?.contains("connection refused") == true, "\(lastError ?? "nil")")

        try await platform.start()
        try await scenario.runUntilIdle()
        #expect(platform.records.count == 1)
        #expect(platform.updates.count == 1)
        #expect(platform.notifications.count == 1)
        #expect(try await scenario.store.read { try Outbox.backlog($0) } == 0)
        await scenario.close()
    }

    @Test func aRejectedMirrorCallIsKeptAndLoggedNotRetried() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("ok") }
        scenario.platform.fail([.notify], with: 400)
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let dead = try await scenario.store.read {
            try $0.query("SELECT kind, last_error FROM platform_outbox WHERE dead_at IS NOT NULL").map { ($0[0].string, $0[1].string) }
        }
        #expect(dead.count == 1 && dead.first?.0 == "notify")
        #expect(dead.first?.1?.contains("HTTP 400") == true)
        #expect(scenario.platform.calls(to: "/notify").count == 1, "a 4xx is not retried")
        #expect(try await scenario.events(id).contains { $0.kind == "mirror" && ($0.detail ?? "").contains("refused by the platform") })
        await scenario.close()
    }

    @Test func cancellingMidRequestStopsTheWork() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in .delayed(.seconds(4), .completed("too late")) }
        let id = try await scenario.delegate("ws-slow")
        let store = scenario.store
        let platform = scenario.platform
        async let running: Void = scenario.run(until: { platform.updates.count == 1 }) { $0.lease = .seconds(1) }
        #expect(await eventually { peer.sends.count == 1 })
        try await store.cancel(id: id, reason: "operator changed their mind")
        try await running
        let row = try await scenario.row(id)
        #expect(row.status == .cancelled && row.result == nil)
        #expect(row.error == "operator changed their mind")
        let update = scenario.platform.updates.first?.body
        #expect(update == ["status": "failed", "error": "cancelled: operator changed their mind"])
        await scenario.close()
    }

    @Test func aLongRequestKeepsItsLeaseAgainstAnotherWorker() async throws {
        let scenario = try await Scenario()
        // The request outlives the lease several times over; renewals keep it.
        // (A 5 s lease renewed every 1.7 s: the suite runs four chaos workers beside this test, and on two
        // loaded cores a renewal can wait seconds for a thread and an fsync.)
        let peer = try await scenario.peer("ws-slow") { _ in .delayed(.milliseconds(12_000), .completed("slow but sure")) }
        let id = try await scenario.delegate("ws-slow")
        async let first: Void = scenario.runUntilIdle { $0.lease = .seconds(5); $0.requestTimeout = .seconds(60); $0.workerID = "first" }
        #expect(await eventually { peer.sends.count == 1 })
        try await scenario.run(for: .seconds(8)) { $0.lease = .seconds(5); $0.requestTimeout = .seconds(60); $0.workerID = "second" }
        try await first
        #expect(peer.sends.count == 1, "the lease was renewed, so nobody else sent it again")
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.attempts == 1)
        #expect(try await !scenario.events(id).contains { $0.kind == "lease" })
        await scenario.close()
    }

    @Test func resultsAreCappedAndHugeAnswersRefused() async throws {
        let scenario = try await Scenario()
        let big = String(repeating: "abcdefgh", count: 200_000)  // 1.6 MB
        try await scenario.peer("ws-big") { _ in .completed(big) }
        try await scenario.peer("ws-huge") { _ in .raw(LoopbackResponse(status: 200, body: Array(repeating: 0x20, count: 17 << 20))) }
        let bigID = try await scenario.delegate("ws-big")
        let hugeID = try await scenario.delegate("ws-huge")
        try await scenario.runUntilIdle()
        let stored = try #require(try await scenario.row(bigID).result)
        #expect(stored.utf8.count < (1 << 20) + 100)
        #expect(stored.hasSuffix("[truncated: 1048576 of 1600000 bytes kept]"))
        let huge = try await scenario.row(hugeID)
        #expect(huge.status == .failed && huge.error == "the peer's answer larger than 16777216 bytes")
        await scenario.close()
    }

    @Test func theHistoryLimitEvictsTheOldestFinishedRowsOnly() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("ok") }
        try await scenario.peer("ws-queue") { _ in .queued }
        var finished: [String] = []
        for _ in 0..<5 {
            finished.append(try await scenario.delegate("ws-peer"))
            try await scenario.runUntilIdle()
        }
        let queued = try await scenario.delegate("ws-queue")
        let store = scenario.store
        try await scenario.run(until: {
            let rows = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int }
            return try await scenario.row(queued).status == .queued && rows == 3
        }) { $0.historyLimit = 2 }
        let remaining = try await scenario.store.read { try $0.query("SELECT id FROM delegations").compactMap { $0[0].string } }
        #expect(Set(remaining) == Set(finished.suffix(2) + [queued]), "two newest finished kept, the live one untouched")
        await scenario.close()
    }

    @Test func invalidConfigurationIsRefusedWithEveryProblem() throws {
        var configuration = WorkerConfiguration()
        configuration.platformURL = "ftp://example"
        configuration.workspaceID = ""
        configuration.retryAttempts = 0
        configuration.concurrency = -1
        let problems = configuration.problems()
        #expect(problems.count == 4)
        #expect(problems.contains { $0.contains("--platform-url") })
        #expect(throws: WorkerConfigurationError.self) {
            let directory = TemporaryDirectory()
            let store = try DelegationStore(StoreConfiguration(path: directory.file("x.db")), logger: quietLogger)
            let http = DelegationWorker.makeHTTPClient(concurrency: 1)
            defer { try? http.syncShutdown() }
            _ = try DelegationWorker(configuration: configuration, store: store, httpClient: http, logger: quietLogger)
        }
    }
}
