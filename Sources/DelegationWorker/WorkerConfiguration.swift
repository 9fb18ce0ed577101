import DelegationStore
import Foundation

/// Everything a worker process is told, validated before it does any work.
public struct WorkerConfiguration: Sendable {
    public var databasePath: String = StoreConfiguration.defaultPath
    public var durability: StoreConfiguration.Durability = .full
    public var platformURL: String = "http://host.docker.internal:8080"
    public var workspaceID: String = ""
    /// Sent as `Authorization: Bearer …`; never logged.
    public var token: String?
    /// Delivery attempts per delegation (a row's own max_attempts wins when set).
    public var retryAttempts: Int = 3
    /// The first retry waits this long; each further one twice as long (with ±20 % jitter).
    public var retryDelay: Duration = .seconds(5)
    /// The longest a retry waits, whatever the backoff or a Retry-After says.
    public var maximumRetryDelay: Duration = .seconds(3600)
    /// Per HTTP exchange with a peer, head and body. Sends ask the peer not to hold the request until the
    /// task is done; a peer that ignores that and outlives this timeout gets the task again on the retry.
    public var requestTimeout: Duration = .seconds(300)
    /// How long a peer's task is followed, from the moment the peer accepted it, before the delegation
    /// fails and the peer is asked to cancel it.
    public var taskDeadline: Duration = .seconds(24 * 3600)
    /// How long a delegation may stay queued at the platform with no outcome on its list before it fails
    /// (the list shows only the newest 50 rows, so an outcome can fall off it unseen).
    public var queuedTimeout: Duration = .seconds(3600)
    /// Take-overs of an expired lease in a row, with no outcome, after which a delegation fails as a
    /// poison row (its holders keep dying while processing it).
    public var maxTakeovers: Int = 3
    /// Polls in a row that cannot reach the peer after which discovery is asked again.
    public var rediscoverAfterPollFailures: Int = 3
    /// Tries to ask a peer to cancel a task before giving up.
    public var peerCancelAttempts: Int = 8
    /// Refresh the gauges that need a query (rows per status, outbox backlog) at the poll interval:
    /// on when metrics are exported (`--metrics-port`), off otherwise (no query for nobody).
    public var refreshesGauges = false
    /// Per HTTP request to the platform.
    public var platformTimeout: Duration = .seconds(30)
    /// Delegations in flight at once.
    public var concurrency: Int = 64
    /// How long a claim holds a row; renewed every third of it while the worker is alive.
    public var lease: Duration = .seconds(30)
    /// How often queued rows (the platform's list) and working peer tasks are checked.
    public var pollInterval: Duration = .seconds(5)
    /// How often an idle worker looks for due rows.
    public var claimInterval: Duration = .milliseconds(200)
    public var workerID: String = WorkerConfiguration.defaultWorkerID()
    /// Keep at most this many finished delegations (oldest evicted first); nil keeps all.
    public var historyLimit: Int?
    /// Exit 0 once nothing is pending, in progress, queued or waiting to be mirrored.
    public var exitWhenIdle = false
    /// On SIGTERM, how long in-flight requests may finish before their leases are released.
    public var shutdownGrace: Duration = .seconds(10)
    /// Results longer than this (UTF-8 bytes) are cut, with a note saying how much was dropped.
    public var maximumResultBytes = 1 << 20
    /// Answers larger than this are refused as a whole.
    public var maximumAnswerBytes = 16 << 20

    public init() {}

    /// `host:pid:suffix`, the suffix random per start: containers that share a hostname and all run as
    /// PID 1 would otherwise share an id, and one's shutdown would release the other's live leases.
    public static func defaultWorkerID() -> String {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):"
            + String(repeating: "0", count: 8 - suffix.count) + suffix
    }

    /// The longest any configured duration may be: longer ones are refused (naming the option), so no
    /// later arithmetic on them can overflow.
    public static let longestDuration: Duration = .seconds(10 * 365 * 86_400)

    /// Every problem at once, so a misconfigured deployment is fixed in one go. Empty when valid.
    public func problems() -> [String] {
        var problems: [String] = []
        if let url = URL(string: platformURL), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
            url.host?.isEmpty == false
        {
        } else {
            problems.append("--platform-url (PLATFORM_URL) must be an http or https URL, not '\(platformURL)'")
        }
        if workspaceID.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append("--workspace-id (WORKSPACE_ID) is required: the worker acts for one workspace")
        }
        if retryAttempts < 1 { problems.append("--retry-attempts must be at least 1, not \(retryAttempts)") }
        if retryDelay < .zero { problems.append("--retry-delay must not be negative") }
        if requestTimeout <= .zero { problems.append("--timeout must be positive") }
        if !(1...100_000).contains(concurrency) { problems.append("--concurrency must be between 1 and 100000, not \(concurrency)") }
        if lease < .seconds(1) { problems.append("--lease must be at least 1 second") }
        if pollInterval <= .zero { problems.append("--poll-interval must be positive") }
        if let historyLimit, historyLimit < 0 { problems.append("--history-limit must not be negative, not \(historyLimit)") }
        if workerID.isEmpty { problems.append("--worker-id must not be empty") }
        if shutdownGrace < .zero { problems.append("--shutdown-grace must not be negative") }
        if taskDeadline <= .zero { problems.append("--task-deadline must be positive") }
        if queuedTimeout <= .zero { problems.append("--queued-timeout (DELEGATION_QUEUED_TIMEOUT) must be positive") }
        if maxTakeovers < 1 { problems.append("--max-takeovers must be at least 1, not \(maxTakeovers)") }
        if maximumRetryDelay < .zero { problems.append("the maximum retry delay must not be negative") }
        if rediscoverAfterPollFailures < 1 { problems.append("rediscovery needs at least 1 failed poll, not \(rediscoverAfterPollFailures)") }
        if peerCancelAttempts < 1 { problems.append("peer cancels need at least 1 attempt, not \(peerCancelAttempts)") }
        if maximumAnswerBytes < 1 || maximumResultBytes < 1 { problems.append("answer and result limits must be positive") }
        let durations: [(String, Duration)] = [
            ("--retry-delay", retryDelay), ("--timeout", requestTimeout), ("--lease", lease),
            ("--poll-interval", pollInterval), ("--shutdown-grace", shutdownGrace), ("--task-deadline", taskDeadline),
            ("--queued-timeout", queuedTimeout),
        ]
        for (option, duration) in durations where duration > Self.longestDuration {
            problems.append("\(option) must be at most \(Self.longestDuration) (ten years)")
        }
        return problems
    }

    /// The wait before the retry after `attempt` (1-based) failed: exponential from `retryDelay`
    /// with jitter, or the server's `Retry-After` when it gave one; never above `maximumRetryDelay`.
    /// A server's Retry-After is a floor: it gets up to 20 % more (so a crowd told "30" does not return
    /// in the same millisecond), clamped to `0…maximumRetryDelay` like everything else.
    public func backoff(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        let ceiling = min(maximumRetryDelay, Self.longestDuration)
        if let retryAfter {
            let floor = min(max(retryAfter, .zero), ceiling)
            return min(floor * Double.random(in: 1.0...1.2), ceiling)
        }
        let exponent = min(max(attempt - 1, 0), 20)
        let base = min(retryDelay, ceiling) * (1 << exponent)
        return min(base * Double.random(in: 0.8...1.2), ceiling)
    }

    /// The wait before polling a followed task again after `failures` polls in a row could not reach its peer.
    func pollDelay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return pollInterval }
        return min(pollInterval * (1 << min(failures, 6)), max(pollInterval, .seconds(300)))
    }
}
