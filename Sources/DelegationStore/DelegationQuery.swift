/// Which delegations `list`, `export` and `retry --status` mean: every condition optional, all of them
/// bound as parameters (the SQL text is fixed).
public struct DelegationQuery: Sendable, Equatable {
    public var statuses: [DelegationStatus] = []
    /// The target workspace (compared trimmed, as `enqueue` stores it).
    public var workspaceID: String?
    /// Created at or after / before these schema timestamps.
    public var createdSince: String?
    public var createdBefore: String?
    /// Finished at or after this timestamp.
    public var finishedSince: String?
    /// Task, result or error contains this text (case-insensitive for ASCII; `%` and `_` are literal).
    /// Three characters or more go through the trigram index, and the rows then come in enqueue order
    /// rather than by `created_at` (the same unless the clock stepped back).
    public var search: String?
    public var newestFirst = true
    /// At most this many; nil for all.
    public var limit: Int?

    public init(
        statuses: [DelegationStatus] = [], workspaceID: String? = nil, createdSince: String? = nil,
        createdBefore: String? = nil, finishedSince: String? = nil, search: String? = nil, newestFirst: Bool = true,
        limit: Int? = nil
    ) {
        self.statuses = statuses
        self.workspaceID = workspaceID
        self.createdSince = createdSince
        self.createdBefore = createdBefore
        self.finishedSince = finishedSince
        self.search = search
        self.newestFirst = newestFirst
        self.limit = limit
    }
}
