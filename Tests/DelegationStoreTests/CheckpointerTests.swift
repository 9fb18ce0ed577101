@testable import DelegationStore
import Foundation
import SQLiteDatabase
import Synchronization
import TestSupport
import Testing

/// The log is copied into the database by the store's checkpointer thread, not inside commits, and still
/// starts over under a load that never pauses.
@Suite struct CheckpointerTests {
    static let text = String(repeating: "a task long enough to take a page of its own. ", count: 90)  // ~4 KB

    /// A connection that leaves checkpoints to another copies nothing when it commits past 1,000 pages
    /// (SQLite's default would, inside the COMMIT); it only notes the log's size.
    @Test func aCommitPastAThousandPagesCopiesNothingItself() throws {
        let directory = TemporaryDirectory()
        func backfilledAfterWriting(_ name: String, leaving: Bool) throws -> (frames: Int, backfilled: Int, noted: Int?) {
            let path = directory.file(name)
            let database = try Database(path: path)
            try database.execute(script: "PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT)")
            if leaving { database.leaveCheckpointsToAnotherConnection() }
            _ = database.takeFramesInLog()
            for _ in 0..<1_200 { try database.execute("INSERT INTO t VALUES (?)", Self.text) }
            // The WAL-index: a 48-byte header (mxFrame at 16) twice, then the checkpoint info (nBackfill first).
            let shm = try #require(FileManager.default.contents(atPath: path + "-shm"))
            let frames = shm.withUnsafeBytes { Int($0.load(fromByteOffset: 16, as: UInt32.self)) }
            let backfilled = shm.withUnsafeBytes { Int($0.load(fromByteOffset: 96, as: UInt32.self)) }
            return (frames, backfilled, database.takeFramesInLog())
        }
        let left = try backfilledAfterWriting("left.db", leaving: true)
        #expect(left.frames >= 1_200 && left.backfilled == 0, "no commit copied any of the log: \(left)")
        #expect(left.noted == left.frames, "the size was noted: \(left)")
        let byDefault = try backfilledAfterWriting("default.db", leaving: false)
        #expect(byDefault.frames < 1_200 || byDefault.backfilled > 0, "SQLite's default copies inside the commits: \(byDefault)")
        #expect(byDefault.noted == nil)
    }

    /// The store's writer leaves the copy to the checkpointer thread, which makes it.
    @Test func theCheckpointerCopiesTheLogForTheWriter() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<400 { _ = try await store.delegate(workspaceID: "ws", task: "\(index) " + Self.text) }
        #expect(await eventually { store.writerStatistics.checkpointPasses > 0 }, "the checkpointer ran")
        await store.close()
    }

    /// Callers that never pause keep the writer busy at every moment a pass ends, so the log would never be
    /// found copied whole at the start of a write: the writer copies the last stretch itself every
    /// `logRestartPages`, and the log starts over. Four callers make small commits; forty-eight make commits
    /// of hundreds of pages, so that no pass ever leaves a short stretch.
    @Test(arguments: [(4, 1_500), (48, 125)])
    func theLogStartsOverUnderALoadThatNeverPauses(callers: Int, each: Int) async throws {
        let directory = TemporaryDirectory()
        var configuration = StoreConfiguration(path: directory.file("delegations.db"))
        configuration.logRestartPages = 2_000
        let store = try DelegationStore(configuration, logger: quietLogger)
        let largest = LargestSize()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for index in 0..<each {
                        _ = try await store.delegate(workspaceID: "ws", task: "\(caller)-\(index) " + Self.text)
                        largest.note(Self.size(directory.file("delegations.db-wal")))
                    }
                }
            }
            try await group.waitForAll()
        }
        // 6,000 rows of ~4 KB (two pages each, and their indexes, events and outbox rows): far more than
        // 100 MB went through the log (3,300 rows took it to 54–140 MB without the writer's copies), which
        // never held more than the writer's stretch at its farthest (4 × 2,000 pages) and a little.
        #expect(try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int } == callers * each)
        #expect(store.writerStatistics.writerCopies > 0)
        #expect(largest.value < 12_000 * 4_096, "the log's largest size: \(largest.value) bytes")
        // The search index file's log, written by the indexer's connection (which leaves the database's
        // log to the checkpointer), is still copied as SQLite's default does: it stays short too.
        #expect(try await store.rowsLeftForTheSearchIndex() == 0)
        let searchLog = Self.size(directory.file("delegations.db-search-wal"))
        #expect(searchLog < 3_000 * 4_096, "the search index's log: \(searchLog) bytes")
        await store.close()
    }

    /// Eviction's plan counts in short statements (a long one held the log back for seconds): whatever the
    /// chunk, the same counts as one statement over everything, boundaries included.
    @Test func evictionsPlanCountsTheSameInChunks() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<23 { _ = try await store.delegate(workspaceID: "ws", task: "t\(index)") }
        for _ in 0..<23 {
            let claimed = try #require(try await store.claim(worker: "w", limit: 1, lease: .seconds(60)).first)
            try await store.complete(id: claimed.id, worker: "w", result: "done")
        }
        // Every completion waits for its mirror call; deliver some, so that both counts matter.
        try await store.write("delivering") { try $0.execute("UPDATE platform_outbox SET delivered_at = '2026-01-01T00:00:00.000Z' WHERE delegation_id IN (SELECT id FROM delegations WHERE seq % 2 = 0)") }
        let plans = try await store.read { database -> [EvictionPlan] in
            let cutoff = try #require(try Eviction.cutoff(database, keep: 2, olderThan: nil))
            return try [1, 2, 5, 7, 20, 21, 1_000_000].map { try Eviction.plan(database, before: cutoff, chunk: $0) }
        }
        let whole = try #require(plans.last)
        #expect(whole.evictable + whole.heldBack == 21, "all finished rows but the newest two")
        #expect(whole.evictable > 0 && whole.heldBack > 0, "\(whole)")
        #expect(plans.allSatisfy { $0 == whole }, "\(plans)")
        await store.close()
    }

    static func size(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}

final class LargestSize: Sendable {
    private let largest = Mutex(0)
    func note(_ size: Int) { largest.withLock { $0 = max($0, size) } }
    var value: Int { largest.withLock { $0 } }
}
