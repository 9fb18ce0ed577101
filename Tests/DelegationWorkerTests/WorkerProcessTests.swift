import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import Synchronization
import TestSupport
import Testing

/// The `delegation-worker` binary as operators run it: several at once, killed, signalled, restarted.
@Suite struct WorkerProcessTests {
    let binary = productPath("delegation-worker")

    func startWorker(_ scenario: Scenario, _ name: String, _ extra: [String] = []) throws -> Child {
        try Child(binary, [
            "--db", scenario.databasePath, "--platform-url", scenario.platform.baseURL,
            "--workspace-id", Scenario.selfID, "--token", Scenario.token, "--worker-id", name,
            "--retry-delay", "0.05", "--poll-interval", "0.1", "--log-level", "warning",
        ] + extra)
    }

    /// The README's first command: the demo is a program of its own; the worker links no fakes.
    @Test func theDemoRunsEndToEndAndTheWorkerHasNoDemo() async throws {
        let directory = TemporaryDirectory()
        let demo = try Child(productPath("delegation-demo"), ["--db", directory.file("demo.db")])
        let result = await demo.finish(within: .seconds(60))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("summary: 4 completed, 2 failed"), "\(result.stdout)")
        #expect(result.stdout.contains("platform saw 6 record, 6 update and 6 notify calls"))
        let worker = try Child(binary, ["--demo", "--db", directory.file("w.db")])
        let refused = await worker.finish()
        #expect(refused.status != 0 && refused.stderr.contains("--demo"), "the production binary has no demo mode")
        // And it does not link the fakes: no symbol of the DelegationFakes module is in it.
        let symbols = try Child("/usr/bin/nm", [binary])
        let listed = await symbols.finish(within: .seconds(60))
        #expect(listed.status == 0 && listed.stdout.contains("DelegationWorker"), "nm listed the worker's symbols")
        #expect(!listed.stdout.contains("15DelegationFakes"), "delegation-worker links no fakes")
        let demoSymbols = await (try Child("/usr/bin/nm", [productPath("delegation-demo")])).finish(within: .seconds(60))
        #expect(demoSymbols.stdout.contains("15DelegationFakes"), "the check can see the fakes where they are")
    }

    @Test func invalidConfigurationExitsBeforeAnyWork() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("never.db")
        let child = try Child(binary, ["--db", path, "--platform-url", "ftp://nowhere", "--concurrency", "0"], environment: ["WORKSPACE_ID": ""])
        let result = await child.finish()
        #expect(result.status == 2)
        #expect(result.stderr.contains("invalid configuration"))
        #expect(result.stderr.contains("--platform-url") && result.stderr.contains("--workspace-id") && result.stderr.contains("--concurrency"))
        #expect(!FileManager.default.fileExists(atPath: path), "nothing was created")

        let badNumber = try Child(binary, ["--db", path, "--workspace-id", "ws"], environment: ["DELEGATION_RETRY_ATTEMPTS": "three"])
        let second = await badNumber.finish()
        #expect(second.status != 0)
        #expect(second.stderr.contains("DELEGATION_RETRY_ATTEMPTS must be a number"))
    }

    @Test func sigtermReleasesLeasesAndExitsZero() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-slow") { _ in .delayed(.seconds(30), .completed("never seen")) }
        let ids = [try await scenario.delegate("ws-slow"), try await scenario.delegate("ws-slow"), try await scenario.delegate("ws-slow")]
        let worker = try startWorker(scenario, "terminated", ["--shutdown-grace", "0.5"])
        #expect(await eventually { peer.sends.count == 3 })
        let signalled = ContinuousClock.now
        worker.kill(SIGTERM)
        let result = await worker.finish(within: .seconds(20))
        #expect(!result.timedOut)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(ContinuousClock.now - signalled < .seconds(15), "the grace (0.5 s), not the peer's 30 s")
        for id in ids {
            let row = try await scenario.row(id)
            #expect(row.status == .pending && row.leaseOwner == nil)
            #expect(row.attempts == 0, "the interrupted attempt is not counted")
            #expect(try await scenario.events(id).contains { $0.kind == "released" && $0.worker == "terminated" })
        }
        await scenario.close()
    }

    @Test func aWorkerKilledMidRequestIsReplacedWithTheSameMessageID() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        let peer = try await scenario.peer("ws-peer") { received in
            calls.next(received.delegationID) == 1 ? .delayed(.seconds(60), .completed("lost")) : .completed("finished by the second worker")
        }
        let id = try await scenario.delegate("ws-peer")
        let doomed = try startWorker(scenario, "doomed", ["--lease", "1"])
        #expect(await eventually { peer.sends.count == 1 })
        doomed.kill(SIGKILL)
        await doomed.finish()

        let survivor = try startWorker(scenario, "survivor", ["--lease", "1", "--exit-when-idle"])
        let result = await survivor.finish(within: .seconds(30))
        #expect(!result.timedOut && result.status == 0, "\(result.stderr)")
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "finished by the second worker")
        #expect(row.attempts == 2)
        #expect(peer.sends.count == 2)
        #expect(Set(peer.sends.compactMap(\.messageID)) == [row.messageID], "the same messageId both times")
        let takeover = try await scenario.events(id).first { $0.kind == "lease" }
        #expect(takeover?.worker == "survivor" && takeover?.detail?.contains("doomed") == true)
        await scenario.close()
    }

    /// A log line that cannot be written is dropped, not a crash. Foundation's `FileHandle.write(_: Data)`
    /// is `try!` on Linux, so the JSON log handler trapped on a full disk under stderr; and before NIO opened
    /// a socket, a log shipper gone from the other end of a pipe killed the worker with SIGPIPE.
    @Test func aStderrThatCannotBeWrittenDoesNotStopTheWorker() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-peer") { _ in .completed("done") }
        let full = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(full >= 0, "/dev/full answers every write with ENOSPC")
        defer { close(full) }
        let ends = try #require(closeOnExecPipe())
        close(ends.read)  // nobody reads: writes get EPIPE, or SIGPIPE where it is not ignored
        defer { close(ends.write) }
        for (label, descriptor) in [("a full disk", full), ("a pipe with no reader", ends.write)] {
            let id = try await scenario.delegate("ws-peer")
            let worker = try SpawnedProcess(binary, [
                "--db", scenario.databasePath, "--platform-url", scenario.platform.baseURL,
                "--workspace-id", Scenario.selfID, "--token", Scenario.token, "--worker-id", "w",
                "--log-format", "json", "--log-level", "info", "--exit-when-idle",
            ], stderr: descriptor)
            let ended = await worker.waitForExit(timeout: .seconds(60))
            if !ended { worker.signal(SIGKILL); worker.waitUntilExit() }
            #expect(ended && !worker.wasSignalled && worker.terminationStatus == 0,
                    "stderr on \(label): the worker ended \(worker.wasSignalled ? "by a signal" : "with \(worker.terminationStatus)")")
            #expect(try await scenario.row(id).status == .completed, "stderr on \(label): the delegation was still done")
        }
        #expect(peer.sends.count == 2)
        await scenario.close()
    }

    @Test func aQueuedDelegationIsResolvedAfterARestart() async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-busy") { _ in .queued }
        let id = try await scenario.delegate("ws-busy")
        let first = try startWorker(scenario, "first")
        #expect(try await eventually { try await scenario.row(id).status == .queued })
        first.kill(SIGTERM)
        #expect(await first.finish(within: .seconds(10)).status == 0)

        scenario.platform.resolve(delegationID: id, status: "completed", preview: "done while nobody watched")
        let second = try startWorker(scenario, "second", ["--exit-when-idle"])
        let result = await second.finish(within: .seconds(30))
        #expect(!result.timedOut && result.status == 0, "\(result.stderr)")
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "done while nobody watched")
        await scenario.close()
    }

    @Test func twoWorkerProcessesSendEachDelegationExactlyOnce() async throws {
        let scenario = try await Scenario()
        let peer = try await scenario.peer("ws-peer") { received in
            .delayed(.milliseconds(Int.random(in: 0...20)), .completed("ok \(received.delegationID ?? "")"))
        }
        let count = 200
        var ids: [String] = []
        for index in 0..<count { ids.append(try await scenario.delegate("ws-peer", "task \(index)")) }
        let started = ContinuousClock.now
        let workers = try ["alpha", "beta"].map {
            try startWorker(scenario, $0, ["--exit-when-idle", "--concurrency", "16", "--log-level", "error"])
        }
        for worker in workers {
            let result = await worker.finish(within: .seconds(60))
            #expect(!result.timedOut && result.status == 0, "\(result.stderr)")
        }
        let elapsed = ContinuousClock.now - started
        let completed = try await scenario.store.read {
            try $0.queryFirst("SELECT count(*) FROM delegations WHERE status = 'completed'")?[0].int
        }
        #expect(completed == count)
        let sent = peer.sends.compactMap(\.delegationID)
        #expect(sent.count == count, "no delegation was sent twice")
        #expect(Set(sent) == Set(ids))
        let byWorker = try await scenario.store.read {
            try $0.query("SELECT worker, count(*) FROM delegation_events WHERE to_status = 'completed' GROUP BY worker")
                .map { ($0[0].string ?? "", $0[1].int ?? 0) }
        }
        #expect(byWorker.count == 2, "both workers shared the work: \(byWorker)")
        #expect(scenario.platform.records.count == count && scenario.platform.updates.count == count)
        print("two worker processes: \(count) delegations in \(elapsed) (\(Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) per second), split \(byWorker)")
        await scenario.close()
    }
}
