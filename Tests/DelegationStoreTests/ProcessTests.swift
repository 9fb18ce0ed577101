@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// Several processes on one file, and a process killed in the middle of a transaction.
@Suite struct ProcessTests {
    let probe = productPath("store-probe")

    @Test func twoProcessesClaimingConcurrentlyNeverShareARow() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let count = 400
        var ids = Set<String>()
        for index in 0..<count {
            ids.insert(try #require(try await store.delegate(workspaceID: "ws", task: "t\(index)")["task_id"]?.stringValue))
        }
        await store.close()
        let path = directory.file("delegations.db")
        let children = try ["p1", "p2"].map { try Child(probe, ["claim", path, $0, "1"]) }
        for child in children { #expect(await child.waitForLine("ready")) }
        _ = FileManager.default.createFile(atPath: path + ".go", contents: nil)  // both start together
        var outputs: [(status: Int32, stdout: String, stderr: String, timedOut: Bool)] = []
        for child in children { outputs.append(await child.finish()) }
        for output in outputs { #expect(output.status == 0, "\(output.stderr)") }
        let claimed = outputs.map { $0.stdout.split(separator: "\n").map(String.init).filter { $0 != "ready" } }
        #expect(claimed[0].count + claimed[1].count == count, "every row claimed exactly once")
        #expect(Set(claimed[0]).isDisjoint(with: claimed[1]), "no row claimed by both")
        #expect(Set(claimed[0]).union(claimed[1]) == ids)
        #expect(claimed.allSatisfy { !$0.isEmpty }, "both processes got work (\(claimed[0].count)/\(claimed[1].count))")
    }

    @Test func killedMidTransactionLeavesTheDatabaseConsistentAndTheRowsClaimable() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        let id = try #require(try await store.delegate(workspaceID: "ws", task: "t")["task_id"]?.stringValue)
        await store.close()
        let path = directory.file("delegations.db")
        let holder = try Child(probe, ["hold", path])
        #expect(await holder.waitForLine("holding"), "the child holds BEGIN IMMEDIATE with an uncommitted claim")
        holder.kill(SIGKILL)
        await holder.finish()

        let reopened = try makeStore(directory)
        let integrity = try await reopened.read { try $0.queryFirst("PRAGMA integrity_check")?[0].string }
        #expect(integrity == "ok")
        let row = try #require(try await reopened.delegation(id: id))
        #expect(row.status == .pending && row.leaseOwner == nil && row.attempts == 0, "the uncommitted claim is gone")
        let claimed = try await reopened.claim(worker: "survivor", limit: 5, lease: .seconds(30))
        #expect(claimed.map(\.id) == [id])
        await reopened.close()
    }

    @Test func fourProcessesChurningTogetherNeverSeeBusy() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let rounds = 120
        let children = try (1...4).map { try Child(probe, ["churn", path, "p\($0)", "\(rounds)"]) }
        var outputs: [(status: Int32, stdout: String, stderr: String, timedOut: Bool)] = []
        for child in children { outputs.append(await child.finish()) }
        for output in outputs {
            #expect(output.status == 0 && output.stdout.hasPrefix("ok"), "\(output.stdout) \(output.stderr)")
            #expect(!output.stdout.contains("locked") && !output.stderr.contains("BUSY"))
        }
        let raw = RawConnection(path)
        #expect(raw.value("SELECT count(*) FROM delegations") == "\(4 * rounds)")
        let done = outputs.compactMap { Int($0.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }
        #expect(done.reduce(0, +) == Int(raw.value("SELECT count(*) FROM delegations WHERE status = 'completed'") ?? "-1"))
        #expect(raw.value("PRAGMA integrity_check") == "ok")
    }

    @Test func aLockHeldPastTheBusyTimeoutIsATypedError() async throws {
        let directory = TemporaryDirectory()
        let path = try await createDatabase(directory)
        let holder = try Child(probe, ["hold", path])
        defer { holder.kill(SIGKILL) }
        #expect(await holder.waitForLine("holding"))
        let store = try DelegationStore(StoreConfiguration(path: path, busyTimeout: .milliseconds(300)), logger: quietLogger)
        let started = ContinuousClock.now
        do {
            _ = try await store.delegate(workspaceID: "ws", task: "t")
            Issue.record("the write lock is held elsewhere")
        } catch DelegationStoreError.Code.busy {
            // Matched by its code; the description says what and while doing what.
        } catch {
            Issue.record("expected a busy error, got \(error)")
        }
        do {
            _ = try await store.delegate(workspaceID: "ws", task: "t")
        } catch let error as DelegationStoreError {
            #expect(error.code == .busy && error.isTransient)
            #expect(error.description.contains("locked by another connection") && error.description.contains("delegating to ws"))
        }
        #expect(ContinuousClock.now - started >= .milliseconds(250), "it waited for the busy timeout first")
        let reading = try await store.listAll()
        #expect(reading["count"] == 0, "readers are never blocked by the writer (WAL)")
        await store.close()
    }
}
