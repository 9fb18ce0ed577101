import DelegationStore
import Foundation
import Logging

/// Carries one claimed delegation to its next status: discover the peer, send A2A (in the generation
/// the peer speaks), read the answer, and write the outcome in one transaction with its steps.
///
/// Never throws: every failure ends as a status (failed, or pending with a retry time), or — when
/// even that cannot be written — as a row whose lease expires and another worker takes over.
struct DelegationProcessor: Sendable {
    let store: DelegationStore
    let configuration: WorkerConfiguration
    let platform: PlatformClient
    let transport: HTTPTransport
    let peers: PeerDirectory
    let inFlight: InFlightRegistry
    let logger: Logger

    private var worker: String { configuration.workerID }

    func process(_ delegation: Delegation) async {
        var logger = logger
        logger[metadataKey: "delegation_id"] = "\(delegation.id)"
        logger[metadataKey: "attempt"] = "\(delegation.attempts)"
        do {
            try await run(delegation, logger: logger)
        } catch is CancellationError {
            logger.debug("work stopped (shutdown, or the lease went elsewhere)")
        } catch let error as DelegationStoreError {
            if case .leaseLost(_, _, let status, let owner) = error {
                logger.warning(
                    "lease lost; the outcome was not written",
                    metadata: ["status": "\(status.rawValue)", "owner": "\(owner ?? "none")"])
            } else {
                logger.error("could not write the outcome; the row is retried when its lease expires: \(error)")
            }
        } catch {
            logger.error("unexpected error; the row is retried when its lease expires: \(error)")
        }
    }

    private func run(_ delegation: Delegation, logger: Logger) async throws {
        let maxAttempts = delegation.maxAttempts ?? configuration.retryAttempts
        if let remoteTaskID = delegation.remoteTaskID {
            try await resumeFollowing(delegation, remoteTaskID: remoteTaskID, logger: logger)
            return
        }
        if delegation.attempts > maxAttempts {
            // Earlier attempts were cut short (a worker died holding the row) and none is left.
            try await finish(delegation, .failed(
                delegation.error ?? "gave up after \(maxAttempts) attempts (the last ones were interrupted)"), steps: [], logger: logger)
            return
        }

        var steps: [Transitions.Step] = []
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

        var version = peers.version(for: url) ?? .v03
        var outcome = try await send(delegation, to: url, version: version)
        if isTransient(outcome) { platform.forget(delegation.workspaceID) }  // ask discovery afresh next time
        if case .wrongGeneration(let reason) = outcome {
            steps.append(.init("a2a.generation", "A2A \(version.rawValue) refused (\(reason)); asking in \(version.other.rawValue)"))
            version = version.other
            outcome = try await send(delegation, to: url, version: version)
            if case .wrongGeneration(let again) = outcome {
                outcome = .failed("the peer speaks neither A2A 0.3 nor 1.0 (\(again))")
            } else {
                await peers.remember(version, for: url)
            }
        } else if peers.version(for: url) == nil, !isTransient(outcome) {
            await peers.remember(version, for: url)
        }
        steps.append(.init("a2a.answer", "A2A \(version.rawValue): \(summary(of: outcome))"))

        if case .working(let taskID, _) = outcome {
            try await store.followRemoteTask(id: delegation.id, worker: worker, remoteTaskID: taskID, steps: steps)
            try await follow(delegation, url: url, taskID: taskID, version: version, logger: logger)
            return
        }
        try await finish(delegation, outcome, steps: steps, logger: logger)
    }

    /// Sends `message/send` or `SendMessage` once. Network failures come back as `.retry`.
    private func send(_ delegation: Delegation, to url: String, version: A2AVersion) async throws -> A2AOutcome {
        let request = A2AProtocol.sendMessage(delegation, sourceWorkspaceID: configuration.workspaceID, version: version)
        return try await exchange(url: url, request: request)
    }

    private func exchange(url: String, request: A2AProtocol.Request) async throws -> A2AOutcome {
        do {
            let answer = try await transport.send(
                .POST, url, headers: request.headers, body: request.body, timeout: configuration.requestTimeout)
            return A2AProtocol.classify(answer)
        } catch let error as TransportError {
            return .retry(error.description, retryAfter: nil)
        } catch let error as OversizedAnswer {
            return .failed("the peer's \(error.description)")
        }
    }

    /// Writes the outcome of this attempt. A retryable outcome schedules the next attempt, or fails
    /// the delegation with the last error once its attempts are spent.
    private func finish(
        _ delegation: Delegation, _ outcome: A2AOutcome, steps: [Transitions.Step], logger: Logger
    ) async throws {
        let maxAttempts = delegation.maxAttempts ?? configuration.retryAttempts
        switch outcome {
        case .completed(let text):
            try await store.complete(id: delegation.id, worker: worker, result: capped(text), steps: steps)
            logger.info("completed")
        case .failed(let error):
            try await store.fail(id: delegation.id, worker: worker, error: error, steps: steps)
            logger.warning("failed: \(error)")
        case .queued(let detail):
            try await store.markQueued(id: delegation.id, worker: worker, detail: detail, steps: steps)
            logger.info("queued at the platform; its list will resolve it")
        case .retry(let error, let retryAfter):
            if delegation.attempts >= maxAttempts {
                try await store.fail(
                    id: delegation.id, worker: worker, error: error,
                    steps: steps + [.init("retry", "attempt \(delegation.attempts) of \(maxAttempts) failed; none left")])
                logger.warning("failed after \(delegation.attempts) attempts: \(error)")
            } else {
                let delay = configuration.backoff(afterAttempt: delegation.attempts, retryAfter: retryAfter)
                try await store.scheduleRetry(
                    id: delegation.id, worker: worker, error: error, after: delay,
                    steps: steps + [.init("retry", "attempt \(delegation.attempts) of \(maxAttempts) failed: \(error); next in \(delay)")])
                logger.info("retry in \(delay): \(error)")
            }
        case .working, .wrongGeneration:
            try await store.fail(id: delegation.id, worker: worker, error: "unexpected answer: \(summary(of: outcome))", steps: steps)
        }
        inFlight.settle(delegation.id)
    }

    // MARK: Following a peer's task

    /// After a restart or a hand-over: find the peer again, then keep following. Never spends attempts.
    private func resumeFollowing(_ delegation: Delegation, remoteTaskID: String, logger: Logger) async throws {
        switch try await platform.discover(delegation.workspaceID) {
        case .found(let url):
            try await follow(delegation, url: url, taskID: remoteTaskID, version: peers.version(for: url) ?? .v03, logger: logger)
        case .failed(let error):
            try await finish(delegation, .failed(error), steps: [], logger: logger)
        case .retry(let error, _):
            // Checking again later is not a failed attempt: back to pending, attempts untouched.
            try await store.scheduleRetry(
                id: delegation.id, worker: worker, error: error, after: configuration.pollInterval,
                steps: [.init("a2a.follow", "cannot reach the platform to find the peer again: \(error)")])
            inFlight.settle(delegation.id)
        }
    }

    /// Polls `tasks/get` / `GetTask` until the peer's task ends. Failures to ask back off on their
    /// own counter: "check again later" neither spends attempts nor inflates real retries.
    private func follow(
        _ delegation: Delegation, url: String, taskID: String, version: A2AVersion, logger: Logger
    ) async throws {
        var version = version
        var failures = 0
        while true {
            let wait = failures == 0
                ? configuration.pollInterval : min(configuration.pollInterval * (1 << min(failures, 6)), .seconds(300))
            try await Task.sleep(for: wait)
            let outcome = try await exchange(
                url: url, request: A2AProtocol.getTask(taskID, traceparent: delegation.traceparent, version: version))
            switch outcome {
            case .completed, .failed:
                try await finish(delegation, outcome, steps: [.init("a2a.answer", "peer task \(taskID): \(summary(of: outcome))")], logger: logger)
                return
            case .working:
                failures = 0
            case .wrongGeneration:
                version = version.other
                failures += 1
            case .retry(let error, _), .queued(let error):
                failures += 1
                logger.info("could not check the peer's task \(taskID): \(error)")
            }
        }
    }

    // MARK: Helpers

    private func isTransient(_ outcome: A2AOutcome) -> Bool {
        if case .retry = outcome { return true }
        return false
    }

    private func summary(of outcome: A2AOutcome) -> String {
        switch outcome {
        case .completed(let text): "completed with \(text.count) characters"
        case .failed(let error): "failed: \(error)"
        case .working(let taskID, let state): "task \(taskID) \(state)"
        case .queued(let detail): detail
        case .retry(let error, let retryAfter): "retryable: \(error)" + (retryAfter.map { " (Retry-After \($0))" } ?? "")
        case .wrongGeneration(let reason): reason
        }
    }

    /// Results are stored up to `maximumResultBytes`; longer ones are cut with a note of what was dropped.
    func capped(_ text: String) -> String {
        let total = text.utf8.count
        guard total > configuration.maximumResultBytes else { return text }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            let size = String(scalar).utf8.count
            if bytes + size > configuration.maximumResultBytes { break }
            kept.append(scalar)
            bytes += size
        }
        return String(kept) + "\n[truncated: \(bytes) of \(total) bytes kept]"
    }
}
