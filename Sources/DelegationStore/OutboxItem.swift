internal import SQLiteDatabase

/// One mirror call waiting in `platform_outbox` (see `migrations/0002_platform_outbox.sql`).
public struct OutboxItem: Sendable, Equatable {
    public enum Kind: String, Sendable { case record, update, notify }

    public var id: Int
    public var delegationID: String
    public var kind: Kind
    /// The JSON body to POST, exactly as the trigger wrote it.
    public var body: String
    /// Deliveries tried, this one included.
    public var attempts: Int

    static let columns = "id, delegation_id, kind, body, attempts"

    init(row: Row) {
        id = row[0].int ?? 0
        delegationID = row[1].string ?? ""
        kind = Kind(rawValue: row[2].string ?? "") ?? .notify
        body = row[3].string ?? "{}"
        attempts = row[4].int ?? 0
    }
}
