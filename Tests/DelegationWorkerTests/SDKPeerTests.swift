import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The worker against real A2A servers built on the official Python SDK (`a2a-sdk` 1.3.0 from PyPI,
/// `Tests/SDKPeer/a2a_sdk_peer.py`), not against our own fakes.
///
/// `.ci/run` installs the SDK into `.build/a2a-sdk-venv` (or set `A2A_SDK_PYTHON` to a python that has
/// it). Without it this suite is reported as skipped, with the reason, never as passed.
@Suite(.enabled(if: SDKPeer.python != nil, "a2a-sdk 1.3.0 is not installed (PyPI unreachable?): run .ci/run, or set A2A_SDK_PYTHON"))
struct SDKPeerTests {
    @Test func aOneDotZeroOnlyServerIsSpokenToInOneDotZeroFromItsCard() async throws {
        let scenario = try await Scenario()
        let peer = try await SDKPeer.start(["--task-seconds", "0.3"])
        scenario.platform.register("ws-sdk", .url(peer.url))
        let id = try await scenario.delegate("ws-sdk", "summarise the report")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "done: summarise the report", "\(row.error ?? "")")
        let stats = try await peer.stats()
        #expect(stats.executions == [row.messageID: 1])
        let first = try #require(stats.requests.first)
        #expect(first.method == "SendMessage" && first.version == "1.0", "the agent card said 1.0: no 0.3 attempt first")
        #expect(first.configuration?["returnImmediately"] == .bool(true))
        #expect(stats.requests.dropFirst().allSatisfy { $0.method == "GetTask" })
        peer.stop()
        await scenario.close()
    }

    @Test func aServerWithTheZeroDotThreeAdapterIsSpokenToInZeroDotThree() async throws {
        let scenario = try await Scenario()
        let peer = try await SDKPeer.start(["--compat", "--task-seconds", "0.3"])
        scenario.platform.register("ws-sdk", .url(peer.url))
        // As if an earlier answer had taught the worker that this peer speaks 0.3.
        let url = peer.url
        try await scenario.store.write("remember") { try PeerProtocols.remember($0, url: url, protocol: "0.3") }
        let id = try await scenario.delegate("ws-sdk", "translate the notes")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "done: translate the notes", "\(row.error ?? "")")
        let stats = try await peer.stats()
        #expect(stats.executions == [row.messageID: 1])
        let first = try #require(stats.requests.first)
        #expect(first.method == "message/send" && first.version == nil)
        #expect(first.configuration?["blocking"] == .bool(false))
        #expect(stats.requests.dropFirst().allSatisfy { $0.method == "tasks/get" })
        peer.stop()
        await scenario.close()
    }

    @Test func aTaskSlowerThanTheTimeoutRunsExactlyOnceAndCompletes() async throws {
        let scenario = try await Scenario()
        let peer = try await SDKPeer.start(["--task-seconds", "4"])
        scenario.platform.register("ws-sdk", .url(peer.url))
        let id = try await scenario.delegate("ws-sdk", "a long job")
        try await scenario.runUntilIdle(timeout: .seconds(40)) { $0.requestTimeout = .seconds(1) }
        let row = try await scenario.row(id)
        #expect(row.status == .completed && row.result == "done: a long job", "\(row.error ?? "")")
        #expect(row.attempts == 1)
        #expect(try await peer.stats().executions == [row.messageID: 1], "run exactly once at the peer")
        peer.stop()
        await scenario.close()
    }

    @Test func aFailedTaskFailsTheDelegationWithThePeersReason() async throws {
        let scenario = try await Scenario()
        let peer = try await SDKPeer.start(["--task-seconds", "0.2", "--outcome", "failed"])
        scenario.platform.register("ws-sdk", .url(peer.url))
        let id = try await scenario.delegate("ws-sdk", "parse the sheet")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(id)
        #expect(row.status == .failed && row.error == "peer task failed: the task failed on purpose")
        #expect(try await peer.stats().cancels.isEmpty, "a task that failed at the peer needs no cancel")
        peer.stop()
        await scenario.close()
    }

    @Test func cancellingARunningTaskCancelsItAtThePeer() async throws {
        let scenario = try await Scenario()
        let peer = try await SDKPeer.start(["--task-seconds", "120"])
        scenario.platform.register("ws-sdk", .url(peer.url))
        let id = try await scenario.delegate("ws-sdk", "plan the offsite")
        let store = scenario.store
        try await scenario.run(until: {
            guard let row = try await store.delegation(id: id), row.remoteTaskID != nil else { return false }
            if row.status == .inProgress { try await store.cancel(id: id, reason: "cancelled by operator: plans changed") }
            return try await store.events(delegationID: id).contains { $0.kind == "peer.cancel" }
        }, timeout: .seconds(30))
        let row = try await scenario.row(id)
        #expect(row.status == .cancelled)
        let stats = try await peer.stats()
        #expect(stats.cancels == [row.remoteTaskID].compactMap { $0 }, "the SDK's executor was cancelled")
        #expect(stats.requests.contains { $0.method == "CancelTask" && $0.version == "1.0" })
        let answer = try await scenario.events(id).first { $0.kind == "peer.cancel" }?.detail
        #expect(answer?.contains("task canceled") == true, "\(answer ?? "")")
        peer.stop()
        await scenario.close()
    }
}

/// One `a2a_sdk_peer.py` server, on a port it chose itself.
final class SDKPeer: Sendable {
    /// A python with a2a-sdk: `A2A_SDK_PYTHON`, else the venv `.ci/run` makes.
    static let python: String? = {
        let candidates = [
            ProcessInfo.processInfo.environment["A2A_SDK_PYTHON"],
            packageRoot.appendingPathComponent(".build/a2a-sdk-venv/bin/python").path,
        ].compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
    static let script = packageRoot.appendingPathComponent("Tests/SDKPeer/a2a_sdk_peer.py").path

    let child: Child
    let url: String

    private init(child: Child, url: String) {
        self.child = child
        self.url = url
    }

    static func start(_ arguments: [String]) async throws -> SDKPeer {
        let child = try Child(try #require(python), [script] + arguments)
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(30) {
            if let line = child.stdout.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }),
                let port = Int(line.dropFirst(5))
            {
                return SDKPeer(child: child, url: "http://127.0.0.1:\(port)/")
            }
            if !child.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        child.kill(SIGKILL)
        let result = await child.finish(within: .seconds(5))
        throw SDKPeerError(description: "the SDK peer did not start: \(result.stderr)")
    }

    struct Stats {
        struct Request {
            var method: String
            var version: String?
            var configuration: JSONValue?
        }
        var executions: [String: Int]
        var cancels: [String]
        var requests: [Request]
    }

    func stats() async throws -> Stats {
        let (data, _) = try await URLSession.shared.data(from: URL(string: url + "stats")!)
        let json = try JSONValue.parse(Array(data))
        var executions: [String: Int] = [:]
        if case .object(let pairs)? = json["executions"] {
            for (key, value) in pairs { executions[key] = value.intValue ?? 0 }
        }
        return Stats(
            executions: executions,
            cancels: json["cancels"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            requests: json["requests"]?.arrayValue?.map {
                Stats.Request(
                    method: $0["method"]?.stringValue ?? "", version: $0["a2a_version"]?.stringValue,
                    configuration: $0["params_configuration"].flatMap { $0 == .null ? nil : $0 })
            } ?? [])
    }

    func stop() {
        child.kill(SIGTERM)
    }
}

struct SDKPeerError: Error, CustomStringConvertible {
    let description: String
}
