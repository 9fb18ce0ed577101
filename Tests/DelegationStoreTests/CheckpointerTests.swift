@testable import DelegationStore
import Foundation
import SQLiteDatabase
import Synchronization
import TestSupport
import Testing

/// The log is copied into the database by the store's checkpointer thread, never inside a commit, and
/// still starts over under a load that never pauses.
@Suite struct CheckpointerTests {
    static let text = String(repeating: "a task long enough to take a page of its own. ", count: 90)  // ~4 KB

    /// Past SQLite's 1,000 pages the writer asks the checkpointer; its commits copy nothing themselves.
    @Test func theCheckpointerCopiesTheLogForTheWriter() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        for index in 0..<400 { _ = try await store.delegate(workspaceID: "ws", task: "\(index) " + Self.text) }
        #expect(await eventually { store.writerStatistics.checkpoints > 0 }, "the checkpointer ran")
        // Copied whole and started over: what the log held is in the database file.
        await store.close()
        let reopened = try makeStore(directory)
        let rows = try await reopened.read { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int }
        #expect(rows == 400)
        await reopened.close()
    }

    /// Four callers that never pause keep the writer busy at every moment the checkpointer finishes a pass,
    /// so the log would never be found copied whole at the start of a write: the writer copies the last
    /// stretch itself each `logRestartPages`, and the log starts over.
    @Test func theLogStartsOverUnderALoadThatNeverPauses() async throws {
        let directory = TemporaryDirectory()
        var configuration = StoreConfiguration(path: directory.file("delegations.db"))
        configuration.logRestartPages = 2_000
        let store = try DelegationStore(configuration, logger: quietLogger)
        let largest = LargestSize()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    for index in 0..<600 {
                        _ = try await store.delegate(workspaceID: "ws", task: "\(caller)-\(index) " + Self.text)
                        largest.note(Self.size(directory.file("delegations.db-wal")))
                    }
                }
            }
            try await group.waitForAll()
        }
        // 2,400 rows of ~4 KB (two pages each, and their indexes, events and outbox rows): far more than
        // 100 MB went through the log, which never held more than a few stretches of 2,000 pages at once.
        #expect(try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int } == 2_400)
        #expect(largest.value < 3 * 2_000 * 4_096 + 1_000_000, "the log's largest size: \(largest.value) bytes")
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
