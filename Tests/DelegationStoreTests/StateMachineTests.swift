import CSQLite
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// The schema's state machine, checked from raw SQL (the C API, no code of ours) and through the store.
@Suite struct StateMachineTests {
    static let farFuture = "2999-01-01T00:00:00.000Z"

    /// Raw SQL that walks a fresh pending row to `status` along legal transitions.
    static func path(to status: DelegationStatus) -> [String] {
        let claim = "UPDATE delegations SET status = 'in_progress', lease_owner = 'w1', lease_expires_at = '\(farFuture)', attempts = 1 WHERE id = ?1"
        switch status {
        case .pending: return []
        case .inProgress: return [claim]
        case .queued: return [claim, "UPDATE delegations SET status = 'queued' WHERE id = ?1"]
        case .completed: return [claim, "UPDATE delegations SET status = 'completed', result = 'done' WHERE id = ?1"]
        case .failed: return [claim, "UPDATE delegations SET status = 'failed', error = 'boom' WHERE id = ?1"]
        case .cancelled: return ["UPDATE delegations SET status = 'cancelled' WHERE id = ?1"]
        }
    }

    /// The raw SQL of a move to `status`, with what the CHECK constraints ask of that status.
    static func move(to status: DelegationStatus) -> String {
        switch status {
        case .inProgress:
            "UPDATE delegations SET status = 'in_progress', lease_owner = 'w2', lease_expires_at = '\(farFuture)' WHERE id = ?1"
        case .completed: "UPDATE delegations SET status = 'completed', result = 'r2' WHERE id = ?1"
        case .failed: "UPDATE delegations SET status = 'failed', error = 'e2' WHERE id = ?1"
        default: "UPDATE delegations SET status = '\(status.rawValue)' WHERE id = ?1"
        }
    }

    static let allPairs: [(DelegationStatus, DelegationStatus)] = DelegationStatus.allCases.flatMap { from in
        DelegationStatus.allCases.filter { $0 != from }.map { (from, $0) }
    }

    @Test func everyPairThroughTheCAPI() async throws {
        let directory = TemporaryDirectory()
        let raw = RawConnection(try await createDatabase(directory))
        var legal = 0
        var illegal = 0
        for (from, to) in Self.allPairs {
            let id = try #require(raw.value("INSERT INTO delegations (workspace_id, task) VALUES ('ws', 't') RETURNING id"))
            for step in Self.path(to: from) {
                #expect(raw.run(step, id).code == SQLITE_OK, "walking to \(from.rawValue)")
            }
            #expect(raw.value("SELECT status FROM delegations WHERE id = ?", id) == from.rawValue)
            let events = raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ?", id)
            let isLegal = DelegationStatus.legalTransitions.contains([from, to])
            if isLegal {
                let outcome = raw.run(Self.move(to: to), id)
                #expect(outcome.code == SQLITE_OK, "\(from.rawValue) -> \(to.rawValue): \(outcome.message)")
                #expect(raw.value("SELECT status FROM delegations WHERE id = ?", id) == to.rawValue)
                let last = raw.value(
                    "SELECT from_status || ' -> ' || to_status FROM delegation_events WHERE delegation_id = ? ORDER BY id DESC LIMIT 1",
                    id)
                #expect(last == "\(from.rawValue) -> \(to.rawValue)", "the trigger audits raw SQL")
                legal += 1
            } else {
                // Only the status changes, so the transition trigger is what answers.
                let outcome = raw.run("UPDATE delegations SET status = ?2 WHERE id = ?1", id, to.rawValue)
                #expect(outcome.code == SQLITE_CONSTRAINT, "\(from.rawValue) -> \(to.rawValue) must be refused")
                #expect(
                    outcome.message.hasPrefix("illegal status transition \(from.rawValue) -> \(to.rawValue)"),
                    "message: \(outcome.message)")
                #expect(raw.value("SELECT status FROM delegations WHERE id = ?", id) == from.rawValue)
                #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ?", id) == events)
                illegal += 1
            }
        }
        #expect(legal == 11)
        #expect(illegal == 19)
    }

    @Test func everyPairThroughTheStore() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for (from, to) in Self.allPairs {
            let answer = try await store.delegate(workspaceID: "ws", task: "t")
            let id = try #require(answer["task_id"]?.stringValue)
            for step in Self.path(to: from) {
                try await store.write("walking") { database in try database.execute(step, id) }
            }
            let move = Self.move(to: to)
            let target = to.rawValue
            if DelegationStatus.legalTransitions.contains([from, to]) {
                try await store.write("moving", id: id) { database in try database.execute(move, id) }
                #expect(try await store.delegation(id: id)?.status == to)
            } else {
                await #expect(throws: DelegationStoreError.self, "\(from.rawValue) -> \(target)") {
                    try await store.write("moving", id: id) { database in
                        try database.execute("UPDATE delegations SET status = ?2 WHERE id = ?1", id, target)
                    }
                }
                do {
                    try await store.write("moving", id: id) { database in
                        try database.execute("UPDATE delegations SET status = ?2 WHERE id = ?1", id, target)
                    }
                } catch let error as DelegationStoreError where error.code == .illegalTransition {
                    #expect(error.delegationID == id)
                    #expect(error.description.hasPrefix("delegation \(id): illegal status transition \(from.rawValue) -> \(target)"))
                }
                #expect(try await store.delegation(id: id)?.status == from)
            }
        }
        await store.close()
    }

    @Test func finalOutcomesNeverChange() async throws {
        let directory = TemporaryDirectory()
        let raw = RawConnection(try await createDatabase(directory))
        for status in [DelegationStatus.completed, .cancelled] {
            let id = try #require(raw.value("INSERT INTO delegations (workspace_id, task) VALUES ('ws', 't') RETURNING id"))
            for step in Self.path(to: status) { raw.run(step, id) }
            let before = raw.value("SELECT coalesce(result, '') || '|' || coalesce(error, '') FROM delegations WHERE id = ?", id)
            for change in ["UPDATE delegations SET result = 'forged' WHERE id = ?1", "UPDATE delegations SET error = 'forged' WHERE id = ?1"] {
                let outcome = raw.run(change, id)
                #expect(outcome.code == SQLITE_CONSTRAINT)
                #expect(outcome.message.contains("final"))
            }
            #expect(raw.value("SELECT coalesce(result, '') || '|' || coalesce(error, '') FROM delegations WHERE id = ?", id) == before)
        }
    }

    @Test func insertsMustBePendingAndPlainInsertWorks() async throws {
        let directory = TemporaryDirectory()
        let raw = RawConnection(try await createDatabase(directory))
        #expect(raw.run("INSERT INTO delegations (workspace_id, task) VALUES (?, ?)", "ws-9", "plain SQL task").code == SQLITE_OK)
        let row = raw.value(
            """
            SELECT status || '|' || attempts || '|' || length(id) || '|' || length(message_id) || '|' ||
                   substr(traceparent, 1, 3) || '|' || (next_run_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
            FROM delegations WHERE workspace_id = 'ws-9'
            """)
        #expect(row == "pending|0|36|36|00-|1")
        let id = try #require(raw.value("SELECT id FROM delegations WHERE workspace_id = 'ws-9'"))
        #expect(id.range(of: "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression) != nil)
        #expect(raw.value("SELECT to_status || ':' || detail FROM delegation_events WHERE delegation_id = ?", id) == "pending:enqueued for ws-9")
        for status in DelegationStatus.allCases where status != .pending {
            let outcome = raw.run("INSERT INTO delegations (workspace_id, task, status) VALUES ('ws', 't', ?)", status.rawValue)
            #expect(outcome.code == SQLITE_CONSTRAINT, "insert as \(status.rawValue)")
        }
        let bogus = raw.run("INSERT INTO delegations (workspace_id, task, status) VALUES ('ws', 't', 'done')")
        #expect(bogus.code == SQLITE_CONSTRAINT)
        let bogusUpdate = raw.run("UPDATE delegations SET status = 'done' WHERE id = ?", id)
        #expect(bogusUpdate.code == SQLITE_CONSTRAINT && bogusUpdate.message.contains("CHECK"))
        #expect(raw.run("UPDATE delegations SET task = 'rewritten' WHERE id = ?", id).code == SQLITE_CONSTRAINT)
        #expect(raw.run("UPDATE delegations SET message_id = 'x' WHERE id = ?", id).code == SQLITE_CONSTRAINT)
    }

    @Test func eventsAreAppendOnlyAndLeaveWithTheirDelegation() async throws {
        let directory = TemporaryDirectory()
        let raw = RawConnection(try await createDatabase(directory))
        let id = try #require(raw.value("INSERT INTO delegations (workspace_id, task) VALUES ('ws', 't') RETURNING id"))
        for step in Self.path(to: .completed) { raw.run(step, id) }
        #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ?", id) == "3")
        #expect(raw.run("UPDATE delegation_events SET detail = 'rewritten'").code == SQLITE_CONSTRAINT)
        #expect(raw.run("DELETE FROM delegation_events WHERE delegation_id = ?", id).code == SQLITE_CONSTRAINT)
        #expect(
            raw.run("INSERT INTO delegation_events (delegation_id, kind, to_status) VALUES (?, 'status', 'failed')", id).code
                == SQLITE_CONSTRAINT, "a forged status event is refused")
        #expect(raw.run("DELETE FROM delegations WHERE id = ?", id).code == SQLITE_OK)
        #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ?", id) == "0")
    }

    @Test func leasesAreClearedWhenLeavingInProgress() async throws {
        let directory = TemporaryDirectory()
        let raw = RawConnection(try await createDatabase(directory))
        let id = try #require(raw.value("INSERT INTO delegations (workspace_id, task) VALUES ('ws', 't') RETURNING id"))
        for step in Self.path(to: .inProgress) { raw.run(step, id) }
        #expect(raw.run("UPDATE delegations SET status = 'cancelled' WHERE id = ?", id).code == SQLITE_OK)
        #expect(raw.value("SELECT coalesce(lease_owner, 'none') || '|' || (finished_at IS NOT NULL) FROM delegations WHERE id = ?", id) == "none|1")
        let detail = raw.value("SELECT worker FROM delegation_events WHERE delegation_id = ? AND to_status = 'cancelled'", id)
        #expect(detail == "w1", "the event names the worker that held it")
        // An in_progress row without a lease could never be reclaimed: refused.
        let other = try #require(raw.value("INSERT INTO delegations (workspace_id, task) VALUES ('ws', 't') RETURNING id"))
        #expect(raw.run("UPDATE delegations SET status = 'in_progress' WHERE id = ?", other).code == SQLITE_CONSTRAINT)
    }

    @Test func anInsertNeverReplacesAndAHandTypedRetryForgetsThePeerTask() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        try await store.handOver(id: id, worker: "w", remoteTaskID: "task-1", peerURL: "http://peer", state: "working", nextPoll: .zero)
        _ = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        try await store.fail(id: id, worker: "w", error: "deadline")
        let raw = RawConnection(directory.file("delegations.db"))
        let replaced = raw.run("INSERT OR REPLACE INTO delegations (id, workspace_id, task) VALUES (?, 'ws', 'other')", id)
        #expect(replaced.message.contains("never replaced"), "\(replaced)")
        #expect(raw.value("SELECT count(*) FROM delegation_events WHERE delegation_id = ?", id) != "0", "its history is intact")
        // Sent again by hand: the schema forgets the peer task it followed, so the claim sends anew.
        #expect(raw.run("UPDATE delegations SET status = 'pending' WHERE id = ?", id).code == 0)
        let row = try #require(try await store.delegation(id: id))
        #expect(row.remoteTaskID == nil && row.peerURL == nil && row.acceptedAt == nil && row.polls == 0 && row.finishedAt == nil)
        let claimed = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        #expect(claimed.first?.attempts == 2, "a send, not a poll")
        await store.close()
    }
}
