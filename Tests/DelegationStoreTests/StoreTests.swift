@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import Logging
import TestSupport
import Testing

@Suite struct ToolParityTests {
    @Test func delegatedAnswerHasTheSeedShape() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let answer = try await store.delegate(workspaceID: "ws-peer", task: "summarise the report")
        let id = try #require(answer["task_id"]?.stringValue)
        #expect(answer == [
            "success": true, "task_id": .string(id), "status": "delegated",
            "message": .string("Task delegated to ws-peer. Use check_delegation_status('\(id)') to get the result when ready."),
        ])
        #expect(answer.serialized.hasPrefix("{\"success\": true, \"task_id\": "), "the seed's key order")
        let stored = try #require(try await store.delegation(id: id))
        #expect(stored.status == .pending)
        #expect(stored.sourceWorkspaceID == "ws-self")
        await store.close()
    }

    @Test func statusAnswersCutTheTaskTo200Characters() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let task = String(repeating: "é", count: 150) + String(repeating: "x", count: 150)
        let id = try #require(try await store.delegate(workspaceID: "ws-1", task: task)["task_id"]?.stringValue)
        let pending = try await store.checkStatus(taskID: id)
        #expect(pending == [
            "task_id": .string(id), "workspace_id": "ws-1", "status": "pending",
            "task": .string(String(repeating: "é", count: 150) + String(repeating: "x", count: 50)),
        ])
        let claimed = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        #expect(claimed.map(\.id) == [id])
        let longResult = String(repeating: "r", count: 450)
        try await store.complete(id: id, worker: "w", result: longResult)
        let done = try await store.checkStatus(taskID: id)
        #expect(done["status"] == "completed")
        #expect(done["result"] == .string(longResult), "check_delegation_status gives the whole result")
        #expect(done["error"] == nil)

        let other = try #require(try await store.delegate(workspaceID: "ws-2", task: "t2")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w", limit: 1, lease: .seconds(30))
        try await store.fail(id: other, worker: "w", error: "Discovery failed: HTTP 404")
        #expect(try await store.checkStatus(taskID: other) == [
            "task_id": .string(other), "workspace_id": "ws-2", "status": "failed", "task": "t2",
            "error": "Discovery failed: HTTP 404",
        ])

        let list = try await store.listAll()
        #expect(list["count"] == 2)
        let entries = try #require(list["delegations"]?.arrayValue)
        #expect(entries.count == 2)
        #expect(entries[0]["task_id"] == .string(id), "oldest first, like the seed's dict")
        #expect(entries[0]["result_preview"] == .string(String(repeating: "r", count: 200)))
        #expect(entries[1]["error"] == "Discovery failed: HTTP 404")
        await store.close()
    }

    @Test func unknownIDAnswersWithTheSeedText() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        #expect(try await store.checkStatus(taskID: "nope") == ["error": "No delegation found with task_id nope"])
        await store.close()
    }

    @Test(arguments: [["read-only"], ["no-delegation", "memory-readonly"], ["nobody"]])
    func rolesWithoutDelegateAreDeniedBeforeAnythingIsStored(roles: [String]) async throws {
        let directory = TemporaryDirectory()
        let (logger, lines) = CapturingLogHandler.logger()
        let store = try DelegationStore(StoreConfiguration(path: directory.file("d.db")), logger: quietLogger)
        let answer = try await DelegationTool(store: store, roles: roles, logger: logger).delegate(workspaceID: "ws", task: "t")
        let quoted = roles.map { "'\($0)'" }.joined(separator: ", ")
        #expect(answer == ["success": false, "error": .string("RBAC: no 'delegate' permission. Roles: [\(quoted)]")])
        #expect(try await store.listAll()["count"] == 0)
        let rows = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int }
        #expect(rows == 0)
        #expect(lines.all.contains { $0.level == .warning && $0.message == "delegation denied" && $0.metadata["event"] == "denied" })
        await store.close()
    }

    @Test func rolesComeFromAConfiguredCommaList() throws {
        #expect(RBAC.roles(fromList: nil) == ["operator"])
        #expect(RBAC.roles(fromList: " , ") == ["operator"])
        #expect(RBAC.roles(fromList: "read-only, admin") == ["read-only", "admin"])
        #expect(RBAC.mayDelegate(["read-only", "admin"]))
        #expect(RBAC.mayDelegate(["no-approval"]))
        #expect(!RBAC.mayDelegate(["read-only", "memory-readonly"]))
        let configuration = try StoreConfiguration.fromEnvironment(["WORKSPACE_ROLES": "read-only", "DELEGATION_DB": "/tmp/x.db"])
        #expect(configuration.path == "/tmp/x.db")
        #expect(configuration.durability == .full)
        #expect(throws: DelegationStoreError.self) { try StoreConfiguration.fromEnvironment(["DELEGATION_SYNCHRONOUS": "OFF"]) }
    }

    @Test func emptyInputIsRefused() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        await #expect(throws: DelegationStoreError.self) { try await store.delegate(workspaceID: " ", task: "t") }
        await #expect(throws: DelegationStoreError.self) { try await store.delegate(workspaceID: "ws", task: "  ") }
        #expect(try await store.listAll()["count"] == 0)
        await store.close()
    }
}

@Suite struct LeaseTests {
    @Test func expiredLeaseIsReclaimedAndTheOldHolderIsRefused() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        let first = try await store.claim(worker: "w1", limit: 10, lease: .seconds(60))
        #expect(first.map(\.id) == [id])
        #expect(first.first?.attempts == 1)
        #expect(try await store.claim(worker: "w2", limit: 10, lease: .seconds(30)).isEmpty, "the lease still holds")
        // w1 crashes and its minute passes (moving the expiry is the same as waiting for SQLite's clock).
        RawConnection(directory.file("delegations.db")).run(
            "UPDATE delegations SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds') WHERE id = ?", id)
        let second = try await store.claim(worker: "w2", limit: 10, lease: .seconds(30))
        #expect(second.map(\.id) == [id])
        let taken = try #require(second.first)
        #expect(taken.attempts == 2, "the crashed attempt counts")
        #expect(taken.messageID == first.first?.messageID)
        #expect(taken.traceparent == first.first?.traceparent)
        do {
            try await store.complete(id: id, worker: "w1", result: "late")
            Issue.record("the old holder's write must be refused")
        } catch let error as DelegationStoreError where error.code == .leaseLost {
            #expect(error.delegationID == id && error.currentStatus == .inProgress && error.currentOwner == "w2")
            #expect(error.description.contains("worker w1 no longer holds its lease"))
        }
        try await store.complete(id: id, worker: "w2", result: "on time")
        let row = try #require(try await store.delegation(id: id))
        #expect(row.result == "on time")
        let kinds = try await store.events(delegationID: id).map(\.kind)
        #expect(kinds == ["status", "status", "lease", "status"])
        await store.close()
    }

    @Test func renewingKeepsTheLeaseAndReportsLostOnes() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<3 { _ = try await store.delegate(workspaceID: "ws", task: "t\(index)") }
        let claimed = try await store.claim(worker: "w1", limit: 3, lease: .milliseconds(300))
        try #require(claimed.count == 3)
        try await store.cancel(id: claimed[0].id)
        try await Task.sleep(for: .milliseconds(150))
        let held = try await store.renewLeases(worker: "w1", lease: .seconds(30))
        #expect(held == Set(claimed.dropFirst().map(\.id)), "the cancelled one is no longer held")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await store.claim(worker: "w2", limit: 3, lease: .seconds(30)).isEmpty, "renewed leases are not stolen")
        await #expect(throws: DelegationStoreError.self) {
            try await store.complete(id: claimed[0].id, worker: "w1", result: "x")
        }
        await store.close()
    }

    @Test func renewingOnlyTheRowsInFlightLetsAForgottenLeaseExpire() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for _ in 0..<2 { _ = try await store.delegate(workspaceID: "ws", task: "t") }
        let claimed = try await store.claim(worker: "w1", limit: 2, lease: .seconds(30))
        try #require(claimed.count == 2)
        let held = try await store.renewLeases(worker: "w1", lease: .seconds(60), ids: [claimed[0].id])
        #expect(held == [claimed[0].id])
        let renewed = try #require(try await store.delegation(id: claimed[0].id)).leaseExpiresAt ?? ""
        let untouched = try #require(try await store.delegation(id: claimed[1].id)).leaseExpiresAt ?? ""
        #expect(renewed > untouched, "only the listed row got the longer lease")
        await store.close()
    }

    @Test func retriesWaitUntilDueAndKeepTheirAttempt() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.scheduleRetry(id: id, worker: "w1", error: "HTTP 503", after: .seconds(60))
        let waiting = try #require(try await store.delegation(id: id))
        #expect(waiting.status == .pending && waiting.error == "HTTP 503" && waiting.leaseOwner == nil)
        let due = try #require(Timestamp.date(from: waiting.nextRunAt))
        #expect(abs(due.timeIntervalSinceNow - 60) < 5, "due in a minute, not \(waiting.nextRunAt)")
        #expect(try await store.claim(worker: "w1", limit: 1, lease: .seconds(30)).isEmpty, "not due yet")
        // A minute passes (the clock is SQLite's; moving the row's due time is the same as waiting).
        RawConnection(directory.file("delegations.db")).run(
            "UPDATE delegations SET next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds') WHERE id = ?", id)
        let again = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        #expect(again.first?.attempts == 2)
        let detail = try await store.events(delegationID: id).first { $0.toStatus == "pending" && $0.fromStatus == "in_progress" }?.detail
        #expect(detail?.contains("after: HTTP 503") == true)
        await store.close()
    }

    @Test func releasingAtShutdownUncountsTheAttempt() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<4 { _ = try await store.delegate(workspaceID: "ws", task: "t\(index)") }
        let claimed = try await store.claim(worker: "w1", limit: 4, lease: .seconds(300))
        try #require(claimed.count == 4)
        try await store.handOver(
            id: claimed[0].id, worker: "w1", remoteTaskID: "peer-task-1", peerURL: "http://127.0.0.1:1", state: "working",
            nextPoll: .zero)
        let polling = try await store.claim(worker: "w1", limit: 4, lease: .seconds(300))
        #expect(polling.map(\.id) == [claimed[0].id], "a parked follow-up is claimed for its poll")
        let released = try await store.releaseLeases(worker: "w1")
        #expect(Set(released) == Set(claimed.map(\.id)))
        let followed = try #require(try await store.delegation(id: claimed[0].id))
        #expect(followed.status == .inProgress && followed.leaseOwner == nil, "a released poll is parked, not sent again")
        let again = try await store.claim(worker: "w2", limit: 4, lease: .seconds(30))
        #expect(again.count == 4, "released rows are claimable at once")
        #expect(again.allSatisfy { $0.attempts == 1 }, "the released attempt did not count")
        #expect(again.first { $0.id == claimed[0].id }?.remoteTaskID == "peer-task-1", "follow-up survives")
        #expect(try await store.events(delegationID: claimed[0].id).filter { $0.kind == "lease" }.isEmpty, "polls are not take-overs")
        await store.close()
    }

    @Test func aFollowedTaskPolledAThousandTimesKeepsItsHistoryShort() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "an hour of work")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.handOver(
            id: id, worker: "w1", remoteTaskID: "peer-task", peerURL: "http://peer", state: "submitted", nextPoll: .zero,
            steps: [.init("a2a.handover", "the peer runs it")])
        let afterHandOver = try await store.events(delegationID: id).count
        for poll in 0..<1_000 {
            let claimed = try await store.claim(worker: "w\(poll % 3)", limit: 1, lease: .seconds(30))
            try #require(claimed.map(\.id) == [id], "poll \(poll): a parked row is due for its poll")
            try #require(claimed[0].attempts == 1 && claimed[0].takeovers == 0)
            try await store.park(id: id, worker: "w\(poll % 3)", after: .answered(state: "working"), nextPoll: .zero)
        }
        let row = try #require(try await store.delegation(id: id))
        #expect(row.polls == 1_000 && row.lastPolledAt != nil && row.status == .inProgress && row.leaseOwner == nil)
        #expect(try await store.events(delegationID: id).count == afterHandOver, "a poll that changes nothing writes no event")
        #expect(try await store.events(delegationID: id).allSatisfy { $0.kind != "lease" }, "a poll is not a take-over")
        await store.close()
    }

    @Test func everyTransitionOfTheWorkerIsOneWriteOfTheRow() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let ids = [
            try #require(try await store.delegate(workspaceID: "ws", task: "a")["task_id"]?.stringValue),
            try #require(try await store.delegate(workspaceID: "ws", task: "b")["task_id"]?.stringValue),
        ]
        _ = try await store.claim(worker: "w", limit: 2, lease: .seconds(30))
        // The same move twice, by the worker and by hand: the hand-typed one differs by exactly the schema's
        // bookkeeping UPDATE (the row written a second time); the worker's statement left nothing to fix.
        let changed = try await store.write("complete") { database -> Int in
            let before = try database.queryFirst("SELECT total_changes()")?[0].int ?? 0
            try Transitions.fail(database, id: ids[0], worker: "w", error: "gave up")
            return (try database.queryFirst("SELECT total_changes()")?[0].int ?? 0) - before
        }

        let raw = try await store.write("raw") { database -> Int in
            let before = try database.queryFirst("SELECT total_changes()")?[0].int ?? 0
            try database.execute("UPDATE delegations SET status = 'failed', error = 'gave up' WHERE id = ?", ids[1])
            return (try database.queryFirst("SELECT total_changes()")?[0].int ?? 0) - before
        }
        #expect(raw == changed + 1, "worker: \(changed) changes; by hand: \(raw), one more: the bookkeeping UPDATE")
        for id in ids {
            let row = try #require(try await store.delegation(id: id))
            #expect(row.finishedAt != nil && row.leaseOwner == nil && row.leaseExpiresAt == nil && row.takeovers == 0)
        }
        await store.close()
    }

    @Test func countsAreKeptBySchemaAndSearchUsesTheTrigramIndex() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let texts = ["Summarise the Q3 REPORT", "translate 100% of the notes", "a_b c", "quote \"this\" here", "plain"]
        var ids: [String] = []
        for text in texts { ids.append(try #require(try await store.delegate(workspaceID: "ws", task: text)["task_id"]?.stringValue)) }
        _ = try await store.claim(worker: "w", limit: 5, lease: .seconds(30))
        try await store.complete(id: ids[0], worker: "w", result: "revenue up 12%")
        try await store.fail(id: ids[1], worker: "w", error: "peer said: Unsupported Format")
        try await store.cancel(id: ids[2], reason: "duplicate")
        // Raw SQL moves the counts too.
        let byHand = ids[3], evicted = ids[0]
        try await store.write("raw") { try $0.execute("UPDATE delegations SET status = 'cancelled' WHERE id = ?", byHand) }
        let counts = try await store.rowCounts()
        #expect(counts == [.pending: 0, .inProgress: 1, .queued: 0, .completed: 1, .failed: 1, .cancelled: 2])
        #expect(try await store.statistics(windowStart: "2000-01-01").counts == counts)

        func search(_ text: String) async throws -> Set<String> {
            Set(try await store.list(DelegationQuery(search: text)).map(\.id))
        }
        #expect(try await search("q3 report") == [ids[0]], "case-insensitive, in the task")
        #expect(try await search("UP 12%") == [ids[0]], "in the result; % is literal")
        #expect(try await search("unsupported") == [ids[1]], "in the error")
        #expect(try await search("100%") == [ids[1]])
        #expect(try await search("a_b") == [ids[2]], "_ is literal")
        #expect(try await search("\"this\"") == [ids[3]], "quotes are text")
        #expect(try await search("ab") == [], "two characters: the LIKE path, _ still literal")
        #expect(try await search("ai") == [ids[1], ids[4]], "plain, and the error \"peer said\"")
        #expect(try await search("nowhere to be found") == [])
        let plan = try await store.read { database in
            try database.query(
                "EXPLAIN QUERY PLAN SELECT id FROM delegations WHERE rowid IN (SELECT rowid FROM search.search_index WHERE search_index MATCH ?)",
                "\"report\"").compactMap { $0["detail"].string }
        }
        #expect(plan.contains { $0.contains("VIRTUAL TABLE INDEX") }, "\(plan)")
        // Evicting removes rows from both.
        try await store.write("evict") { database in
            _ = try Eviction.delete(database, ids: [evicted])
        }
        #expect(try await store.rowCounts()[.completed] == 0)
        #expect(try await search("q3 report") == [])
        await store.close()
    }

    /// `list --search` at 1M rows took 110 ms sorting every hit by created_at; the index now drives the
    /// query in rowid order and the limit ends it. Filters, order and limit still hold.
    @Test func searchWalksTheIndexInEnqueueOrderAndStopsAtTheLimit() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        var ids: [String] = []
        for index in 0..<12 {
            ids.append(try #require(try await store.delegate(workspaceID: index.isMultiple(of: 3) ? "ws-a" : "ws-b", task: "report \(index)")["task_id"]?.stringValue))
        }
        _ = try await store.delegate(workspaceID: "ws-a", task: "unrelated")
        let claimed = try await store.claim(worker: "w", limit: 4, lease: .seconds(30)).map(\.id)
        for id in claimed { try await store.fail(id: id, worker: "w", error: "peer down") }
        func list(_ query: DelegationQuery) async throws -> [String] { try await store.list(query).map(\.id) }

        #expect(try await list(DelegationQuery(search: "report", limit: 3)) == [ids[11], ids[10], ids[9]], "newest first, limited")
        #expect(try await list(DelegationQuery(search: "report", newestFirst: false, limit: 2)) == [ids[0], ids[1]])
        #expect(try await list(DelegationQuery(workspaceID: "ws-a", search: "REPORT")) == [ids[9], ids[6], ids[3], ids[0]])
        #expect(try await list(DelegationQuery(statuses: [.failed], search: "report")) == claimed.reversed())
        #expect(try await list(DelegationQuery(statuses: [.failed], search: "peer down", limit: 1)) == [claimed.last!], "in the error")
        #expect(try await list(DelegationQuery(statuses: [.completed], search: "report")) == [])

        // A row whose created_at says 2000 (the clock stepped back, or raw SQL): newest by enqueue order, so
        // first in a search; last by creation everywhere else.
        try await store.write("raw") { database in
            try database.execute("INSERT INTO delegations (workspace_id, task, created_at) VALUES ('ws-a', 'old report', '2000-01-01T00:00:00.000Z')")
        }
        let stepped = try await store.read { try $0.queryFirst("SELECT id FROM delegations WHERE task = 'old report'")?[0].string }
        #expect(try await list(DelegationQuery(search: "report", limit: 1)) == [stepped!], "enqueue order with a search")
        #expect(try await list(DelegationQuery(workspaceID: "ws-a")).last == stepped, "creation order without")
        // Two characters take the LIKE path: a numbered parameter among anonymous ones, LIMIT still last.
        #expect(try await list(DelegationQuery(statuses: [.failed], workspaceID: "ws-b", search: "rt", limit: 2)) == Array(claimed.filter { id in ids.firstIndex(of: id).map { !$0.isMultiple(of: 3) } ?? false }.reversed().prefix(2)))

        let (sql, arguments) = Queries.select("id", DelegationQuery(statuses: [.failed], search: "report", limit: 50))
        let plan = try await store.read { database in
            try database.query("EXPLAIN QUERY PLAN " + sql, arguments: arguments).compactMap { $0["detail"].string }
        }
        #expect(plan.first?.contains("MERGE (UNION ALL)") == true, "the index's hits and the rows queued for it, merged: \(plan)")
        #expect(plan.contains { $0.contains("search_index VIRTUAL TABLE") }, "the index drives its arm: \(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "no sort of every hit: \(plan)")
        await store.close()
    }

    @Test func queuedRowsResolveOnce() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.markQueued(id: id, worker: "w1", detail: "queue_id q-1, depth 3")
        #expect(try await store.delegation(id: id)?.status == .queued)
        #expect(try await store.resolveQueued(id: id, outcome: .completed(result: "preview")))
        #expect(try await !store.resolveQueued(id: id, outcome: .failed(error: "late")), "second resolution is a no-op")
        #expect(try await store.delegation(id: id)?.result == "preview")
        await store.close()
    }

    @Test func operatorCancelAndRetry() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        _ = try await store.claim(worker: "w1", limit: 1, lease: .seconds(30))
        try await store.fail(id: id, worker: "w1", error: "boom")
        do {
            try await store.cancel(id: id)
            Issue.record("failed -> cancelled is illegal")
        } catch let error as DelegationStoreError where error.code == .illegalTransition {
            #expect(error.description.contains("illegal status transition failed -> cancelled"))
        }
        try await store.retry(id: id, by: "alice")
        let retried = try #require(try await store.delegation(id: id))
        #expect(retried.status == .pending && retried.attempts == 0)
        #expect(try await store.events(delegationID: id).contains { $0.kind == "retry" && $0.worker == "alice" })
        await #expect(throws: DelegationStoreError.self) { try await store.retry(id: id) }
        try await store.cancel(id: id, reason: "no longer needed")
        #expect(try await store.checkStatus(taskID: id)["error"] == "no longer needed")
        do {
            try await store.cancel(id: "missing")
            Issue.record("unknown id must be reported")
        } catch DelegationStoreError.Code.notFound {
            #expect(DelegationStoreError.notFound(id: "missing").description == "No delegation found with task_id missing")
        }
        await store.close()
    }
}

@Suite struct GroupCommitTests {
    @Test func concurrentCompletionsShareCommitsAndFailuresStayAlone() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let count = 300
        for index in 0..<count { _ = try await store.delegate(workspaceID: "ws", task: "t\(index)") }
        let claimed = try await store.claim(worker: "w", limit: count, lease: .seconds(60))
        #expect(claimed.count == count)
        let before = (store.writerStatistics.transactions, store.writerStatistics.operations)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for (index, delegation) in claimed.enumerated() {
                // Every tenth write comes from a worker that does not hold the lease: refused alone.
                let worker = index % 10 == 0 ? "intruder" : "w"
                group.addTask {
                    do {
                        try await store.complete(id: delegation.id, worker: worker, result: "r\(index)")
                        return true
                    } catch {
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == count - count / 10)
        let transactions = store.writerStatistics.transactions - before.0
        let operations = store.writerStatistics.operations - before.1
        #expect(operations == count)
        #expect(transactions < operations, "commits were shared: \(operations) writes in \(transactions) transactions")
        let completed = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations WHERE status = 'completed'")?[0].int }
        #expect(completed == count - count / 10)
        let held = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations WHERE status = 'in_progress' AND lease_owner = 'w'")?[0].int }
        #expect(held == count / 10, "the refused ones are untouched")
        await store.close()
    }

    @Test func claimAndListUseTheirIndexes() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let plans = try await store.read { database in
            [
                "claim": try database.query(
                    "EXPLAIN QUERY PLAN " + Transitions.claimSQL, "w", "+30 seconds", 5, "ws"),
                "events": try database.query(
                    "EXPLAIN QUERY PLAN SELECT * FROM delegation_events WHERE delegation_id = 'x' ORDER BY id"),
                "evict": try database.query(
                    "EXPLAIN QUERY PLAN DELETE FROM delegations WHERE id IN (SELECT value FROM json_each('[]')) AND +\(Eviction.finished)"),
                "list": try database.query(
                    "EXPLAIN QUERY PLAN SELECT id FROM delegations ORDER BY created_at DESC, rowid DESC LIMIT 50"),
            ].mapValues { $0.map { $0["detail"].string ?? "" }.joined(separator: "; ") }
        }
        #expect(plans["claim"]?.contains("USING INDEX delegations_pending (next_run_at<?)") == true, "\(plans)")
        #expect(plans["claim"]?.contains("USING INDEX delegations_leased (lease_expires_at<?)") == true, "\(plans)")
        #expect(plans["claim"]?.contains("USING INDEX delegations_parked (next_run_at<?)") == true, "followed rows due for a poll: \(plans)")
        #expect(plans["events"]?.contains("delegation_events_by_delegation") == true, "\(plans)")
        #expect(plans["evict"]?.contains("sqlite_autoindex_delegations") == true && plans["evict"]?.contains("(id=?)") == true,
                "evicting looks ids up by key: \(plans)")
        #expect(plans["list"]?.contains("delegations_by_created") == true && plans["list"]?.contains("TEMP B-TREE") == false, "\(plans)")
        // No plan reads a whole table (an ordered walk of an index with a LIMIT, as in list, is fine).
        #expect(
            plans.values.allSatisfy {
                !$0.contains("SCAN delegations;") && !$0.hasSuffix("SCAN delegations") && !$0.contains("SCAN delegation_events")
            }, "\(plans)")
        await store.close()
    }
}
