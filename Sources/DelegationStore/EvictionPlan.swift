/// What an eviction would remove, before it does (`evict --dry-run`, and the progress denominator).
public struct EvictionPlan: Sendable, Equatable {
    /// Finished rows past the cutoff whose mirror is delivered: these go.
    public var evictable: Int
    /// Finished rows past the cutoff kept because their platform mirror is still undelivered.
    public var heldBack: Int
}
