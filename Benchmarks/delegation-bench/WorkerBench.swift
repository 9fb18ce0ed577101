import AsyncHTTPClient
import DelegationFakes
import DelegationStore
import DelegationWorker
import Foundation
import NIOCore
import Synchronization

/// Rows 3, 4 and 6: the worker end to end, with thousands of long tasks in flight, and with tasks that
/// outlive its request timeout.
enum WorkerBench {
    static let selfID = "bench-agent"
    static let token = "bench-token"

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
        try StoreBench.seed(path, count: count, workspace: "ws-peer", source: selfID)
        var configuration = WorkerConfiguration()
        configuration.databasePath = path
        configuration.platformURL = platform.baseURL
        configuration.workspaceID = selfID
        configuration.token = token
        configuration.concurrency = 64
        configuration.exitWhenIdle = true
        configuration.workerID = "bench-worker"
        let store = try DelegationStore(StoreConfiguration(path: path, sourceWorkspaceID: selfID), logger: quietLogger("bench"))
        let http = DelegationWorker.makeHTTPClient(concurrency: configuration.concurrency)
        let worker = try DelegationWorker(configuration: configuration, store: store, httpClient: http, logger: quietLogger("bench.worker"))
        let writesBefore = (
            operations: store.writerStatistics.operations, commits: store.writerStatistics.transactions,
            catchUps: store.writerStatistics.searchCatchUps)
        let start = ContinuousClock.now
        try await worker.run()
        let elapsed = seconds(since: start)
        let writes = (
            operations: store.writerStatistics.operations - writesBefore.operations,
            commits: store.writerStatistics.transactions - writesBefore.commits,
            catchUps: store.writerStatistics.searchCatchUps - writesBefore.catchUps)
        try await http.shutdown()
        await store.close()
        let completed = try queryInt(try openDatabase(path, readOnly: true), "SELECT count(*) FROM delegations WHERE status = 'completed'")
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
        // What the single writer did for it: a claim, an outcome, an outbox claim or a delivery mark is one
        // operation however many rows it touches (claims take batches); concurrent operations share commits.
        results.add(Result(
            row: "3. writer work per delegation",
            figure: String(format: "%.2f operations, %.2f commits (%.1f operations per commit), plus %d search-index catch-ups",
                           Double(writes.operations) / Double(count), Double(writes.commits) / Double(count),
                           Double(writes.operations) / Double(max(1, writes.commits)), writes.catchUps),
            baseline: "-", ratio: nil, target: "(printed)", met: nil))
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

}
