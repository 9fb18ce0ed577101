import AsyncHTTPClient
import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import Logging
import TestSupport
import Testing

/// One test's world: a platform, peers, a database file, and a worker to run against them.
final class Scenario: Sendable {
    static let token = "test-token-do-not-log"
    static let selfID = "ws-self"

    let directory = TemporaryDirectory()
    let platform = FakePlatform(workspaceID: Scenario.selfID, token: Scenario.token)
    let store: DelegationStore
    private let peers = PeerList()

    var databasePath: String { directory.file("delegations.db") }

    init(busyTimeout: Duration = .seconds(10)) async throws {
        try await platform.start()
        store = try DelegationStore(
            StoreConfiguration(path: directory.file("delegations.db"), busyTimeout: busyTimeout, sourceWorkspaceID: Scenario.selfID),
            logger: quietLogger)
    }

    /// Starts a peer and registers it for `workspace` with the platform's discovery.
    @discardableResult
    func peer(
        _ workspace: String, dialect: FakePeer.Dialect = .v03, honoursNonBlocking: Bool = true,
        _ behavior: @escaping FakePeer.Behavior
    ) async throws -> FakePeer {
        let peer = FakePeer(dialect: dialect, honoursNonBlocking: honoursNonBlocking, behavior: behavior)
        try await peer.start()
        peers.add(peer)
        platform.register(workspace, .url(peer.url))
        return peer
    }

    func delegate(_ workspace: String, _ task: String = "do the thing", maxAttempts: Int? = nil) async throws -> String {
        let answer = try await store.delegate(workspaceID: workspace, task: task, maxAttempts: maxAttempts)
        return try #require(answer["task_id"]?.stringValue)
    }

    func row(_ id: String) async throws -> Delegation {
        try #require(try await store.delegation(id: id))
    }

    func events(_ id: String) async throws -> [DelegationEvent] {
        try await store.events(delegationID: id)
    }

    /// Fast timings, so a test's retries and polls take milliseconds.
    func configuration(_ adjust: (inout WorkerConfiguration) -> Void = { _ in }) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        configuration.databasePath = databasePath
        configuration.platformURL = platform.baseURL
        configuration.workspaceID = Scenario.selfID
        configuration.token = Scenario.token
        configuration.retryDelay = .milliseconds(50)
        configuration.pollInterval = .milliseconds(100)
        configuration.claimInterval = .milliseconds(20)
        configuration.lease = .seconds(30)
        configuration.requestTimeout = .seconds(10)
        configuration.shutdownGrace = .seconds(2)
        configuration.workerID = "test-worker"
        adjust(&configuration)
        return configuration
    }

    /// Runs a worker until nothing is left to do (`--exit-when-idle`), or fails the test after `timeout`.
    func runUntilIdle(timeout: Duration = .seconds(30), _ adjust: (inout WorkerConfiguration) -> Void = { _ in }) async throws {
        var configuration = configuration(adjust)
        configuration.exitWhenIdle = true
        try await run(configuration, for: timeout, expectIdleExit: true)
    }

    /// Runs a worker for `duration`, then shuts it down gracefully.
    func run(for duration: Duration, _ adjust: (inout WorkerConfiguration) -> Void = { _ in }) async throws {
        try await run(configuration(adjust), for: duration, expectIdleExit: false)
    }

    /// Runs a worker until `condition` holds (checked every 20 ms), then shuts it down gracefully.
    func run(
        until condition: @escaping @Sendable () async throws -> Bool, timeout: Duration = .seconds(20),
        sourceLocation: SourceLocation = #_sourceLocation, _ adjust: (inout WorkerConfiguration) -> Void = { _ in }
    ) async throws {
        let worker = try TestWorker(configuration(adjust), store: store)
        let met = await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                try? await worker.run()
                return nil
            }
            group.addTask {
                let met = await eventually(timeout: timeout) { (try? await condition()) ?? false }
                worker.shutdown()
                return met
            }
            var met = false
            for await result in group { if let result { met = result } }
            return met
        }
        #expect(met, "the condition did not hold within \(timeout)", sourceLocation: sourceLocation)
    }

    private func run(_ configuration: WorkerConfiguration, for duration: Duration, expectIdleExit: Bool) async throws {
        let worker = try TestWorker(configuration, store: store)
        let timedOut = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await worker.run()
                return false
            }
            group.addTask {
                try? await Task.sleep(for: duration)
                worker.shutdown()
                return true
            }
            let first = await group.next() ?? true
            group.cancelAll()
            await group.waitForAll()
            return first
        }
        if expectIdleExit { #expect(!timedOut, "the worker did not become idle within \(duration)") }
    }

    func close() async {
        for peer in peers.all { await peer.stop() }
        await platform.stop()
        await store.close()
    }
}

/// A worker and the HTTP client it runs on, shut down together (as `delegation-worker`'s service group does).
final class TestWorker: Sendable {
    let worker: DelegationWorker
    private let http: HTTPClient

    init(_ configuration: WorkerConfiguration, store: DelegationStore) throws {
        http = DelegationWorker.makeHTTPClient(concurrency: configuration.concurrency)
        do {
            worker = try DelegationWorker(configuration: configuration, store: store, httpClient: http, logger: testLogger)
        } catch {
            try? http.syncShutdown()
            throw error
        }
    }

    /// Runs the worker until it stops, then shuts its HTTP client down.
    func run() async throws {
        do {
            try await worker.run()
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    func shutdown() { worker.shutdown() }
}

/// Quiet unless TEST_LOG_LEVEL says otherwise (e.g. `TEST_LOG_LEVEL=debug swift test --filter …`).
let testLogger: Logger = {
    var logger = Logger(label: "test.worker")
    logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

final class PeerList: @unchecked Sendable {
    private let lock = NSLock()
    private var peers: [FakePeer] = []
    func add(_ peer: FakePeer) { lock.withLock { peers.append(peer) } }
    var all: [FakePeer] { lock.withLock { peers } }
}

/// Counts calls per key, for peers that answer differently on the first and later attempts.
final class CallCounter: Sendable {
    private let counts = NSLockedDictionary()
    func next(_ key: String?) -> Int { counts.increment(key ?? "") }
}

final class NSLockedDictionary: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]
    func increment(_ key: String) -> Int {
        lock.withLock {
            values[key, default: 0] += 1
            return values[key]!
        }
    }
}

/// A port bound but not listening: connecting is refused, and while this lives no other server
/// (another test's) can take the port.
final class RefusingPort: Sendable {
    private let descriptor: Int32
    let url: String

    init() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        self.url = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
    }

    deinit { close(descriptor) }
}
