/// Which events `events` means: every condition optional and bound as a parameter.
public struct EventQuery: Sendable, Equatable {
    /// Only this delegation's events (an unknown id is `notFound`).
    public var delegationID: String?
    /// At or after / before these schema timestamps.
    public var since: String?
    public var until: String?
    /// Only transitions into these statuses.
    public var toStatuses: [DelegationStatus] = []
    /// Only these kinds (`status`, `lease`, `retry`, …).
    public var kinds: [String] = []
    public var newestFirst = true
    public var limit = 100

    public init(
        delegationID: String? = nil, since: String? = nil, until: String? = nil, toStatuses: [DelegationStatus] = [],
        kinds: [String] = [], newestFirst: Bool = true, limit: Int = 100
    ) {
        self.delegationID = delegationID
        self.since = since
        self.until = until
        self.toStatuses = toStatuses
        self.kinds = kinds
        self.newestFirst = newestFirst
        self.limit = limit
    }
}
