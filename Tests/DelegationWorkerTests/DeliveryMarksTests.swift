@testable import DelegationStore
@testable import DelegationWorker
import Foundation
import TestSupport
import Testing

/// Delivered mirror calls are marked many to a statement (issue 13): one statement per batch, each call
/// audited once, never marked twice, and the next call of its delegation made due.
@Suite struct DeliveryMarksTests {
    /// Three delegations whose record calls are leased to `worker`.
    static func leasedRecords(_ store: DelegationStore, worker: String) async throws -> [OutboxItem] {
        for index in 0..<3 { _ = try await store.delegate(workspaceID: "ws", task: "task \(index)") }
        let claimed = try await store.claim(worker: "w", limit: 3, lease: .seconds(30))
        for delegation in claimed { try await store.complete(id: delegation.id, worker: "w", result: "done") }
        let items = try await store.claimOutbox(worker: worker, limit: 10, lease: .seconds(30))
        #expect(items.map(\.kind) == [.record, .record, .record])
        return items
    }

    @Test func aBatchMarksOnlyWhatTheWorkerHoldsAndAuditsEachOnce() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let records = try await Self.leasedRecords(store, worker: "m")
        let marked = try await store.outboxDelivered([(records[0], 202), (records[1], 200)], worker: "m")
        #expect(marked == [records[0].id, records[1].id])
        #expect(try await store.outboxDelivered([(records[0], 202), (records[2], 200)], worker: "other").isEmpty,
                "another worker's mark changes nothing")
        #expect(try await store.outboxDelivered([(records[0], 202)], worker: "m").isEmpty, "never marked twice")
        for (index, record) in records.enumerated() {
            let mirrorEvents = try await store.events(delegationID: record.delegationID).filter { $0.kind == "mirror" }.map(\.detail)
            #expect(mirrorEvents == (index < 2 ? ["record delivered to the platform (HTTP \(index == 0 ? 202 : 200))"] : []), "\(index)")
        }
        let next = try await store.claimOutbox(worker: "m", limit: 10, lease: .seconds(30))
        #expect(Set(next.map(\.delegationID)) == [records[0].delegationID, records[1].delegationID] && next.allSatisfy { $0.kind == .update },
                "the update of each marked delegation is due, the third still waits for its record")
        await store.close()
    }

    /// Marks that arrive while one is being written share the next statement.
    @Test func marksThatArriveTogetherShareOneWrite() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        var records: [OutboxItem] = []
        for _ in 0..<4 { records += try await Self.leasedRecords(store, worker: "m") }
        #expect(records.count == 12)
        let marks = DeliveryMarks(store: store, worker: "m")
        // Another process holds the write lock: the first mark waits for it, the others gather behind it.
        let lock = RawConnection(directory.file("delegations.db"))
        #expect(lock.run("BEGIN IMMEDIATE").code == 0)
        let before = store.writerStatistics.operations
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for record in records { group.addTask { try await marks.mark(record, status: 200) } }
            try await Task.sleep(for: .milliseconds(300))
            #expect(lock.run("COMMIT").code == 0)
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 12))
        let operations = store.writerStatistics.operations - before
        #expect(operations <= 2, "12 marks in \(operations) writes")
        let audited = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegation_events WHERE kind = 'mirror'")?[0].int }
        #expect(audited == 12)
        await store.close()
    }
}
