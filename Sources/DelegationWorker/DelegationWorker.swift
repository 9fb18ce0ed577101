import AsyncHTTPClient
import DelegationStore
import DelegationTool
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The worker process's whole job, as one `Service`: every loop it runs is in this file.
///
/// - claim: keeps up to `concurrency` requests in flight, each under a lease (a send, or one poll of a
///   peer's running task — between polls a followed delegation holds nothing);
/// - leases: renews them every third of the lease, and stops work on any that was lost;
/// - outbox: delivers mirror calls to the platform, in order per delegation, with backoff;
/// - queued: asks the platform's list about delegations its proxy queued, and fails those past
///   `queuedTimeout`;
/// - peer cancels: asks peers to cancel tasks of delegations that ended without them;
/// - history: evicts finished rows beyond `--history-limit` (when set).
///
/// On graceful shutdown (SIGTERM/SIGINT through ServiceLifecycle) it stops claiming, lets in-flight
/// requests finish for what `shutdownGrace` allows, releases the leases of the rest (a send goes back
/// to pending, its attempt not counted; a poll is parked), spends what is left of the grace on the
/// outbox, and returns: all of it within the grace, whatever the platform does.
public final class DelegationWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let store: DelegationStore
    private let logger: Logger
    private let platform: PlatformClient
    private let transport: HTTPTransport
    private let processor: DelegationProcessor
    private let peers: PeerDirectory
    private let inFlight = InFlightRegistry()
    private let metrics = WorkerMetrics()
    private let slotFreed = WakeUp()
    /// Mirror calls being posted, whether the last claim found nothing due, and a wake-up each time one
    /// finishes (the next one of its delegation is due).
    private let outbox = Mutex((inFlight: Set<Int>(), idle: false))
    private let outboxProgress = WakeUp()
    /// Delivered mirror calls are marked through it, many in one statement when they finish together.
    private let deliveryMarks: DeliveryMarks
    /// Fired when shutdown starts: no more claims.
    private let draining = OneShotSignal()
    /// Fired when in-flight work is over and leases are released: the background loops stop.
    private let stopped = OneShotSignal()
    /// Fired when the shutdown grace is spent: the outbox stops too.
    private let outOfTime = OneShotSignal()

    /// A worker over `store`, talking HTTP through `httpClient` (which its owner shuts down: see
    /// `HTTPClientService`; `makeHTTPClient(for:)` configures one the way the worker needs).
    /// - Throws: `WorkerConfigurationError` listing every problem of `configuration`.
    public init(configuration: WorkerConfiguration, store: DelegationStore, httpClient: HTTPClient, logger: Logger) throws {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw WorkerConfigurationError(problems: problems) }
        self.configuration = configuration
        self.store = store
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.workerID)"
        self.logger = logger
        transport = HTTPTransport(client: httpClient, maximumBody: configuration.maximumAnswerBytes)
        platform = PlatformClient(
            transport: transport, baseURL: configuration.platformURL, workspaceID: configuration.workspaceID,
            token: configuration.token, timeout: configuration.platformTimeout)
        peers = PeerDirectory(store: store, transport: transport)
        deliveryMarks = DeliveryMarks(store: store, worker: configuration.workerID)
        processor = DelegationProcessor(
            store: store, configuration: configuration, platform: platform, transport: transport, peers: peers,
            inFlight: inFlight, metrics: metrics, logger: logger)
    }

    /// An HTTP client configured as a worker needs it: no redirects, a pool as wide as `concurrency`,
    /// refused connections failing the attempt at once. Its owner shuts it down (`HTTPClientService`).
    public static func makeHTTPClient(concurrency: Int) -> HTTPClient {
        HTTPTransport.makeClient(concurrency: concurrency)
    }

    /// Starts a graceful shutdown from code (what SIGTERM does).
    public func shutdown() {
        draining.fire()
    }

    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await self.work()
            } onGracefulShutdown: {
                self.logger.info("shutdown requested: no new claims")
                self.draining.fire()
            }
        } onCancel: {
            // Cancelled (its group is cancelled, not shut down gracefully): stop at once, nothing more to spend.
            self.draining.fire()
            self.outOfTime.fire()
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
            background.addTask { await self.deliverPeerCancels() }
            if let limit = configuration.historyLimit { background.addTask { await self.evictHistory(keep: limit) } }
            if configuration.refreshesGauges { background.addTask { await self.refreshGauges() } }
            background.addTask { await self.stopWaitingForLocksAtTheDeadline() }
            let deadline = await claimAndProcess()
            await releaseLeases()
            stopped.fire()
            await spendTheRestOnTheOutbox(until: deadline)
            outOfTime.fire()
            background.cancelAll()
        }
        do {
            try await store.releaseDeliveries(worker: configuration.workerID)
        } catch {
            logger.warning("could not hand back the mirror calls in flight; their leases expire in \(configuration.lease): \(error)")
        }
        store.resumeWaitingForLocks()
        logger.info("worker stopped")
    }

    // MARK: Claiming

    /// Claims and processes until draining; then waits for in-flight work until the grace is spent and
    /// revokes the rest. Returns the shutdown's deadline.
    private func claimAndProcess() async -> ContinuousClock.Instant {
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
                        metrics.claims.increment(by: claimed.count)
                        metrics.takeovers.increment(by: claimed.filter { $0.takeovers > 0 }.count)
                    } catch {
                        failures += 1
                        logger.error("claiming failed (try \(failures)): \(error)")
                        _ = await sleep(for: .milliseconds(200 * min(failures, 25)), unless: draining)
                        continue
                    }
                }
                // A claim that waited for a lock through SIGTERM may still return rows: they are not started
                // (a send now would be revoked moments later); the releases below let them go uncounted.
                if draining.hasFired { break }
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
            let deadline = shutdownDeadline
            if inFlight.count > 0 {
                let left = max(.zero, deadline - .now)
                logger.info("waiting up to \(left) for \(inFlight.count) delegations in flight")
                if !(await inFlight.waitUntilEmpty(timeout: left)) {
                    logger.warning("grace period over: stopping \(inFlight.count) delegations; their leases are released")
                    inFlight.revokeAll()
                }
            }
            return deadline
        }
    }

    /// The grace counts from the moment draining began, not from when the claim loop noticed it: a claim
    /// that was waiting for another process's lock when SIGTERM came must not push the deadline out.
    private var shutdownDeadline: ContinuousClock.Instant {
        (draining.firedAt ?? .now) + configuration.shutdownGrace
    }

    /// Past the shutdown's deadline no write may wait out another process's lock (10 s each by default):
    /// a claim stuck behind it, the releases and the outbox then fail fast, and the leases expire on their own.
    private func stopWaitingForLocksAtTheDeadline() async {
        await draining.wait()
        guard !Task.isCancelled else { return }
        try? await Task.sleep(until: shutdownDeadline)
        if !Task.isCancelled { store.stopWaitingForLocks() }
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
        (try? await store.remainingWork())?.isNone ?? false
    }

    // MARK: Leases

    /// Renews the leases of the delegations and the mirror calls in flight, every third of the lease.
    private func renewLeases() async {
        let interval = configuration.lease / 3
        let worker = configuration.workerID
        let lease = configuration.lease
        while !(await sleep(for: interval, unless: outOfTime)) {
            let posting = Array(outbox.withLock { $0.inFlight })
            if !posting.isEmpty {
                do {
                    try await store.renewOutboxLeases(worker: worker, ids: posting, lease: lease)
                } catch {
                    logger.error("renewing outbox leases failed; trying again in \(interval): \(error)")
                }
            }
            guard !stopped.hasFired else { continue }
            do {
                // Only the rows this process is working on: a row it lost track of must expire (below). One
                // snapshot, with each claim's token, for both steps: a row claimed (again) meanwhile was not
                // asked about, and its new claim is not the one a refusal would stop.
                let working = inFlight.claims
                if !working.isEmpty {
                    let held = try await store.renewLeases(worker: worker, lease: lease, ids: working.map(\.id))
                    for (id, token) in working where !held.contains(id) {
                        if inFlight.revoke(id, token: token) {
                            logger.warning("lease lost (cancelled, or taken over): stopping its work", metadata: ["delegation_id": "\(id)"])
                        }
                    }
                }
                // Rows this worker holds but no longer works on (its work ended without a write): nobody takes
                // over a live worker's own rows, so it lets them go once their lease expired.
                let stray = try await store.releaseStrayLeases(worker: worker, inFlight: inFlight.ids)
                if !stray.isEmpty { logger.warning("released \(stray.count) rows whose work ended without an outcome") }
            } catch {
                logger.error("renewing leases failed; trying again in \(interval): \(error)")
            }
        }
    }

    /// Shutdown: every row still held goes back (a send to pending, its attempt not counted; a poll parked).
    private func releaseLeases() async {
        do {
            let released = try await store.releaseLeases(worker: configuration.workerID)
            if !released.isEmpty { logger.info("released \(released.count) leases; another worker carries on") }
        } catch {
            logger.error("releasing leases failed; they expire in \(configuration.lease): \(error)")
        }
    }

    // MARK: Outbox

    /// Mirror calls a worker keeps in flight at once.
    static let outboxWindow = 128

    /// Keeps up to `outboxWindow` mirror calls in flight, claiming more as they finish, so a slow call
    /// never holds back the others (a batch-at-a-time loop capped the worker's throughput). Runs through
    /// the shutdown until the grace is spent; calls still in flight then are cancelled and released.
    private func deliverOutbox() async {
        let window = Self.outboxWindow
        await withDiscardingTaskGroup { group in
            var failures = 0
            while !outOfTime.hasFired && !Task.isCancelled {
                let room = window - outbox.withLock { $0.inFlight.count }
                if room >= window / 4 {
                    do {
                        let worker = configuration.workerID
                        let lease = configuration.lease
                        let items = try await store.claimOutbox(worker: worker, limit: room, lease: lease)
                        failures = 0
                        outbox.withLock {
                            $0.inFlight.formUnion(items.map(\.id))
                            $0.idle = items.isEmpty && $0.inFlight.isEmpty
                        }
                        for item in items {
                            group.addTask {
                                await self.deliver(item)
                                self.outbox.withLock { _ = $0.inFlight.remove(item.id) }
                                self.outboxProgress.notify()
                            }
                        }
                        if items.count == room { continue }  // there may be more due
                    } catch {
                        failures += 1
                        logger.error("reading the outbox failed: \(error)")
                    }
                }
                await wait(for: outboxProgress, atMost: .milliseconds(failures == 0 ? 200 : 1000), unless: outOfTime)
            }
            group.cancelAll()
        }
    }

    /// After the leases are released: waits until nothing is left to mirror, or the deadline.
    private func spendTheRestOnTheOutbox(until deadline: ContinuousClock.Instant) async {
        outbox.withLock { $0.idle = false }
        outboxProgress.notify()
        while ContinuousClock.now < deadline, !Task.isCancelled, !outOfTime.hasFired {
            if outbox.withLock({ $0.idle && $0.inFlight.isEmpty }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = outbox.withLock { $0.inFlight.count }
        if left > 0 { logger.warning("shutdown grace spent: \(left) mirror calls in flight are released for another worker") }
    }

    private func deliver(_ item: OutboxItem) async {
        let worker = configuration.workerID
        let retryDelay = min(Duration.seconds(1) * (1 << min(max(item.attempts - 1, 0), 9)), .seconds(300)) * Double.random(in: 0.8...1.2)
        var logger = logger
        logger[metadataKey: "delegation_id"] = "\(item.delegationID)"
        let answer: HTTPAnswer
        do {
            answer = try await platform.deliver(item)
        } catch is CancellationError {
            return
        } catch {
            logger.warning("platform unreachable for the \(item.kind.rawValue) call; retrying in \(retryDelay): \(error)")
            try? await persistently("the \(item.kind.rawValue) call's retry", logger: logger) {
                try await store.outboxRetry(item, worker: worker, error: "\(error)", after: retryDelay)
            }
            return
        }
        // The platform answered: what it said is written until it commits (a lost answer here would post
        // the call again — a duplicate record, update or notification).
        do {
            switch answer.status {
            case 200..<300:
                try await persistently("the \(item.kind.rawValue) call's delivery", logger: logger) {
                    _ = try await deliveryMarks.mark(item, status: answer.status)
                }
            case 401, 408, 425, 429, 500...599:
                let error = "HTTP \(answer.status): \(answer.excerpt)"
                let delay = RetryAfter.of(answer).map { max(retryDelay, min($0, .seconds(300))) } ?? retryDelay
                logger.warning("platform did not take the \(item.kind.rawValue) call; retrying in \(delay): \(error)")
                try await persistently("the \(item.kind.rawValue) call's retry", logger: logger) {
                    try await store.outboxRetry(item, worker: worker, error: error, after: delay)
                }
            default:
                let error = "HTTP \(answer.status): \(answer.excerpt)"
                logger.error("platform refused the \(item.kind.rawValue) call; kept as dead in the outbox: \(error)")
                try await persistently("the \(item.kind.rawValue) call's refusal", logger: logger) {
                    try await store.outboxDead(item, worker: worker, error: error)
                }
            }
        } catch is CancellationError {
            logger.warning("shutdown: the platform's answer to the \(item.kind.rawValue) call was not written; it is posted again")
        } catch {
            logger.error("could not write the platform's answer to the \(item.kind.rawValue) call: \(error)")
        }
    }

    // MARK: Queued at the platform

    /// While queued rows exist, reads the platform's list at the poll interval: resolves the rows whose
    /// outcome it shows, and — after a list was read — fails those accepted longer than `queuedTimeout`
    /// ago (the list shows only the newest 50 rows; an outcome that fell off it is never seen).
    private func checkQueued() async {
        var failures = 0
        while true {
            // Backing off from a platform that failed, but not for long: outcomes slide off its 50-row list.
            let wait = failures == 0
                ? configuration.pollInterval
                : min(configuration.pollInterval * (1 << min(failures, 6)), max(configuration.pollInterval, .seconds(30)))
            if await sleep(for: wait, unless: draining) { return }
            guard let queued = try? await store.queuedIDs(), !queued.isEmpty
            else { continue }
            var listed: [PlatformClient.ListedDelegation] = []
            do {
                listed = try await platform.listDelegations()
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                logger.warning("checking queued delegations with the platform failed (\(queued.count) waiting): \(error)")
            }
            let wanted = Set(queued)
            for row in listed where wanted.contains(row.delegationID) {
                let resolution: QueuedOutcome
                switch row.status {
                case "completed": resolution = .completed(result: row.responsePreview ?? "")
                case "failed": resolution = .failed(error: row.error ?? "failed at the platform")
                default: continue
                }
                do {
                    var resolved = false
                    try await persistently("a queued delegation's outcome", logger: logger) {
                        resolved = try await store.resolveQueued(id: row.delegationID, outcome: resolution)
                    }
                    if resolved {
                        metrics.outcome(row.status == "completed" ? .completed : .failed)
                        logger.info("queued delegation resolved: \(row.status)", metadata: ["delegation_id": "\(row.delegationID)"])
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("could not write a queued delegation's outcome: \(error)", metadata: ["delegation_id": "\(row.delegationID)"])
                }
            }
            // The deadline holds whether or not the platform answered: an outcome not seen by then is not
            // waited for any longer (every wait has a deadline).
            let timeout = configuration.queuedTimeout
            let cutoff = Timestamp.string(from: Date().addingTimeInterval(-Double(timeout.components.seconds)))
            let reason = """
                no outcome on the platform's delegation list within \(timeout) of being queued (--queued-timeout): \
                the outcome was never seen (the list shows only its newest 50 rows), and the peer may have run the task
                """
            do {
                let expired = try await store.expireQueued(acceptedBefore: cutoff, reason: reason)
                if !expired.isEmpty {
                    metrics.outcome(.failed, count: expired.count)
                    logger.warning("\(expired.count) queued delegations failed: \(reason)")
                }
            } catch {
                logger.error("could not fail the queued delegations past their deadline: \(error)")
            }
        }
    }

    // MARK: Peer cancels

    /// Asks peers to cancel tasks of delegations that ended without them (cancelled by an operator, past
    /// the task deadline, poison rows). Best effort, but durable: retried with backoff up to
    /// `peerCancelAttempts` times, and every end is in the delegation's history.
    private func deliverPeerCancels() async {
        let worker = configuration.workerID
        while !(await sleep(for: min(configuration.pollInterval, .seconds(1)), unless: draining)) {
            let items: [PeerCancel]
            do {
                items = try await store.claimPeerCancels(worker: worker, limit: 16, lease: .seconds(150))
            } catch {
                logger.error("reading the peer cancels failed: \(error)")
                continue
            }
            guard !items.isEmpty else { continue }
            await withDiscardingTaskGroup { group in
                for item in items { group.addTask { await self.cancelAtPeer(item) } }
            }
        }
    }

    private func cancelAtPeer(_ item: PeerCancel) async {
        let worker = configuration.workerID
        var url = item.peerURL
        if url == nil, case .found(let found)? = try? await platform.discover(item.workspaceID) { url = found }
        var outcome: A2AOutcome = .retry("the peer's URL is not known", retryAfter: nil)
        if let url {
            let timeout = min(configuration.requestTimeout, .seconds(30))
            var version = await peers.version(for: url, timeout: timeout)
            for _ in 0..<2 {
                let request = A2AProtocol.cancelTask(item.remoteTaskID, traceparent: item.traceparent, version: version)
                let started = ContinuousClock.now
                do {
                    let answer = try await transport.send(.POST, url, headers: request.headers, body: request.body, timeout: timeout)
                    outcome = A2AProtocol.classify(answer)
                    WorkerMetrics.a2aRequest(generation: version, outcome: outcome.metricName, duration: ContinuousClock.now - started)
                } catch is CancellationError {
                    return
                } catch {
                    outcome = .retry("\(error)", retryAfter: nil)
                }
                guard case .wrongGeneration = outcome else { break }
                version = version.other
            }
        }
        let answer: String? =
            switch outcome {
            case .completed(let text): "task canceled" + (text.isEmpty ? "" : ": \(text)")
            case .failed(let text, let state): state == "canceled" ? "task canceled" : text
            case .working(_, let state): "task \(state) (cancel requested)"
            case .queued, .retry, .wrongGeneration: nil
            }
        do {
            try await persistently("the peer's answer to a cancel", logger: logger) {
                if let answer {
                    try await store.peerCancelAnswered(item, worker: worker, answer: answer)
                } else if case .retry(let error, _) = outcome, item.attempts < configuration.peerCancelAttempts {
                    let delay = min(Duration.seconds(2) * (1 << min(item.attempts, 8)), .seconds(600))
                    try await store.peerCancelRetry(item, worker: worker, error: error, after: delay)
                } else {
                    try await store.peerCancelGaveUp(item, worker: worker, error: "\(outcome)")
                }
            }
        } catch {
            logger.error("could not write the outcome of a peer cancel: \(error)", metadata: ["delegation_id": "\(item.delegationID)"])
        }
    }

    // MARK: Gauges

    /// Rows per status and the outbox backlog, at the poll interval, for the exported gauges.
    private func refreshGauges() async {
        repeat {
            if let counts = try? await store.rowCounts() { metrics.rows(counts) }
            if let backlog = try? await store.outboxBacklog() { metrics.outboxBacklog.record(backlog) }
        } while !(await sleep(for: configuration.pollInterval, unless: draining))
    }

    // MARK: History

    private func evictHistory(keep limit: Int) async {
        repeat {
            do {
                let evicted = try await store.evict(keep: limit, olderThan: nil, stopWhen: { self.draining.hasFired })
                if evicted > 0 { logger.info("evicted \(evicted) finished delegations beyond the history limit of \(limit)") }
            } catch {
                logger.error("evicting history failed: \(error)")
            }
        } while !(await sleep(for: .seconds(60), unless: draining))
    }
}
