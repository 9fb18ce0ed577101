internal import SQLiteDatabase

/// One row of `delegations`, as the store reads it back.
public struct Delegation: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var sourceWorkspaceID: String?
    public var task: String
    public var status: DelegationStatus
    public var result: String?
    public var error: String?
    public var attempts: Int
    public var maxAttempts: Int?
    public var nextRunAt: String
    public var leaseOwner: String?
    public var leaseExpiresAt: String?
    public var messageID: String
    public var traceparent: String
    public var remoteTaskID: String?
    public var createdAt: String
    public var updatedAt: String
    public var finishedAt: String?
    /// Consecutive take-overs of an expired lease with no outcome in between (a poison row grows it).
    public var takeovers: Int
    /// When the peer (a task id to follow) or the platform's queue accepted the task.
    public var acceptedAt: String?
    /// Where the peer's task is followed, and the state it last reported.
    public var peerURL: String?
    public var remoteState: String?
    /// Polls of the peer's task that changed nothing, and the last one's time.
    public var polls: Int
    public var lastPolledAt: String?
    /// Polls in a row that could not reach the peer.
    public var pollFailures: Int

    /// Parked between two polls of its peer's task: in progress, but held by no worker.
    public var isFollowedBetweenPolls: Bool { status == .inProgress && leaseOwner == nil && remoteTaskID != nil }

    /// The column list every query that builds a `Delegation` selects, in this order.
    static let columns = """
        id, workspace_id, source_workspace_id, task, status, result, error, attempts, max_attempts, \
        next_run_at, lease_owner, lease_expires_at, message_id, traceparent, remote_task_id, \
        created_at, updated_at, finished_at, takeovers, accepted_at, peer_url, remote_state, polls, \
        last_polled_at, poll_failures
        """

    /// Reads a row selected with `Delegation.columns`.
    init(row: Row) {
        id = row[0].string ?? ""
        workspaceID = row[1].string ?? ""
        sourceWorkspaceID = row[2].string
        task = row[3].string ?? ""
        status = row[4].string.flatMap(DelegationStatus.init(rawValue:)) ?? .pending
        result = row[5].string
        error = row[6].string
        attempts = row[7].int ?? 0
        maxAttempts = row[8].int
        nextRunAt = row[9].string ?? ""
        leaseOwner = row[10].string
        leaseExpiresAt = row[11].string
        messageID = row[12].string ?? ""
        traceparent = row[13].string ?? ""
        remoteTaskID = row[14].string
        createdAt = row[15].string ?? ""
        updatedAt = row[16].string ?? ""
        finishedAt = row[17].string
        takeovers = row[18].int ?? 0
        acceptedAt = row[19].string
        peerURL = row[20].string
        remoteState = row[21].string
        polls = row[22].int ?? 0
        lastPolledAt = row[23].string
        pollFailures = row[24].int ?? 0
    }
}
