import AsyncHTTPClient
import DelegationFakes
import DelegationStore
import DelegationWorker
import Foundation
import NIOCore
import Synchronization

/// Rows 3 and 4: the worker end to end, and with thousands of requests held open.
enum WorkerBench {
    static let selfID = "bench-agent"
    static let token = "bench-token"

    static func seed(_ path: String, count: Int, workspace: String) async throws {
        let store = try DelegationStore(StoreConfiguration(path: path, sourceWorkspaceID: selfID), logger: quietLogger("bench"))
        var done = 0
        while done < count {
            let batch = min(1000, count - done)
            try await store.write("seeding") { database in
                for index in 0..<batch {
                    _ = try Transitions.enqueue(database, workspaceID: workspace, task: "benchmark task \(index)", sourceWorkspaceID: selfID, maxAttempts: nil)
                }
            }
            done += batch
        }
        await store.close()
    }

    /// Row 3: N delegations through the worker (FULL, mirroring on) vs the same requests without a store.
    static func endToEnd(_ options: BenchOptions, _ results: Results) async throws {
        let count = options.e2e
        print("\n3. end to end: \(count) delegations through the worker, loopback peer and platform, FULL, mirroring on")
        let platform = FakePlatform(workspaceID: selfID, token: token)
        try await platform.start()
        let peer = FakePeer { _ in .completed("done") }
        try await peer.start()
        platform.register("ws-peer", .url(peer.url))

        let path = try await StoreBench.freshDatabase(options, "e2e")
        try await seed(path, count: count, workspace: "ws-peer")
        var configuration = WorkerConfiguration()
        configuration.databasePath = path
        configuration.platformURL = platform.baseURL
        configuration.workspaceID = selfID
        configuration.token = token
        configuration.concurrency = 64
        configuration.exitWhenIdle = true
        configuration.workerID = "bench-worker"
        let store = try DelegationStore(StoreConfiguration(path: path, sourceWorkspaceID: selfID), logger: quietLogger("bench"))
        let worker = try DelegationWorker(configuration: configuration, store: store, logger: quietLogger("bench.worker"))
        let start = ContinuousClock.now
        try await worker.run()
        let elapsed = seconds(since: start)
        let completed = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegations WHERE status = 'completed'")?[0].int ?? 0 }
        await store.close()
        guard completed == count else { throw BenchError("end to end: \(completed) of \(count) completed") }
        let calls = platform.calls.count + peer.received.count
        let callsPerDelegation = Double(calls) / Double(count)

        // The ceiling: the same number of requests, same client, same servers, same concurrency, no store.
        let client = DelegationWorker.makeHTTPClient(concurrency: 64)
        let requests = calls
        let baselineStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<64 {
                group.addTask {
                    var index = lane
                    while index < requests {
                        try await sendLikeAWorker(client, step: index % 5, index: index / 5, platform: platform.baseURL, peer: peer.url)
                        index += 64
                    }
                }
            }
            try await group.waitForAll()
        }
        let baselineElapsed = seconds(since: baselineStart)
        try await client.shutdown()
        await peer.stop()
        await platform.stop()

        let delegationsPerSecond = Double(count) / elapsed
        let baselineRate = Double(requests) / baselineElapsed
        let ratio = delegationsPerSecond * callsPerDelegation / baselineRate
        results.add(Result(
            row: "3. worker end to end (FULL, mirrored)",
            figure: String(format: "%.0f delegations/s × %.2f HTTP calls each", delegationsPerSecond, callsPerDelegation),
            baseline: String(format: "%.0f requests/s (same client, no store)", baselineRate), ratio: ratio,
            target: "≥ 0.7×", met: ratio >= 0.7))
    }

    /// One of the five calls a delegation makes: discover, record, send, update, notify.
    static func sendLikeAWorker(_ client: HTTPClient, step: Int, index: Int, platform: String, peer: String) async throws {
        let id = "00000000-0000-4000-8000-\(String(format: "%012d", index))"
        var request: HTTPClientRequest
        var body: String?
        switch step {
        case 0:
            request = HTTPClientRequest(url: "\(platform)/registry/discover/ws-peer")
        case 1:
            request = HTTPClientRequest(url: "\(platform)/workspaces/\(selfID)/delegations/record")
            body = #"{"target_id":"ws-peer","task":"benchmark task","delegation_id":"\#(id)"}"#
        case 2:
            request = HTTPClientRequest(url: peer)
            body = #"{"jsonrpc":"2.0","id":"\#(id)","method":"message/send","params":{"message":{"role":"user","messageId":"\#(id)","kind":"message","parts":[{"kind":"text","text":"benchmark task"}],"metadata":{"delegation_id":"\#(id)"}},"metadata":{"parent_task_id":"\#(id)","source_workspace_id":"\#(selfID)"}}}"#
        case 3:
            request = HTTPClientRequest(url: "\(platform)/workspaces/\(selfID)/delegations/\(id)/update")
            body = #"{"status":"completed","response_preview":"done"}"#
        default:
            request = HTTPClientRequest(url: "\(platform)/workspaces/\(selfID)/notify")
            body = #"{"message":"Delegation \#(id) completed: done"}"#
        }
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "X-Workspace-ID", value: selfID)
        if let body {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw BenchError("baseline request \(step) answered \(response.status.code)")
        }
    }

    /// Row 4: thousands of delegations in flight at once against a peer that holds each request.
    static func inFlight(_ options: BenchOptions, _ results: Results) async throws {
        let count = options.inflight
        print("\n4. in flight: \(count) delegations to a peer that holds each request \(Int(options.hold)) s, --concurrency \(count)")
        let platform = FakePlatform(workspaceID: selfID, token: token)
        try await platform.start()
        let received = Locked<[String: Date]>([:])
        let hold = Duration.milliseconds(Int(options.hold * 1000))
        let peer = FakePeer { request in
            if let id = request.delegationID { received.withLock { $0[id] = $0[id] ?? Date() } }
            return .delayed(hold, .completed("held"))
        }
        try await peer.start()
        platform.register("ws-peer", .url(peer.url))
        let binary = productDirectory.appendingPathComponent("delegation-worker").path
        let arguments = { (path: String) in
            [
                "--db", path, "--platform-url", platform.baseURL, "--workspace-id", selfID, "--token", token,
                "--concurrency", String(count), "--lease", "120", "--timeout", "300", "--exit-when-idle", "--log-level", "error",
                "--worker-id", "bench-inflight",
            ]
        }
        // Baseline: the same binary with nothing to do.
        let idlePath = try await StoreBench.freshDatabase(options, "idle")
        let idle = try await runMeasured(binary, arguments(idlePath))

        let path = try await StoreBench.freshDatabase(options, "inflight")
        try await seed(path, count: count, workspace: "ws-peer")
        let busy = try await runMeasured(binary, arguments(path))
        guard busy.status == 0 else { throw BenchError("in-flight worker exited \(busy.status)") }

        let store = try DelegationStore(StoreConfiguration(path: path), logger: quietLogger("bench"))
        let (completed, claims) = try await store.read { database -> (Int, [(String, String)]) in
            let completed = try database.queryFirst("SELECT count(*) FROM delegations WHERE status = 'completed'")?[0].int ?? 0
            let claims = try database.query(
                "SELECT delegation_id, min(at) FROM delegation_events WHERE kind = 'status' AND to_status = 'in_progress' GROUP BY delegation_id"
            ).map { ($0[0].string ?? "", $0[1].string ?? "") }
            return (completed, claims)
        }
        await store.close()
        await peer.stop()
        await platform.stop()
        let arrivals = received.withLock { $0 }
        let latencies = claims.compactMap { id, at -> Double? in
            guard let claimed = Timestamp.date(from: at), let sent = arrivals[id] else { return nil }
            return max(0, sent.timeIntervalSince(claimed))
        }.sorted()
        results.add(Result(
            row: "4. \(count) in flight, peer holds \(Int(options.hold)) s", figure: "\(completed) of \(count) completed in " + String(format: "%.1f s", busy.seconds),
            baseline: "-", ratio: nil, target: "all complete", met: completed == count))
        results.add(Result(
            row: "4. peak RSS of the worker process", figure: String(format: "%.0f MB", busy.peakMB),
            baseline: String(format: "%.0f MB (the same worker, idle)", idle.peakMB), ratio: busy.peakMB / idle.peakMB,
            target: "< 300 MB", met: busy.peakMB < 300))
        results.add(Result(
            row: "4. claim-to-send latency", figure: String(format: "p50 %.2f s, p99 %.2f s", percentile(latencies, 0.5), percentile(latencies, 0.99)),
            baseline: "-", ratio: nil, target: "(printed)", met: nil))
    }

    struct Measured {
        var status: Int32
        var seconds: Double
        var peakMB: Double
    }

    /// Runs a child to its end, sampling its peak resident set (VmHWM) as it goes.
    static func runMeasured(_ binary: String, _ arguments: [String]) async throws -> Measured {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        var peakKB = 0.0
        let statusFile = "/proc/\(process.processIdentifier)/status"
        while process.isRunning {
            if let text = try? String(contentsOfFile: statusFile, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
                let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
            {
                peakKB = max(peakKB, kilobytes)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return Measured(status: process.terminationStatus, seconds: seconds(since: start), peakMB: peakKB / 1024)
    }
}
