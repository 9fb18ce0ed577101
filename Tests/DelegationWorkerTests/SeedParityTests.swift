import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import TestSupport
import Testing

/// The original tool's 24 test cases (`shared/reference/seed-behaviour.md`), against the durable version.
@Suite struct SeedParityTests {
    @Test("1. roles without delegate are refused, mentioning RBAC")
    func rbacDenied() async throws {
        let directory = TemporaryDirectory()
        let store = try DelegationStore(StoreConfiguration(path: directory.file("d.db")), logger: quietLogger)
        let answer = try await DelegationTool(store: store, roles: ["read-only"], logger: quietLogger).delegate(workspaceID: "ws", task: "t")
        #expect(answer["success"] == false)
        #expect(answer["error"]?.stringValue?.contains("RBAC") == true)
        await store.close()
    }

    @Test("2. delegating returns at once with a task id and status delegated")
    func delegateReturnsAtOnce() async throws {
        let scenario = try await Scenario()
        // Every platform call would hang, and so would the peer: the seed blocked here for up to 300 s.
        scenario.platform.hang(Set(FakePlatform.Endpoint.allCases))
        try await scenario.peer("ws-peer") { _ in .delayed(.seconds(3600), .completed("late")) }
        let started = ContinuousClock.now
        let answer = try await scenario.store.delegate(workspaceID: "ws-peer", task: "t")
        // Nothing but one local commit: no call went out. The bound is far from the seed's 300 s and far
        // above a commit's worst on a loaded CI machine, so it fails only on a call that waits for the network.
        #expect(scenario.platform.calls.isEmpty)
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(answer["status"] == "delegated" && answer["success"] == true)
        #expect(answer["task_id"]?.stringValue?.count == 36)
        await scenario.close()
    }

    @Test("3. the run ends completed with the peer's text")
    func completesWithPeerText() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { .completed("peer says: \($0.text ?? "")") }
        let id = try await scenario.delegate("ws-peer", "hello")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed)
        #expect(row.result == "peer says: hello")
        #expect(try await scenario.store.checkStatus(taskID: id)["result"] == "peer says: hello")
        await scenario.close()
    }

    @Test("4. listing without an id after two delegations counts 2")
    func listCountsTwo() async throws {
        let scenario = try await Scenario()
        _ = try await scenario.delegate("a")
        _ = try await scenario.delegate("b")
        #expect(try await scenario.store.listAll()["count"] == 2)
        await scenario.close()
    }

    @Test("5. an unknown id answers with an error key")
    func unknownID() async throws {
        let scenario = try await Scenario()
        #expect(try await scenario.store.checkStatus(taskID: "nope")["error"] != nil)
        await scenario.close()
    }

    @Test("6. discovery 403 fails with Discovery failed", arguments: [403, 404, 400])
    func discoveryRefused(status: Int) async throws {
        let scenario = try await Scenario()
        scenario.platform.register("ws-peer", .status(status, "no"))
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.error == "Discovery failed: HTTP \(status)")
        #expect(row.attempts == 1, "a definitive answer is not retried")
        await scenario.close()
    }

    @Test("7. discovery 404 fails (unregistered workspace)")
    func discoveryNotFound() async throws {
        let scenario = try await Scenario()
        let id = try await scenario.delegate("nobody-home")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).status == .failed)
        #expect(try await scenario.row(id).error == "Discovery failed: HTTP 404")
        await scenario.close()
    }

    @Test("8. discovery 200 without a URL fails with No URL")
    func discoveryWithoutURL() async throws {
        let scenario = try await Scenario()
        scenario.platform.register("ws-peer", .noURL)
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).status == .failed)
        #expect(try await scenario.row(id).error?.contains("No URL") == true)
        await scenario.close()
    }

    @Test("9. a network error in discovery fails, carrying its text, after the retries")
    func discoveryNetworkError() async throws {
        let scenario = try await Scenario()
        scenario.platform.register("ws-peer", .dropConnection)
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.attempts == 3)
        #expect(row.error?.hasPrefix("Discovery failed: connection closed") == true, "\(row.error ?? "nil")")
        await scenario.close()
    }

    @Test("10. a Message answer's text parts are the result")
    func messageText() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .message("from a message") }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).result == "from a message")
        await scenario.close()
    }

    @Test("11. a Task answer's artifact text is the result")
    func taskArtifacts() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("from an artifact") }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        #expect(try await scenario.row(id).result == "from an artifact")
        await scenario.close()
    }

    @Test("12 and 13. 202 queued: queued, no error, exactly one send")
    func queuedIsNotResent() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-peer") { _ in .queued }
        let id = try await scenario.delegate("ws-peer")
        let platform = scenario.platform
        // Queued, and the platform asked several times since: still no second send.
        try await scenario.run(until: {
            try await scenario.row(id).status == .queued && platform.calls(to: "/delegations", method: "GET").count >= 3
        })
        let row = try await scenario.row(id)
        #expect(row.status == .queued)
        #expect(row.error == nil)
        #expect(peer.sends.count == 1)
        #expect(try await scenario.events(id).contains { $0.kind == "queued" && ($0.detail ?? "").contains("queue_id") })
        await scenario.close()
    }

    @Test("14. a 202 without the queued flag is not queued")
    func bare202IsNotQueued() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        let peer = try await scenario.peer("ws-peer") { received in
            calls.next(received.delegationID) == 1 ? .http(202, #"{"accepted": true}"#, headers: []) : .completed("second")
        }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "second")
        #expect(peer.sends.count == 2)
        #expect(try await scenario.events(id).contains { ($0.detail ?? "").contains("HTTP 202 without a queued acceptance") })
        await scenario.close()
    }

    @Test("15. queued, then the platform lists it completed: completed with the preview")
    func queuedResolvedCompleted() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .queued }
        let id = try await scenario.delegate("ws-peer")
        scenario.platform.resolve(delegationID: id, status: "completed", preview: "drained result")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed)
        #expect(row.result == "drained result")
        await scenario.close()
    }

    @Test("16. queued, then the platform lists it failed: failed with its error")
    func queuedResolvedFailed() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .queued }
        let id = try await scenario.delegate("ws-peer")
        scenario.platform.resolve(delegationID: id, status: "failed", error: "peer crashed while draining")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.error == "peer crashed while draining")
        await scenario.close()
    }

    @Test("17. queued and the list does not resolve it: stays queued")
    func queuedUnresolved() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .queued }
        let id = try await scenario.delegate("ws-peer")
        scenario.platform.resolve(delegationID: "someone-else", status: "completed", preview: "x")
        scenario.platform.resolve(delegationID: id, status: "dispatched")
        let platform = scenario.platform
        try await scenario.run(until: { platform.calls(to: "/delegations", method: "GET").count >= 3 })
        #expect(try await scenario.row(id).status == .queued, "the worker kept asking; nothing resolved it")
        await scenario.close()
    }

    @Test("18. queued and the platform unreachable: stays queued, nothing raised")
    func queuedPlatformDown() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .queued }
        let id = try await scenario.delegate("ws-peer")
        scenario.platform.fail([.list], with: 503)
        let platform = scenario.platform
        try await scenario.run(until: { platform.calls(to: "/delegations", method: "GET").count >= 2 })
        #expect(try await scenario.row(id).status == .queued)
        await scenario.close()
    }

    @Test("19. a JSON-RPC error answer fails")
    func jsonRPCError() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .jsonRPCError(-32602, "Invalid params") }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.error == "JSON-RPC error -32602: Invalid params")
        await scenario.close()
    }

    @Test("20. connection refused on every attempt fails, mentioning the refusal")
    func connectionRefused() async throws {
        let scenario = try await Scenario()
        let refusing = RefusingPort()
        scenario.platform.register("ws-peer", .url(refusing.url))
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.attempts == 3)
        #expect(row.error?.contains("connection refused") == true, "\(row.error ?? "nil")")
        #expect(row.error != "None")
        withExtendedLifetime(refusing) {}
        await scenario.close()
    }

    @Test("21. the record call carries exactly target_id, task, delegation_id")
    func recordCall() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("ok") }
        let id = try await scenario.delegate("ws-peer", "the task")
        try await scenario.runUntilIdle()
        let records = scenario.platform.calls(to: "/workspaces/\(Scenario.selfID)/delegations/record")
        #expect(records.count == 1)
        #expect(records.first?.body == ["target_id": "ws-peer", "task": "the task", "delegation_id": .string(id)])
        await scenario.close()
    }

    @Test("22. a failing record call does not stop the delegation")
    func recordFailureDoesNotStop() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("ok") }
        scenario.platform.fail([.record], with: 500)
        let id = try await scenario.delegate("ws-peer")
        let platform = scenario.platform
        try await scenario.run(until: {
            try await scenario.row(id).status == .completed && platform.calls(to: "/delegations/record").count >= 2
        })
        #expect(try await scenario.row(id).status == .completed)
        #expect(scenario.platform.updates.isEmpty, "the update waits for its record (in order)")
        scenario.platform.fail([.record], with: nil)
        try await scenario.runUntilIdle()
        #expect(scenario.platform.records.count == 1)
        #expect(scenario.platform.updates.count == 1)
        await scenario.close()
    }

    @Test("23. the completion update goes to …/{id}/update with status and response_preview")
    func completionUpdate() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("all done") }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let updates = scenario.platform.calls(to: "/workspaces/\(Scenario.selfID)/delegations/\(id)/update")
        #expect(updates.count == 1)
        #expect(updates.first?.body == ["status": "completed", "response_preview": "all done"])
        let notes = scenario.platform.notifications
        #expect(notes.count == 1)
        #expect(notes.first?["message"]?.stringValue?.contains("completed: all done") == true)
        await scenario.close()
    }

    @Test("24. the update's response_preview is cut to 500 characters")
    func previewCut() async throws {
        let scenario = try await Scenario()
        let long = String(repeating: "ü", count: 700)
        try await scenario.peer("ws-peer") { _ in .completed(long) }
        let id = try await scenario.delegate("ws-peer")
        try await scenario.runUntilIdle()
        let preview = scenario.platform.updates.first?.body?["response_preview"]?.stringValue
        #expect(preview == String(repeating: "ü", count: 500))
        #expect(try await scenario.row(id).result == long, "the stored result is whole")
        await scenario.close()
    }
}
