import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import TestSupport
import Testing

/// Long tasks run once: sends ask the peer not to hold the request, the task is followed from the
/// database one poll at a time, and a delegation that ends without its peer asks the peer to cancel.
@Suite struct LongTaskTests {
    @Test(arguments: [FakePeer.Dialect.v03, .v10])
    func aTaskLongerThanTheTimeoutRunsOnceAndCompletes(dialect: FakePeer.Dialect) async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow", dialect: dialect) { _ in .longTask(.seconds(3), then: .completed("slow and done")) }
        let id = try await scenario.delegate("ws-slow", "think for a while")
        try await scenario.runUntilIdle { $0.requestTimeout = .seconds(1) }

        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "slow and done")
        #expect(row.attempts == 1, "following the task spent no attempt")
        #expect(peer.executions == [row.messageID: 1], "the peer ran the task exactly once")
        #expect(peer.sends.count == 1)
        let configuration = peer.sends[0].params["configuration"]
        #expect(dialect == .v03 ? configuration?["blocking"] == .bool(false) : configuration?["returnImmediately"] == .bool(true))
        #expect(row.polls >= 1, "followed with tasks/get (\(row.polls) polls)")
        let events = try await scenario.events(id)
        #expect(events.filter { $0.kind == "status" }.map { $0.toStatus ?? "" } == ["pending", "in_progress", "completed"])
        #expect(events.contains { $0.kind == "a2a.handover" && $0.detail?.contains("task") == true })
        // enqueue, claim, discovery, (generation), answer, hand-over, state change, answer, completion, 3 mirror calls
        #expect(events.count <= 12, "polls that change nothing add no history (\(events.count) events for \(row.polls) polls)")
        #expect(events.contains { $0.kind == "a2a.state" && $0.detail?.contains("submitted → working") == true })
        await scenario.close()
    }

    @Test func betweenPollsAFollowedTaskHoldsNoSlot() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in .longTask(.seconds(30), then: .completed("done")) }
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await scenario.delegate("ws-slow", "task \(index)")) }
        let store = scenario.store
        let all = ids
        try await scenario.run(until: {
            // With one request in flight at a time, all five tasks run at the peer at once.
            guard peer.executions.count == 5 else { return false }
            let rows = try await withThrowingTaskGroup(of: Delegation?.self) { group in
                for id in all { group.addTask { try await store.delegation(id: id) } }
                return try await group.reduce(into: [Delegation]()) { if let row = $1 { $0.append(row) } }
            }
            return rows.allSatisfy { $0.status == .inProgress }
        }, timeout: .seconds(25)) { $0.concurrency = 1 }
        for id in ids {
            let row = try await scenario.row(id)
            #expect(row.remoteTaskID != nil && row.leaseOwner == nil, "parked between polls: no lease, no slot")
        }
        #expect(peer.executions.values.allSatisfy { $0 == 1 })
        await scenario.close()
    }

    @Test func aPeerThatIgnoresNonBlockingStillWorks() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-old", honoursNonBlocking: false) { _ in .longTask(.milliseconds(300), then: .completed("held, then answered")) }
        let id = try await scenario.delegate("ws-old")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "held, then answered" && row.remoteTaskID == nil)
        #expect(peer.executions == [row.messageID: 1])
        await scenario.close()
    }

    /// What the README says: a peer that ignores non-blocking and outlives --timeout gets the task again
    /// on the retry, under the same messageId (a peer that de-duplicates on it runs it once).
    @Test func aPeerThatIgnoresNonBlockingAndOutlivesTheTimeoutIsSentAgainWithTheSameMessageID() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-old", honoursNonBlocking: false) { _ in .longTask(.seconds(2), then: .completed("too late")) }
        let id = try await scenario.delegate("ws-old", maxAttempts: 2)
        try await scenario.runUntilIdle { $0.requestTimeout = .milliseconds(300) }
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error?.contains("timed out") == true)
        #expect(peer.sends.count == 2 && Set(peer.sends.compactMap(\.messageID)) == [row.messageID])
        await scenario.close()
    }

    @Test func aFollowedTaskSurvivesARestart() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow", dialect: .v10) { _ in .longTask(.seconds(1), then: .completed("still here")) }
        let id = try await scenario.delegate("ws-slow")
        let store = scenario.store
        try await scenario.run(until: { try await store.delegation(id: id)?.remoteTaskID != nil })
        try await scenario.runUntilIdle { $0.workerID = "second-worker" }
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "still here")
        #expect(peer.executions == [row.messageID: 1] && peer.sends.count == 1)
        await scenario.close()
    }

    @Test func cancelReachesThePeer() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow", dialect: .v10) { _ in .longTask(.seconds(60), then: .completed("never")) }
        let id = try await scenario.delegate("ws-slow")
        let store = scenario.store
        let path = scenario.databasePath
        try await scenario.run(until: {
            guard let row = try await store.delegation(id: id), row.remoteTaskID != nil else { return false }
            // The operator's command, as a user runs it, while the worker keeps running.
            if row.status == .inProgress {
                let admin = try Child(productPath("delegation-admin"), ["cancel", id, "--reason", "no longer needed", "--db", path])
                _ = await admin.finish(within: .seconds(20))
            }
            return !peer.cancels.isEmpty
        }, timeout: .seconds(20))
        let row = try await scenario.row(id)
        #expect(row.status == .cancelled && row.error?.contains("no longer needed") == true)
        #expect(peer.cancels == [row.remoteTaskID])
        let received = peer.received.first { $0.method == "CancelTask" }
        #expect(received?.params["id"]?.stringValue == row.remoteTaskID && received?.version == "1.0")
        try await scenario.run(until: { try await store.events(delegationID: id).contains { $0.kind == "peer.cancel" } })
        let answer = try await scenario.events(id).first { $0.kind == "peer.cancel" }?.detail
        #expect(answer?.contains("task canceled") == true, "the peer's answer is in the history: \(answer ?? "none")")
        await scenario.close()
    }

    @Test func theTaskDeadlineEndsAFollowUpAndCancelsAtThePeer() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in .longTask(.seconds(60), then: .completed("never")) }
        let id = try await scenario.delegate("ws-slow")
        try await scenario.runUntilIdle { $0.taskDeadline = .seconds(1) }
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error?.contains("task deadline") == true)
        #expect(peer.cancels == [row.remoteTaskID], "the peer was asked to stop the task")
        #expect(try await scenario.events(id).contains { $0.kind == "peer.cancel" && $0.detail?.contains("canceled") == true })
        await scenario.close()
    }

    @Test func aTaskThatFailsAtThePeerIsNotCancelled() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in
            .longTask(.milliseconds(300), then: .task(state: "failed", text: "the spreadsheet is corrupt", taskID: nil))
        }
        let id = try await scenario.delegate("ws-slow")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error == "peer task failed: the spreadsheet is corrupt")
        #expect(row.remoteState == "failed" && peer.cancels.isEmpty)
        #expect(!(try await scenario.events(id).contains { $0.kind == "peer.cancel" }))
        await scenario.close()
    }
}
