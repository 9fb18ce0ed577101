import DelegationStore
import DelegationTool
import Foundation
import Logging

/// Carries one claimed delegation one step further, then lets go of it.
///
/// A fresh row: discover the peer, send A2A (in the generation the peer speaks, asking it not to hold
/// the request), and write what the answer means — an outcome, a retry, the platform's queue, or a
/// hand-over to the peer's running task. A followed row (the peer runs its task): one poll with
/// tasks/get, then the outcome or a parked row waiting for its next poll. Nothing is kept in memory
/// between two claims, so a long task holds no connection, no task and no concurrency slot.
///
/// Never throws: every failure ends as a status, or — when even that cannot be written — as a row whose
/// lease expires and another worker takes over. An answer the peer gave is written until it commits
/// (a locked database is waited out while the lease is renewed); only a lost lease drops it.
struct DelegationProcessor: Sendable {
    let store: DelegationStore
    let configuration: WorkerConfiguration
    let platform: PlatformClient
    let transport: HTTPTransport
    let peers: PeerDirectory
    let inFlight: InFlightRegistry
    let metrics: WorkerMetrics
    let logger: Logger

    private var worker: String { configuration.workerID }

    func process(_ delegation: Delegation) async {
        var logger = logger
        logger[metadataKey: "delegation_id"] = "\(delegation.id)"
        logger[metadataKey: "attempt"] = "\(delegation.attempts)"
        logger[metadataKey: "traceparent"] = "\(delegation.traceparent)"
        do {
            if delegation.takeovers >= configuration.maxTakeovers {
                try await endPoisonRow(delegation, logger: logger)
            } else if let taskID = delegation.remoteTaskID {
                try await poll(delegation, taskID: taskID, logger: logger)
            } else {
                try await send(delegation, logger: logger)
            }
        } catch is CancellationError {
            logger.debug("work stopped (shutdown, or the lease went elsewhere)")
        } catch let error as DelegationStoreError {
            if error.code == .leaseLost {
                if error.currentStatus == .cancelled { metrics.outcome(.cancelled) }
                logger.warning(
                    "lease lost; the outcome was not written",
                    metadata: ["status": "\(error.currentStatus?.rawValue ?? "?")", "owner": "\(error.currentOwner ?? "none")"])
            } else {
                logger.error("could not write the outcome; the row is retried when its lease expires: \(error)")
            }
        } catch {
            logger.error("unexpected error; the row is retried when its lease expires: \(error)")
        }
    }

    // MARK: Poison rows

    /// The lease was taken over `takeovers` times in a row and no holder ever wrote an outcome: whatever
    /// processing it does kills its worker. It fails here, before anything is sent or asked again.
    private func endPoisonRow(_ delegation: Delegation, logger: Logger) async throws {
        let reason = """
            taken over \(delegation.takeovers) times without an outcome: every worker holding it stopped while \
            processing it (killed, or crashed); not tried again (--max-takeovers \(configuration.maxTakeovers)). \
            `delegation-admin retry` sends it again
            """
        try await write(delegation) {
            try await store.fail(id: delegation.id, worker: worker, error: reason, steps: [.init("poison", reason)])
        }
        metrics.outcome(.failed)
        logger.error("failed as a poison row: \(reason)")
    }

    // MARK: Sending

    private func send(_ delegation: Delegation, logger: Logger) async throws {
        let maxAttempts = delegation.maxAttempts ?? configuration.retryAttempts
        if delegation.attempts > maxAttempts {
            // Earlier attempts were cut short (a worker died holding the row) and none is left.
            try await finish(delegation, .failed(
                delegation.error ?? "gave up after \(maxAttempts) attempts (the last ones were interrupted)"), steps: [], logger: logger)
            return
        }
        // What `enqueue` refuses, written by raw SQL (up to SQLite's 1 GB): its request body, up to six times
        // the text once escaped, would not fit the HTTP client's 4 GiB buffer, or memory. Deterministic:
        // every attempt would carry the same text, so it fails now, with the reason.
        let taskBytes = delegation.task.utf8.count
        if taskBytes > TextLimit.task {
            try await finish(delegation, .failed(
                "the task is \(taskBytes) bytes, more than the \(TextLimit.task) a request to a peer carries; it was not sent"),
                steps: [], logger: logger)
            return
        }

        var steps: [DelegationStep] = []
        let url: String
        switch try await platform.discover(delegation.workspaceID) {
        case .failed(let error):
            try await finish(delegation, .failed(error), steps: steps, logger: logger)
            return
        case .retry(let error, let retryAfter):
            try await finish(delegation, .retry(error, retryAfter: retryAfter), steps: steps, logger: logger)
            return
        case .found(let found):
            url = found
            steps.append(.init("discovery", "peer at \(found)"))
        }

        var version = await peers.version(for: url, timeout: min(configuration.requestTimeout, .seconds(10)))
        let learned = peers.knows(url)
        var outcome = try await exchange(
            url: url, request: A2AProtocol.sendMessage(delegation, sourceWorkspaceID: configuration.workspaceID, version: version),
            version: version)
        if isTransient(outcome) { platform.forget(delegation.workspaceID) }  // ask discovery afresh next time
        if case .wrongGeneration(let reason) = outcome {
            steps.append(.init("a2a.generation", "A2A \(version.rawValue) refused (\(reason)); asking in \(version.other.rawValue)"))
            version = version.other
            outcome = try await exchange(
                url: url, request: A2AProtocol.sendMessage(delegation, sourceWorkspaceID: configuration.workspaceID, version: version),
                version: version)
            if case .wrongGeneration(let again) = outcome {
                outcome = .failed("the peer speaks neither A2A 0.3 nor 1.0 (\(again))")
            } else {
                await peers.remember(version, for: url)
            }
        } else if !learned, !isTransient(outcome) {
            await peers.remember(version, for: url)
        }
        steps.append(.init("a2a.answer", "A2A \(version.rawValue): \(summary(of: outcome))"))

        if case .working(let taskID, let state) = outcome {
            let deadline = configuration.taskDeadline
            steps.append(.init(
                "a2a.handover",
                "the peer runs it as task \(taskID) (\(state)); polled every \(configuration.pollInterval) until it ends, for at most \(deadline)"))
            do {
                try await write(delegation) {
                    try await store.handOver(
                        id: delegation.id, worker: worker, remoteTaskID: taskID, peerURL: url, state: state,
                        nextPoll: configuration.pollInterval, steps: steps)
                }
            } catch let error as DelegationStoreError
                where error.code == .leaseLost && [.cancelled, .failed].contains(error.currentStatus)
            {
                // Cancelled (or failed) while the send was in flight: the task the peer just started is not wanted.
                try await persistently("a peer cancel", logger: logger) {
                    try await store.requestPeerCancel(id: delegation.id, remoteTaskID: taskID, peerURL: url)
                }
                throw error
            }
            logger.info("handed over to the peer's task \(taskID); polled until it ends")
            return
        }
        try await finish(delegation, outcome, steps: steps, logger: logger)
    }

    /// One HTTP exchange with the peer, timed (`delegation_a2a_request_duration_seconds`). Network failures
    /// come back as `.retry`.
    private func exchange(url: String, request: A2AProtocol.Request, version: A2AVersion) async throws -> A2AOutcome {
        let started = ContinuousClock.now
        let outcome: A2AOutcome
        do {
            let answer = try await transport.send(
                .POST, url, headers: request.headers, body: request.body, timeout: configuration.requestTimeout)
            outcome = A2AProtocol.classify(answer)
        } catch let error as TransportError {
            outcome = .retry(error.description, retryAfter: nil)
        } catch let error as OversizedAnswer {
            outcome = .failed("the peer's \(error.description)")
        }
        WorkerMetrics.a2aRequest(generation: version, outcome: outcome.metricName, duration: ContinuousClock.now - started)
        return outcome
    }

    /// Writes the outcome of this attempt. A retryable outcome schedules the next attempt, or fails
    /// the delegation with the last error once its attempts are spent.
    private func finish(
        _ delegation: Delegation, _ outcome: A2AOutcome, steps: [DelegationStep], logger: Logger
    ) async throws {
        let maxAttempts = delegation.maxAttempts ?? configuration.retryAttempts
        switch outcome {
        case .completed(let text):
            let state = delegation.remoteTaskID == nil ? nil : "completed"
            try await write(delegation) {
                try await store.complete(id: delegation.id, worker: worker, result: capped(text), remoteState: state, steps: steps)
            }
            metrics.outcome(.completed)
            logger.info("completed")
        case .failed(let error, let peerState):
            try await write(delegation) {
                try await store.fail(id: delegation.id, worker: worker, error: error, remoteState: peerState, steps: steps)
            }
            metrics.outcome(.failed)
            logger.warning("failed: \(TextLimit.capped(error, maximumBytes: 1000))")
        case .queued(let detail):
            try await write(delegation) {
                try await store.markQueued(id: delegation.id, worker: worker, detail: detail, steps: steps)
            }
            logger.info("queued at the platform; its list will resolve it")
        case .retry(let error, let retryAfter):
            if delegation.attempts >= maxAttempts {
                try await write(delegation) {
                    try await store.fail(
                        id: delegation.id, worker: worker, error: error,
                        steps: steps + [.init("retry", "attempt \(delegation.attempts) of \(maxAttempts) failed; none left")])
                }
                metrics.outcome(.failed)
                logger.warning("failed after \(delegation.attempts) attempts: \(TextLimit.capped(error, maximumBytes: 1000))")
            } else {
                let delay = configuration.backoff(afterAttempt: delegation.attempts, retryAfter: retryAfter)
                try await write(delegation) {
                    try await store.scheduleRetry(
                        id: delegation.id, worker: worker, error: error, after: delay,
                        steps: steps + [.init("retry", "attempt \(delegation.attempts) of \(maxAttempts) failed: \(error); next in \(delay)")])
                }
                metrics.retries.increment()
                logger.info("retry in \(delay): \(TextLimit.capped(error, maximumBytes: 1000))")
            }
        case .working, .wrongGeneration:
            try await write(delegation) {
                try await store.fail(id: delegation.id, worker: worker, error: "unexpected answer: \(summary(of: outcome))", steps: steps)
            }
            metrics.outcome(.failed)
        }
    }

    // MARK: Following a peer's task

    /// One poll of the peer's task: the outcome when it ended, else the row parked until the next poll.
    /// Never spends an attempt. Bounded by `taskDeadline` from the moment the peer accepted the task;
    /// polls that cannot reach the peer back off, and after a few in a row discovery is asked again.
    private func poll(_ delegation: Delegation, taskID: String, logger: Logger) async throws {
        let deadline = configuration.taskDeadline
        // From the peer's acceptance; a row without one (or an unreadable one) counts from its creation.
        if let accepted = delegation.acceptedAt.flatMap(Timestamp.date(from:)) ?? Timestamp.date(from: delegation.createdAt),
            Date().timeIntervalSince(accepted) > Double(deadline.components.seconds)
        {
            let reason = "the peer's task \(taskID) did not end within the task deadline (\(deadline), --task-deadline); the peer is asked to cancel it"
            try await write(delegation) {
                try await store.fail(id: delegation.id, worker: worker, error: reason, steps: [.init("a2a.deadline", reason)])
            }
            metrics.outcome(.failed)
            logger.warning("\(reason)")
            return
        }

        var steps: [DelegationStep] = []
        var url = delegation.peerURL
        var moved: String?
        if url == nil || (delegation.pollFailures > 0 && delegation.pollFailures % configuration.rediscoverAfterPollFailures == 0) {
            platform.forget(delegation.workspaceID)
            switch try await platform.discover(delegation.workspaceID) {
            case .found(let found):
                if found != url {
                    steps.append(.init("a2a.rediscover", "discovery now says the peer is at \(found)" + (url.map { " (was \($0))" } ?? "")))
                    moved = found
                }
                url = found
            case .failed(let error):
                try await finish(delegation, .failed(error), steps: steps, logger: logger)
                return
            case .retry(let error, _):
                if url == nil {
                    try await park(delegation, after: .unreachable(error: error), steps: steps)
                    return
                }
            }
        }
        guard let url else {
            // Unreachable (every branch above that leaves url nil returned), but never leave a row held.
            try await park(delegation, after: .unreachable(error: "the peer's address is not known"), steps: steps)
            return
        }

        var version = await peers.version(for: url, timeout: min(configuration.requestTimeout, .seconds(10)))
        var outcome = try await exchange(
            url: url, request: A2AProtocol.getTask(taskID, traceparent: delegation.traceparent, version: version), version: version)
        if case .wrongGeneration = outcome {
            version = version.other
            outcome = try await exchange(
                url: url, request: A2AProtocol.getTask(taskID, traceparent: delegation.traceparent, version: version), version: version)
            if case .wrongGeneration = outcome {} else { await peers.remember(version, for: url) }
        }

        switch outcome {
        case .completed, .failed:
            var ended = delegation
            ended.remoteTaskID = taskID
            try await finish(ended, outcome, steps: steps + [.init("a2a.answer", "peer task \(taskID): \(summary(of: outcome))")], logger: logger)
        case .working(_, let state):
            if state != delegation.remoteState {
                steps.append(.init("a2a.state", "peer task \(taskID): \(delegation.remoteState ?? "?") → \(state)"))
            }
            try await park(delegation, after: .answered(state: state), peerURL: moved, steps: steps)
        case .retry(let error, _), .queued(let error), .wrongGeneration(let error):
            logger.info("could not check the peer's task \(taskID): \(TextLimit.capped(error, maximumBytes: 1000))")
            try await park(delegation, after: .unreachable(error: "could not check the peer's task \(taskID): \(error)"), peerURL: moved, steps: steps)
        }
    }

    private func park(
        _ delegation: Delegation, after poll: PollOutcome, peerURL: String? = nil, steps: [DelegationStep]
    ) async throws {
        // Saturating: the count is read from the database, where raw SQL may have put any value.
        let failures = if case .unreachable = poll { min(delegation.pollFailures, 1 << 20) + 1 } else { 0 }
        try await write(delegation) {
            try await store.park(
                id: delegation.id, worker: worker, after: poll, peerURL: peerURL,
                nextPoll: configuration.pollDelay(afterFailures: failures), steps: steps)
        }
    }

    // MARK: Writing outcomes

    /// Runs `body` (one store write) until it commits. A locked database (an operator's open transaction,
    /// a VACUUM, a backup), a full disk or an I/O error are waited out with backoff while the lease
    /// renewer keeps the row; only a lost lease, or this claim being revoked, ends the wait — a peer's
    /// answer is never dropped for a transient reason.
    private func write(_ delegation: Delegation, _ body: () async throws -> Void) async throws {
        var logger = logger
        logger[metadataKey: "delegation_id"] = "\(delegation.id)"
        try await persistently("the outcome (the lease is kept meanwhile)", logger: logger, body)
        inFlight.settle(delegation.id)
    }

    // MARK: Helpers

    private func isTransient(_ outcome: A2AOutcome) -> Bool {
        if case .retry = outcome { return true }
        return false
    }

    private func summary(of outcome: A2AOutcome) -> String {
        switch outcome {
        case .completed(let text): "completed with \(text.count) characters"
        case .failed(let error, _): "failed: \(error)"
        case .working(let taskID, let state): "task \(taskID) \(state)"
        case .queued(let detail): detail
        case .retry(let error, let retryAfter): "retryable: \(error)" + (retryAfter.map { " (Retry-After \($0))" } ?? "")
        case .wrongGeneration(let reason): reason
        }
    }

    /// Results are stored up to `maximumResultBytes`; longer ones are cut with a note of what was dropped.
    func capped(_ text: String) -> String {
        TextLimit.capped(text, maximumBytes: configuration.maximumResultBytes)
    }
}
