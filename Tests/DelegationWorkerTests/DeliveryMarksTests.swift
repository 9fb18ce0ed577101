@testable import DelegationStore
@testable import DelegationWorker
import Foundation
import TestSupport
import Testing

/// Delivered mirror calls are marked many to a statement (issue 13): one statement per batch, each call
/// audited once, never marked twice, and the next call of its delegation made due.
@Suite(.timeLimit(.minutes(1))) struct DeliveryMarksTests {
    /// Three delegations whose record calls are leased to `worker`.
    static func leasedRecords(_ store: DelegationStore, worker: String) async throws -> [OutboxItem] {
        for index in 0..<3 { _ = try await store.delegate(workspaceID: "ws", task: "task \(index)") }
        let claimed = try await store.claim(worker: "w", limit: 3, lease: .seconds(30))
        for delegation in claimed { try await store.complete(id: delegation.id, worker: "w", result: "done") }
        let items = try await store.claimOutbox(worker: worker, limit: 10, lease: .seconds(30))
        #expect(items.map(\.kind) == [.record, .record, .record])
        return items
    }

    static func mirrorEvents(_ store: DelegationStore, _ item: OutboxItem) async throws -> [String?] {
        try await store.events(delegationID: item.delegationID).filter { $0.kind == "mirror" }.map(\.detail)
    }

    @Test func aBatchMarksOnlyWhatTheWorkerHoldsAndAuditsEachOnce() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let records = try await Self.leasedRecords(store, worker: "m")
        #expect(try await store.outboxDelivered([(records[0], 202), (records[1], 200), (records[0], 202)], worker: "m")
            == [true, true, false], "a call listed twice is marked for its first entry only")
        #expect(try await store.outboxDelivered([(records[0], 202), (records[2], 200)], worker: "other") == [false, false],
                "another worker's mark changes nothing")
        #expect(try await store.outboxDelivered([(records[0], 202)], worker: "m") == [false], "never marked twice")
        #expect(try await Self.mirrorEvents(store, records[0]) == ["record delivered to the platform (HTTP 202)"])
        #expect(try await Self.mirrorEvents(store, records[1]) == ["record delivered to the platform (HTTP 200)"])
        #expect(try await Self.mirrorEvents(store, records[2]).isEmpty)
        let next = try await store.claimOutbox(worker: "m", limit: 10, lease: .seconds(30))
        #expect(Set(next.map(\.delegationID)) == [records[0].delegationID, records[1].delegationID] && next.allSatisfy { $0.kind == .update },
                "the update of each marked delegation is due, the third still waits for its record")
        await store.close()
    }

    /// Marks that arrive while one is being written share the next statement; the writer hands on.
    @Test func marksThatArriveTogetherShareOneWrite() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        var records: [OutboxItem] = []
        for _ in 0..<4 { records += try await Self.leasedRecords(store, worker: "m") }
        let marks = DeliveryMarks(store: store, worker: "m")
        // Another process holds the write lock: the first mark waits for it, the others gather behind it.
        let lock = RawConnection(directory.file("delegations.db"))
        #expect(lock.run("BEGIN IMMEDIATE").code == 0)
        let before = store.writerStatistics.operations
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for record in records { group.addTask { try await marks.mark(record, status: 200) } }
            while await marks.waitingCount < records.count - 1 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(lock.run("COMMIT").code == 0)
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results == Array(repeating: true, count: 12))
        let operations = store.writerStatistics.operations - before
        #expect(operations == 2, "the first mark alone, then the eleven that gathered: \(operations) writes")
        for record in records { #expect(try await Self.mirrorEvents(store, record) == ["record delivered to the platform (HTTP 200)"]) }
        // Nothing is left writing: a later mark is written at once (and a mark for a call no longer held is false).
        #expect(try await marks.mark(records[0], status: 200) == false)
        await store.close()
    }

    /// A batch that cannot be written fails every mark in it, and the next mark writes again.
    @Test func aFailedBatchFailsItsMarksAndTheNextOneWrites() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("delegations.db")
        let setup = try makeStore(directory)
        let records = try await Self.leasedRecords(setup, worker: "m")
        await setup.close()
        let store = try DelegationStore(StoreConfiguration(path: path, busyTimeout: .milliseconds(300)))
        let marks = DeliveryMarks(store: store, worker: "m")
        let lock = RawConnection(path)
        #expect(lock.run("BEGIN IMMEDIATE").code == 0)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for record in records.prefix(2) {
                group.addTask { do { _ = try await marks.mark(record, status: 200); return false } catch { return true } }
            }
            return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(failures == 2, "both marks hear the lock error")
        #expect(lock.run("COMMIT").code == 0)
        #expect(try await marks.mark(records[2], status: 200) == true)
        #expect(try await marks.mark(records[0], status: 200) == true, "a failed mark can be made again")
        await store.close()
    }
}
