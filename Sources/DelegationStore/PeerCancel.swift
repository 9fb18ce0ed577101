internal import SQLiteDatabase

/// A request to a peer to cancel the task it still runs for a delegation that ended without it
/// (`peer_cancels`, written by the `peer_cancels_on_end` trigger of migration 0004).
public struct PeerCancel: Sendable, Equatable {
    public var delegationID: String
    public var remoteTaskID: String
    /// Where the task was followed; nil when it was never known (discovery is asked then).
    public var peerURL: String?
    public var workspaceID: String
    public var traceparent: String
    /// Tries so far, this one included.
    public var attempts: Int

    static let columns = "c.delegation_id, c.remote_task_id, c.peer_url, d.workspace_id, d.traceparent, c.attempts"

    init(row: Row) {
        delegationID = row[0].string ?? ""
        remoteTaskID = row[1].string ?? ""
        peerURL = row[2].string
        workspaceID = row[3].string ?? ""
        traceparent = row[4].string ?? ""
        attempts = row[5].int ?? 0
    }
}
