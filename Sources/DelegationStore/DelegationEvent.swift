internal import SQLiteDatabase

/// One row of `delegation_events`: a transition (kind `status`), a lease take-over (`lease`),
/// or a step a worker or operator recorded.
public struct DelegationEvent: Sendable, Equatable {
    public var id: Int
    public var delegationID: String
    public var at: String
    public var kind: String
    public var fromStatus: String?
    public var toStatus: String?
    public var attempt: Int
    public var worker: String?
    public var detail: String?

    static let columns = "id, delegation_id, at, kind, from_status, to_status, attempt, worker, detail"

    init(row: Row) {
        id = row[0].int ?? 0
        delegationID = row[1].string ?? ""
        at = row[2].string ?? ""
        kind = row[3].string ?? ""
        fromStatus = row[4].string
        toStatus = row[5].string
        attempt = row[6].int ?? 0
        worker = row[7].string
        detail = row[8].string
    }
}
