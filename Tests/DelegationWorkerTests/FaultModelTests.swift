import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import TestSupport
import Testing

/// What peers and the platform do beyond kill -9: outside numbers that would overflow, rows whose
/// holders keep dying, outcomes that never show up, a database locked while answers arrive, peers
/// that move, error texts of any size, a platform that hangs during shutdown.
@Suite struct FaultModelTests {
    let binary = productPath("delegation-worker")

    func startWorker(_ scenario: Scenario, _ name: String?, _ extra: [String] = []) throws -> Child {
        try Child(binary, [
            "--db", scenario.databasePath, "--platform-url", scenario.platform.baseURL,
            "--workspace-id", Scenario.selfID, "--token", Scenario.token,
            "--retry-delay", "0.05", "--poll-interval", "0.1", "--log-level", "warning",
        ] + (name.map { ["--worker-id", $0] } ?? []) + extra)
    }

    // MARK: 1. Outside numbers

    @Test func absurdRetryAfterValuesAreClampedNotTrappedOn() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        let peer = try await scenario.peer("ws-busy") { received in
            switch calls.next(received.delegationID) {
            case 1: .http(503, #"{"error":"busy","busy":true}"#, headers: [("Retry-After", "inf")])
            case 2: .http(503, #"{"error":"busy"}"#, headers: [("Retry-After", "99999999999999999999")])
            case 3: .http(503, #"{"error":"busy","busy":true,"retry_after":1e300}"#, headers: [])
            default: .http(503, #"{"error":"busy","retry_after":-5}"#, headers: [("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT")])
            }
        }
        let id = try await scenario.delegate("ws-busy", maxAttempts: 4)
        try await scenario.runUntilIdle {
            $0.maximumRetryDelay = .milliseconds(200)
        }
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error?.hasPrefix("HTTP 503") == true)
        #expect(peer.sends.count == 4, "every Retry-After was clamped to the maximum delay and honoured")
        await scenario.close()
    }

    @Test func absurdDurationsOnTheCommandLineAreRefusedByName() async throws {
        let directory = TemporaryDirectory()
        for (flag, value) in [("--timeout", "1e300"), ("--retry-delay", "1e19"), ("--lease", "inf"), ("--task-deadline", "9e15")] {
            let child = try Child(binary, ["--db", directory.file("q.db"), "--workspace-id", "ws", flag, value])
            let result = await child.finish()
            #expect(result.status != 0 && result.status < 128, "\(flag) \(value) is an error, not a trap: \(result.status)")
            #expect(result.stderr.contains(flag), "\(flag) \(value): \(result.stderr)")
        }
        let env = try Child(binary, ["--db", directory.file("q.db"), "--workspace-id", "ws"], environment: ["DELEGATION_QUEUED_TIMEOUT": "1e400"])
        let result = await env.finish()
        #expect(result.status != 0 && result.status < 128)
        #expect(result.stderr.contains("--queued-timeout"))
    }

    // MARK: 2. Poison rows

    @Test func aRowWhoseHoldersKeepDyingEndsFailedAfterMaxTakeovers() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-deadly") { _ in .delayed(.seconds(3600), .completed("never")) }
        let id = try await scenario.delegate("ws-deadly")
        // Each holder dies while the peer holds its request (as a worker crashing on the answer would).
        for round in 1...3 {
            let worker = try startWorker(scenario, "doomed-\(round)", ["--lease", "1", "--timeout", "600"])
            #expect(await eventually(timeout: .seconds(15)) { peer.sends.count == round }, "round \(round)")
            worker.kill(SIGKILL)
            _ = await worker.finish(within: .seconds(5))
        }
        let survivor = try startWorker(scenario, "survivor", ["--lease", "1", "--timeout", "600"])
        #expect(await eventually(timeout: .seconds(15)) { (try? await scenario.row(id).status) == .failed })
        survivor.kill(SIGTERM)
        _ = await survivor.finish(within: .seconds(15))

        let row = try await scenario.row(id)
        #expect(row.error?.contains("taken over 3 times without an outcome") == true, "\(row.error ?? "")")
        #expect(peer.sends.count == 3, "the poison row was not sent a fourth time")
        let events = try await scenario.events(id)
        #expect(events.filter { $0.kind == "lease" }.count == 3)
        #expect(events.contains { $0.kind == "poison" && $0.worker == "survivor" })

        try await scenario.store.retry(id: id)
        let retried = try await scenario.row(id)
        #expect(retried.status == .pending && retried.takeovers == 0 && retried.attempts == 0)
        await scenario.close()
    }

    // MARK: 3. Queued has a deadline

    @Test func aQueuedRowWithNoOutcomeFailsAtTheDeadline() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-busy") { _ in .queued }
        let id = try await scenario.delegate("ws-busy")
        try await scenario.runUntilIdle { $0.queuedTimeout = .seconds(1) }
        let row = try await scenario.row(id)
        #expect(row.status == .failed)
        #expect(row.error?.contains("never seen") == true && row.error?.contains("may have run") == true, "\(row.error ?? "")")
        await scenario.close()
    }

    @Test func anOutcomePushedOutOfTheFiftyRowWindowIsNeverSeenAndTheRowFailsAtTheDeadline() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-busy") { _ in .queued }
        let id = try await scenario.delegate("ws-busy")
        let store = scenario.store
        try await scenario.run(until: { try await store.delegation(id: id)?.status == .queued })
        // The platform's drain finished it, then newer activity pushed it below the newest 50 rows.
        scenario.platform.resolve(delegationID: id, status: "completed", preview: "done, but nobody will see it")
        scenario.platform.simulateActivity(FakePlatform.listWindow)
        try await scenario.runUntilIdle { $0.queuedTimeout = .seconds(1) }
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error?.contains("newest 50 rows") == true)
        #expect(scenario.platform.calls(to: "/delegations", method: "GET").count >= 1, "the list was read before the deadline was applied")
        await scenario.close()
    }

    // MARK: 4. A peer's answer is never dropped

    @Test func answersArrivingWhileAnotherProcessHoldsTheWriteLockAreAllStored() async throws {
        let scenario = try await Scenario(busyTimeout: .milliseconds(300))
        let locker = LockHolder()
        // The peer answers only once the lock is held: every answer arrives while the file is locked.
        let peer = try await scenario.peer("ws-peer") { received in
            _ = await eventually(timeout: .seconds(30)) { locker.holding }
            return .completed("answer for \(received.text ?? "")")
        }
        var ids: [String] = []
        for index in 0..<5 { ids.append(try await scenario.delegate("ws-peer", "task \(index)")) }
        let path = scenario.databasePath
        let store = scenario.store
        let idsCopy = ids
        try await scenario.run(until: {
            if peer.sends.count == 5, !locker.started {
                // Well past the busy timeout (300 ms): every outcome write fails at first.
                try locker.start(path: path, seconds: 4)
            }
            guard locker.released else { return false }
            for id in idsCopy where try await store.delegation(id: id)?.status != .completed { return false }
            return true
        }, timeout: .seconds(30)) { $0.lease = .seconds(20) }
        #expect(locker.started && locker.released)
        let heldSince = try #require(locker.heldSince)
        for id in ids {
            let row = try await scenario.row(id)
            #expect(row.status == .completed && row.result?.hasPrefix("answer for task") == true)
            // Written only after the lock (held 4 s) was freed: the writes waited, they were not lucky.
            let finished = try #require(row.finishedAt.flatMap(Timestamp.date(from:)))
            #expect(finished.timeIntervalSince(heldSince) > 3, "written \(finished.timeIntervalSince(heldSince)) s after the lock was taken")
        }
        #expect(peer.sends.count == 5, "no answer was dropped, so nothing was sent again")
        #expect(Set(peer.sends.compactMap(\.messageID)).count == 5)
        await scenario.close()
    }

    // MARK: 5. Follow-ups end, and find a peer that moved

    @Test func repeatedPollFailuresAskDiscoveryAgain() async throws {
        let scenario = try await Scenario()
        let first = try await scenario.peer("ws-moving") { _ in .longTask(.seconds(60), then: .completed("never")) }
        let id = try await scenario.delegate("ws-moving")
        let store = scenario.store
        try await scenario.run(until: { try await store.delegation(id: id)?.remoteTaskID != nil })
        let taskID = try #require(try await scenario.row(id).remoteTaskID)
        // The peer moves: the old address refuses connections, discovery names the new one.
        await first.stop()
        let second = try await scenario.peer("ws-moving") { _ in .completed("unused") }
        second.setTask(taskID, replies: [.completed("finished at the new address")])
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "finished at the new address")
        #expect(try await scenario.events(id).contains { $0.kind == "a2a.rediscover" && $0.detail?.contains(second.url) == true })
        await scenario.close()
    }

    // MARK: 6. Unique identity

    @Test func defaultWorkerIDsDifferPerStartAndShutdownReleasesOnlyItsOwnRows() async throws {
        let a = WorkerConfiguration.defaultWorkerID(), b = WorkerConfiguration.defaultWorkerID()
        #expect(a != b, "two starts in one process (same host, same pid) get different ids")
        #expect(a.split(separator: ":").count == 3 && a.split(separator: ":").last?.count == 8)

        let scenario = try await Scenario()
        try await scenario.peer("ws-slow", honoursNonBlocking: false) { _ in .longTask(.seconds(3600), then: .completed("never")) }
        for index in 0..<4 { _ = try await scenario.delegate("ws-slow", "task \(index)") }
        var first = scenario.configuration { $0.concurrency = 2; $0.shutdownGrace = .zero }
        first.workerID = a
        var second = scenario.configuration { $0.concurrency = 2; $0.shutdownGrace = .zero }
        second.workerID = b
        let one = try TestWorker(first, store: scenario.store)
        let two = try TestWorker(second, store: scenario.store)
        let running = Task { try await two.run() }
        let stopping = Task { try await one.run() }
        let store = scenario.store
        #expect(await eventually {
            let held = (try? await store.read { try $0.query("SELECT lease_owner, count(*) FROM delegations GROUP BY lease_owner") }) ?? []
            return held.count == 2 && held.allSatisfy { $0[1].int == 2 }
        })
        one.shutdown()
        try await stopping.value
        let owners = try await store.read { try $0.query("SELECT lease_owner FROM delegations WHERE status = 'in_progress'").compactMap { $0[0].string } }
        #expect(owners == [b, b], "the other worker's live leases are untouched")
        two.shutdown()
        try await running.value
        await scenario.close()
    }

    // MARK: 7. Capped error texts

    @Test func hugeErrorTextsAreCappedWhereverTheyAreStoredOrMirrored() async throws {
        let scenario = try await Scenario()
        let huge = String(repeating: "é", count: 1 << 20)  // 2 MiB of UTF-8
        try await scenario.peer("ws-loud") { _ in .jsonRPCError(-32000, huge) }
        let id = try await scenario.delegate("ws-loud")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        let error = try #require(row.error)
        #expect(row.status == .failed && error.utf8.count <= TextLimit.error + 100 && error.contains("[truncated: "))
        #expect(try await scenario.events(id).allSatisfy { ($0.detail?.utf8.count ?? 0) <= TextLimit.error + 100 })
        let update = try #require(scenario.platform.updates.first?.body?["error"]?.stringValue)
        #expect(update.utf8.count <= TextLimit.error + 100, "the mirrored error is capped too")
        await scenario.close()
    }

    // MARK: 8. Shutdown fits the grace

    @Test func sigtermWhileThePlatformHangsExitsWithinTheGraceAndReleasesLeases() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-peer") { _ in .completed("fine") }
        var ids: [String] = []
        for index in 0..<3 { ids.append(try await scenario.delegate("ws-peer", "task \(index)")) }
        scenario.platform.hang([.discovery, .record, .update, .notify, .list])
        let worker = try startWorker(scenario, "graceful", ["--shutdown-grace", "2"])
        let store = scenario.store
        #expect(await eventually { (try? await store.read { try $0.queryFirst("SELECT count(*) FROM delegations WHERE status = 'in_progress'")?[0].int }) == 3 })
        try await Task.sleep(for: .milliseconds(300))  // discovery and the record calls are now hanging
        let signalled = ContinuousClock.now
        worker.kill(SIGTERM)
        while worker.isRunning, ContinuousClock.now - signalled < .seconds(20) { try await Task.sleep(for: .milliseconds(5)) }
        let took = ContinuousClock.now - signalled
        let result = await worker.finish(within: .seconds(20))
        #expect(!result.timedOut && result.status == 0, "\(result.stderr)")
        // A worker that waited for the hanging calls would take their 300 s timeout; the slack is for a loaded machine.
        #expect(took < .seconds(12), "exited within the grace (2 s) + 10 s: \(took)")
        for id in ids {
            let row = try await scenario.row(id)
            #expect(row.status == .pending && row.leaseOwner == nil, "released")
        }
        let leasedMirrorCalls = try await store.read { try $0.queryFirst("SELECT count(*) FROM platform_outbox WHERE lease_owner IS NOT NULL")?[0].int }
        #expect(leasedMirrorCalls == 0, "mirror calls still hanging were handed back")
        await scenario.close()
    }
}

extension FaultModelTests {
    @Test func sigtermWhileAnotherProcessHoldsTheWriteLockStillExitsWithinTheGrace() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in .delayed(.seconds(30), .completed("never seen")) }
        for index in 0..<3 { _ = try await scenario.delegate("ws-slow", "task \(index)") }
        let worker = try startWorker(scenario, "locked-out", ["--shutdown-grace", "1", "--metrics-port", "0", "--log-level", "info"])
        #expect(await eventually { peer.sends.count == 3 })
        // An idle connection to /metrics (a port scanner) must not keep the process alive either.
        @Sendable func metricsPort() -> Int? {
            worker.stderr.split(separator: "\n").compactMap { line -> Int? in
                guard let range = line.range(of: "metrics at http://127.0.0.1:") else { return nil }
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }.first
        }
        #expect(await eventually { metricsPort() != nil })
        let idle = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(idle) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(metricsPort() ?? 0).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(idle, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        // Another process takes the write lock for a minute: every write of the shutdown would wait 10 s.
        let locker = LockHolder()
        try locker.start(path: scenario.databasePath, seconds: 60)
        #expect(await eventually { locker.holding })
        // Let the claim loop (every 200 ms) start a claim that waits for the lock: SIGTERM then finds the
        // loop inside that wait, and the grace must still count from the signal.
        try await Task.sleep(for: .milliseconds(600))
        let signalled = ContinuousClock.now
        worker.kill(SIGTERM)
        while worker.isRunning, ContinuousClock.now - signalled < .seconds(30) { try await Task.sleep(for: .milliseconds(5)) }
        let took = ContinuousClock.now - signalled
        let result = await worker.finish(within: .seconds(5))
        // A worker that waited for the lock would take at least one busy timeout (10 s) per write.
        #expect(took < .seconds(8), "exited within the grace (1 s) + 7 s though the file is locked: \(took)")
        #expect(result.status == 0, "\(result.stderr)")
        locker.stop()
        await scenario.close()
    }

    @Test func aRowWhoseWorkEndedWithoutAWriteIsReleasedByItsOwnWorker() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-ok") { _ in .completed("fine") }
        let id = try await scenario.delegate("ws-ok")
        // As if this worker had claimed it earlier and its work had ended without writing anything.
        _ = try await scenario.store.claim(worker: "single-worker", limit: 1, lease: .milliseconds(200))
        try await Task.sleep(for: .milliseconds(300))
        try await scenario.runUntilIdle { $0.workerID = "single-worker"; $0.lease = .seconds(1) }
        let row = try await scenario.row(id)
        #expect(row.status == .completed, "released by its own worker and sent (\(row.status))")
        #expect(try await scenario.events(id).contains { $0.kind == "released" && $0.detail?.contains("no longer works on") == true })
        await scenario.close()
    }
}

/// Another process holding the database's write lock for a while (`store-probe lock`).
final class LockHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var child: Child?

    func start(path: String, seconds: Double) throws {
        let child = try Child(productPath("store-probe"), ["lock", path, String(seconds)])
        lock.withLock { self.child = child }
    }

    private var holdingSince: Date?

    var started: Bool { lock.withLock { child != nil } }
    var released: Bool { lock.withLock { child?.stdout.contains("released") ?? false } }
    /// The other process holds the write lock (it said so).
    var holding: Bool {
        lock.withLock {
            guard child?.stdout.contains("holding") == true else { return false }
            if holdingSince == nil { holdingSince = Date() }
            return true
        }
    }
    var heldSince: Date? { lock.withLock { holdingSince } }

    func stop() { lock.withLock { child }?.kill(SIGKILL) }
}
