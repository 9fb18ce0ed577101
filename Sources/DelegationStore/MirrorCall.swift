internal import SQLiteDatabase

/// One platform mirror call of a delegation (`platform_outbox`), as `show` presents it.
public struct MirrorCall: Sendable, Equatable {
    public var id: Int
    public var kind: String
    public var createdAt: String
    public var attempts: Int
    public var deliveredAt: String?
    /// Refused by the platform for good; `lastError` holds its answer.
    public var deadAt: String?
    public var lastError: String?
    /// '9999-12-31T23:59:59.999Z' while it waits for an earlier call of the same delegation.
    public var nextAttemptAt: String

    static let columns = "id, kind, created_at, attempts, delivered_at, dead_at, last_error, next_attempt_at"

    init(row: Row) {
        id = row[0].int ?? 0
        kind = row[1].string ?? ""
        createdAt = row[2].string ?? ""
        attempts = row[3].int ?? 0
        deliveredAt = row[4].string
        deadAt = row[5].string
        lastError = row[6].string
        nextAttemptAt = row[7].string ?? ""
    }
}
