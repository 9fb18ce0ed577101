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
    /// Per HTTP request to a peer (an A2A send blocks until the task finishes).
    public var requestTimeout: Duration = .seconds(300)
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

    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

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
        return problems
    }

    /// The wait before the retry after `attempt` (1-based) failed: exponential from `retryDelay`
    /// with jitter, or the server's `Retry-After` when it gave one; never above `maximumRetryDelay`.
    public func backoff(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        if let retryAfter { return min(retryAfter, maximumRetryDelay) }
        let exponent = min(max(attempt - 1, 0), 20)
        let base = retryDelay * (1 << exponent)
        return min(base * Double.random(in: 0.8...1.2), maximumRetryDelay)
    }
}
