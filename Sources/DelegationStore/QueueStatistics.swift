/// Queue health, as `delegation-admin stats` reports it. Every figure comes from an index: none reads the
/// whole history.
public struct QueueStatistics: Sendable, Equatable {
    /// Rows per status (every status present, zero or not).
    public var counts: [DelegationStatus: Int] = [:]
    public var oldestPendingCreatedAt: String?
    public var leasesHeld = 0
    public var leasesExpired = 0
    /// Followed tasks between two polls (in progress, held by nobody).
    public var followedTasks = 0
    /// Rows created since `windowStart`, by attempts.
    public var attempts: [Int: Int] = [:]
    public var windowStart: String
    public var completedInWindow = 0
    /// Seconds from creation to completion of the window's completions: keys `p50`, `p95`, `p99`
    /// (absent when nothing completed).
    public var timeToComplete: [String: Double] = [:]
    public var outboxPending = 0
    public var outboxDead = 0
    public var outboxOldestPendingCreatedAt: String?
    public var peerCancelsPending = 0

    public var total: Int { counts.values.reduce(0, +) }
    /// The percentiles `timeToComplete` holds, in order.
    public static let percentiles = ["p50", "p95", "p99"]
}
