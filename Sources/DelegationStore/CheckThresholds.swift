/// The ages past which `check` calls something wrong (schema timestamps: everything before them is old).
public struct CheckThresholds: Sendable, Equatable {
    /// A lease expired, or a followed task's poll due, before this: no worker is running.
    public var staleBefore: String
    /// A mirror call undelivered since before this is stuck.
    public var stuckBefore: String
    /// A row queued at the platform since before this is over half its queued deadline.
    public var queuedBefore: String

    public init(staleBefore: String, stuckBefore: String, queuedBefore: String) {
        self.staleBefore = staleBefore
        self.stuckBefore = stuckBefore
        self.queuedBefore = queuedBefore
    }
}
