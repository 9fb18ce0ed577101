import AsyncHTTPClient
import DelegationStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The worker process's whole job, as one `Service`: every loop it runs is in this file.
///
/// - claim: keeps up to `concurrency` delegations in flight, each under a lease;
/// - leases: renews them every third of the lease, and stops work on any that was lost;
/// - outbox: delivers mirror calls to the platform, in order per delegation, with backoff;
/// - queued: asks the platform's list about delegations its proxy queued;
/// - history: evicts finished rows beyond `--history-limit` (when set).
///
/// On graceful shutdown (SIGTERM/SIGINT through ServiceLifecycle) it stops claiming, lets in-flight
/// requests finish for `shutdownGrace`, releases the leases of the rest (back to pending, attempt
/// not counted), flushes the outbox, and returns.
public final class DelegationWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let store: DelegationStore
    private let logger: Logger
    private let http: HTTPClient
    private let platform: PlatformClient
    private let processor: DelegationProcessor
    private let peers: PeerDirectory
    private let inFlight = InFlightRegistry()
    private let slotFreed = WakeUp()
    /// Mirror calls being posted, and a wake-up each time one finishes (the next one of its delegation is due).
    private let outboxInFlight = Mutex(0)
    private let outboxProgress = WakeUp()
    /// Fired when shutdown starts: no more claims.
    private let draining = OneShotSignal()
    /// Fired when in-flight work is over: the background loops stop.
    private let stopped = OneShotSignal()

    public init(configuration: WorkerConfiguration, store: DelegationStore, logger: Logger) throws {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw WorkerConfigurationError(problems: problems) }
        self.configuration = configuration
        self.store = store
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        self.logger = logger
        http = HTTPTransport.makeClient(concurrency: configuration.concurrency)
        let transport = HTTPTransport(client: http, maximumBody: configuration.maximumAnswerBytes)
        platform = PlatformClient(
            transport: transport, baseURL: configuration.platformURL, workspaceID: configuration.workspaceID,
            token: configuration.token, timeout: configuration.platformTimeout)
        peers = PeerDirectory(store: store)
        processor = DelegationProcessor(
            store: store, configuration: configuration, platform: platform, transport: transport, peers: peers,
            inFlight: inFlight, logger: logger)
    }

    /// The HTTP client a worker uses, configured the same way (for benchmarks that need the same
    /// client without a store: the network ceiling).
    public static func makeHTTPClient(concurrency: Int) -> HTTPClient {
        HTTPTransport.makeClient(concurrency: concurrency)
    }

    /// Starts a graceful shutdown from code (what SIGTERM does).
    public func shutdown() {
        draining.fire()
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await self.work()
        } onGracefulShutdown: {
            self.logger.info("shutdown requested: no new claims")
            self.draining.fire()
        }
    }

    private func work() async throws {
        do {
            try await peers.load()
        } catch {
            logger.warning("could not load known peer protocols: \(error)")
        }
        logger.info(
            "worker started",
            metadata: [
                "db": "\(store.configuration.path)", "platform": "\(configuration.platformURL)",
                "workspace": "\(configuration.workspaceID)", "concurrency": "\(configuration.concurrency)",
            ])
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.renewLeases() }
            background.addTask { await self.deliverOutbox() }
            background.addTask { await self.checkQueued() }
            if let limit = configuration.historyLimit { background.addTask { await self.evictHistory(keep: limit) } }
            await claimAndProcess()
            stopped.fire()
        }
        await releaseAndFlush()
        try? await http.shutdown()
        logger.info("worker stopped")
    }

    // MARK: Claiming

    private func claimAndProcess() async {
        await withDiscardingTaskGroup { processing in
            var failures = 0
            while !draining.hasFired {
                let capacity = configuration.concurrency - inFlight.count
                var claimed: [Delegation] = []
                if capacity > 0 {
                    do {
                        claimed = try await store.claim(
                            worker: configuration.workerID, limit: min(capacity, 256), lease: configuration.lease)
                        failures = 0
                    } catch {
                        failures += 1
                        logger.error("claiming failed (try \(failures)): \(error)")
                        _ = await sleep(for: .milliseconds(200 * min(failures, 25)), unless: draining)
                        continue
                    }
                }
                for delegation in claimed {
                    let token = inFlight.add(delegation.id)
                    processing.addTask {
                        await self.processRevocably(delegation, token: token)
                        self.inFlight.remove(delegation.id, token: token)
                        self.slotFreed.notify()
                    }
                }
                if !claimed.isEmpty, claimed.count == min(capacity, 256) { continue }  // there may be more due
                if configuration.exitWhenIdle, claimed.isEmpty, inFlight.count == 0, await isIdle() {
                    logger.info("nothing left to do: exiting (--exit-when-idle)")
                    draining.fire()
                    break
                }
                await wait(for: slotFreed, atMost: configuration.claimInterval, unless: draining)
            }
            if inFlight.count > 0 {
                logger.info("waiting up to \(configuration.shutdownGrace) for \(inFlight.count) delegations in flight")
                if !(await inFlight.waitUntilEmpty(timeout: configuration.shutdownGrace)) {
                    logger.warning("grace period over: stopping \(inFlight.count) delegations; their leases are released")
                    inFlight.revokeAll()
                }
            }
        }
    }

    /// Runs the processor until it finishes or the delegation is revoked (lease lost, grace over).
    private func processRevocably(_ delegation: Delegation, token: UInt64) async {
        await withTaskGroup(of: Void.self) { race in
            race.addTask { await self.processor.process(delegation) }
            race.addTask { await self.inFlight.waitUntilRevoked(delegation.id, token: token) }
            _ = await race.next()
            race.cancelAll()
        }
    }

    private func isIdle() async -> Bool {
        guard let work = try? await store.read("checking for remaining work", { try Transitions.remainingWork($0) })
        else { return false }
        return work.live == 0 && work.outbox == 0
    }

    // MARK: Leases

    private func renewLeases() async {
        let interval = configuration.lease / 3
        while !(await sleep(for: interval, unless: stopped)) {
            guard inFlight.count > 0 else { continue }
            do {
                // Only the rows this process is working on: a row it lost track of must expire and be taken
                // over. One snapshot for both steps: a row claimed meanwhile was not asked about, so it is not lost.
                let working = inFlight.ids
                let held = try await store.renewLeases(
                    worker: configuration.workerID, lease: configuration.lease, ids: working)
                for id in working where !held.contains(id) {
                    if inFlight.revoke(id) {
                        logger.warning("lease lost (cancelled, or taken over): stopping its work", metadata: ["delegation_id": "\(id)"])
                    }
                }
            } catch {
                logger.error("renewing leases failed; trying again in \(interval): \(error)")
            }
        }
    }

    // MARK: Outbox

    /// Mirror calls a worker keeps in flight at once.
    static let outboxWindow = 128

    /// Keeps up to `outboxWindow` mirror calls in flight, claiming more as they finish, so a slow call
    /// never holds back the others (a batch-at-a-time loop capped the worker's throughput).
    private func deliverOutbox() async {
        let window = Self.outboxWindow
        await withDiscardingTaskGroup { group in
            var failures = 0
            while !stopped.hasFired {
                let room = window - outboxInFlight.withLock { $0 }
                if room >= window / 4 {
                    do {
                        let worker = configuration.workerID
                        let items = try await store.write("claiming outbox items") { database in
                            try Outbox.claim(database, worker: worker, limit: room, lease: .seconds(60))
                        }
                        failures = 0
                        outboxInFlight.withLock { $0 += items.count }
                        for item in items {
                            group.addTask {
                                await self.deliver(item)
                                self.outboxInFlight.withLock { $0 -= 1 }
                                self.outboxProgress.notify()
                            }
                        }
                        if items.count == room { continue }  // there may be more due
                    } catch {
                        failures += 1
                        logger.error("reading the outbox failed: \(error)")
                    }
                }
                await wait(for: outboxProgress, atMost: .milliseconds(failures == 0 ? 200 : 1000), unless: stopped)
            }
        }
    }

    /// One batch, delivered whole: the last flush at shutdown. Returns how many were tried.
    private func deliverOutboxBatch() async throws -> Int {
        let worker = configuration.workerID
        let items = try await store.write("claiming outbox items") { database in
            try Outbox.claim(database, worker: worker, limit: 64, lease: .seconds(60))
        }
        await withDiscardingTaskGroup { group in
            for item in items { group.addTask { await self.deliver(item) } }
        }
        return items.count
    }

    private func deliver(_ item: OutboxItem) async {
        let worker = configuration.workerID
        let retryDelay = min(Duration.seconds(1) * (1 << min(item.attempts - 1, 9)), .seconds(300)) * Double.random(in: 0.8...1.2)
        var logger = logger
        logger[metadataKey: "delegation_id"] = "\(item.delegationID)"
        do {
            let answer = try await platform.deliver(item)
            switch answer.status {
            case 200..<300:
                try await store.write("marking an outbox item delivered") { database in
                    try Outbox.delivered(database, item: item, worker: worker, status: answer.status)
                }
            case 401, 408, 425, 429, 500...599:
                let error = "HTTP \(answer.status): \(answer.excerpt)"
                logger.warning("platform did not take the \(item.kind.rawValue) call; retrying in \(retryDelay): \(error)")
                try await store.write("rescheduling an outbox item") { database in
                    try Outbox.retry(database, item: item, worker: worker, error: error, delay: retryDelay)
                }
            default:
                let error = "HTTP \(answer.status): \(answer.excerpt)"
                logger.error("platform refused the \(item.kind.rawValue) call; kept as dead in the outbox: \(error)")
                try await store.write("marking an outbox item dead") { database in
                    try Outbox.dead(database, item: item, worker: worker, error: error)
                }
            }
        } catch is CancellationError {
            return
        } catch {
            logger.warning("platform unreachable for the \(item.kind.rawValue) call; retrying in \(retryDelay): \(error)")
            _ = try? await store.write("rescheduling an outbox item") { database in
                try Outbox.retry(database, item: item, worker: worker, error: "\(error)", delay: retryDelay)
            }
        }
    }

    // MARK: Queued at the platform

    private func checkQueued() async {
        var failures = 0
        while true {
            let wait = failures == 0
                ? configuration.pollInterval : min(configuration.pollInterval * (1 << min(failures, 6)), .seconds(300))
            if await sleep(for: wait, unless: stopped) { return }
            guard let queued = try? await store.read("listing queued delegations", { try Transitions.queuedIDs($0) }),
                !queued.isEmpty
            else { continue }
            do {
                let wanted = Set(queued)
                for row in try await platform.listDelegations() where wanted.contains(row.delegationID) {
                    let resolution: Transitions.QueuedOutcome
                    switch row.status {
                    case "completed": resolution = .completed(result: row.responsePreview ?? "")
                    case "failed": resolution = .failed(error: row.error ?? "failed at the platform")
                    default: continue
                    }
                    if try await store.resolveQueued(id: row.delegationID, outcome: resolution) {
                        logger.info("queued delegation resolved: \(row.status)", metadata: ["delegation_id": "\(row.delegationID)"])
                    }
                }
                failures = 0
            } catch {
                failures += 1
                logger.warning("checking queued delegations with the platform failed (\(queued.count) waiting): \(error)")
            }
        }
    }

    // MARK: History

    private func evictHistory(keep limit: Int) async {
        repeat {
            do {
                let evicted = try await Eviction.run(store: store, keep: limit, olderThan: nil)
                if evicted > 0 { logger.info("evicted \(evicted) finished delegations beyond the history limit of \(limit)") }
            } catch {
                logger.error("evicting history failed: \(error)")
            }
        } while !(await sleep(for: .seconds(60), unless: stopped))
    }

    // MARK: Shutdown

    private func releaseAndFlush() async {
        let worker = configuration.workerID
        do {
            let released = try await store.releaseLeases(worker: worker)
            if !released.isEmpty { logger.info("released \(released.count) leases (back to pending, attempt not counted)") }
        } catch {
            logger.error("releasing leases failed; they expire in \(configuration.lease): \(error)")
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            guard let tried = try? await deliverOutboxBatch(), tried > 0 else { break }
        }
        _ = try? await store.write("releasing outbox leases") { try Outbox.release($0, worker: worker) }
    }
}

/// The configuration cannot work; every problem is listed.
public struct WorkerConfigurationError: Error, CustomStringConvertible {
    public let problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") }
}
