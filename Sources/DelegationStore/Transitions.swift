/// Every status change the Swift side makes, each one statement run inside the caller's transaction.
///
/// The database decides what is legal (`migrations/0001_delegations.sql`); this file decides which
/// legal move each situation calls for. Worker writes are guarded by `lease_owner`: a worker whose
/// lease was taken over (or whose row an operator cancelled) changes nothing and gets `leaseLost`.
public enum Transitions {
    /// A step worth keeping in a delegation's history, written in the same transaction as the
    /// transition it led to (so a step is never recorded for a change that did not happen).
    public struct Step: Sendable, Equatable {
        public var kind: String
        public var detail: String
        public init(_ kind: String, _ detail: String) {
            self.kind = kind
            self.detail = detail
        }
    }

    static let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

    /// `strftime`'s modifier for "now plus `duration`", bound as a parameter.
    public static func offset(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return "+\(Double(milliseconds) / 1000) seconds"
    }

    // MARK: Enqueue

    public static func enqueue(
        _ database: Database, workspaceID: String, task: String, sourceWorkspaceID: String?, maxAttempts: Int?
    ) throws -> Delegation {
        let rows = try database.query(
            """
            INSERT INTO delegations (workspace_id, task, source_workspace_id, max_attempts)
            VALUES (?, ?, ?, ?) RETURNING \(Delegation.columns)
            """, workspaceID, task, sourceWorkspaceID, maxAttempts)
        return Delegation(row: rows[0])
    }

    // MARK: Worker

    /// pending (due) → in_progress, and in_progress with an expired lease → in_progress under a new
    /// owner. Oldest due first. Following a peer's task does not count as a new attempt.
    public static func claim(
        _ database: Database, worker: String, limit: Int, lease: Duration, sourceWorkspaceID: String?
    ) throws -> [Delegation] {
        try database.query(claimSQL, worker, offset(lease), limit, sourceWorkspaceID).map(Delegation.init(row:))
    }

    /// ?1 worker, ?2 lease as a strftime modifier, ?3 how many, ?4 the source workspace for rows without one.
    public static let claimSQL = """
        UPDATE delegations
        SET status = 'in_progress',
            lease_owner = ?1,
            lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
            attempts = attempts + (remote_task_id IS NULL),
            source_workspace_id = coalesce(source_workspace_id, ?4),
            updated_at = \(now)
        WHERE id IN (
            SELECT id FROM (
                SELECT id, due FROM (
                    SELECT id, next_run_at AS due FROM delegations
                    WHERE status = 'pending' AND next_run_at <= \(now)
                    ORDER BY next_run_at LIMIT ?3)
                UNION ALL
                SELECT id, due FROM (
                    SELECT id, lease_expires_at AS due FROM delegations
                    WHERE status = 'in_progress' AND lease_expires_at <= \(now)
                    ORDER BY lease_expires_at LIMIT ?3)
                ORDER BY due LIMIT ?3))
        RETURNING \(Delegation.columns)
        """

    /// Extends every lease `worker` holds; returns the ids it still holds (the others were lost).
    public static func renewLeases(
        _ database: Database, worker: String, lease: Duration, ids: [String]? = nil
    ) throws -> Set<String> {
        let only = ids.map { JSONValue.array($0.map(JSONValue.string)).serialized }
        return Set(
            try database.query(
                """
                UPDATE delegations SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
                WHERE status = 'in_progress' AND lease_owner = ?1
                  AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))
                RETURNING id
                """, worker, offset(lease), only
            ).compactMap { $0[0].string })
    }

    public static func complete(
        _ database: Database, id: String, worker: String, result: String, steps: [Step] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: "status = 'completed', result = ?3, error = NULL, updated_at = \(now)", result)
    }

    public static func fail(
        _ database: Database, id: String, worker: String, error: String, steps: [Step] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: "status = 'failed', error = ?3, updated_at = \(now)", error.isEmpty ? "unknown error" : error)
    }

    /// in_progress → pending, due again after `delay`; the attempt stays counted.
    public static func scheduleRetry(
        _ database: Database, id: String, worker: String, error: String, delay: Duration, steps: [Step] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: """
                status = 'pending', error = ?3, next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4),
                lease_owner = NULL, lease_expires_at = NULL, updated_at = \(now)
                """,
            error, offset(delay))
    }

    /// in_progress → queued: the platform accepted it into its own queue; never resent.
    public static func markQueued(
        _ database: Database, id: String, worker: String, detail: String, steps: [Step] = []
    ) throws {
        try record(steps + [Step("queued", detail)], database, id: id, worker: worker)
        try updateHeld(database, id: id, worker: worker, set: "status = 'queued', updated_at = \(now)")
    }

    /// The peer answered with a task still running: remember its id, so that whoever holds the row
    /// next (after a crash too) follows it with tasks/get instead of sending again.
    public static func followRemoteTask(
        _ database: Database, id: String, worker: String, remoteTaskID: String, steps: [Step] = []
    ) throws {
        try updateHeld(database, id: id, worker: worker, set: "remote_task_id = ?3, updated_at = \(now)", remoteTaskID)
        try record(steps + [Step("a2a.follow", "following the peer's task \(remoteTaskID)")], database, id: id, worker: worker)
    }

    /// Graceful shutdown: every row `worker` holds goes back to pending, due now, its attempt uncounted.
    public static func releaseLeases(_ database: Database, worker: String) throws -> [String] {
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT id, 'released', attempts, lease_owner, 'lease released at shutdown; attempt not counted'
            FROM delegations WHERE status = 'in_progress' AND lease_owner = ?1
            """, worker)
        return try database.query(
            """
            UPDATE delegations
            SET status = 'pending', next_run_at = \(now), updated_at = \(now),
                attempts = attempts - (remote_task_id IS NULL AND attempts > 0),
                lease_owner = NULL, lease_expires_at = NULL
            WHERE status = 'in_progress' AND lease_owner = ?1 RETURNING id
            """, worker
        ).compactMap { $0[0].string }
    }

    public enum QueuedOutcome: Sendable, Equatable {
        case completed(result: String)
        case failed(error: String)
    }

    /// queued → completed | failed, when the platform's list shows the outcome. False when the row
    /// is no longer queued (another worker resolved it first, or an operator cancelled it).
    public static func resolveQueued(_ database: Database, id: String, outcome: QueuedOutcome) throws -> Bool {
        switch outcome {
        case .completed(let result):
            try database.execute(
                "UPDATE delegations SET status = 'completed', result = ?2, error = NULL, updated_at = \(now) WHERE id = ?1 AND status = 'queued'",
                id, result) == 1
        case .failed(let error):
            try database.execute(
                "UPDATE delegations SET status = 'failed', error = ?2, updated_at = \(now) WHERE id = ?1 AND status = 'queued'",
                id, error.isEmpty ? "failed at the platform" : error) == 1
        }
    }

    // MARK: Operator

    /// pending | in_progress | queued → cancelled. A worker holding the row loses its lease.
    public static func cancel(_ database: Database, id: String, reason: String) throws {
        let changed = try database.execute(
            "UPDATE delegations SET status = 'cancelled', error = ?2, updated_at = \(now) WHERE id = ?1 AND status <> 'cancelled'",
            id, reason)
        if changed == 0 {
            guard try database.queryFirst("SELECT 1 FROM delegations WHERE id = ?", id) != nil else {
                throw DelegationStoreError.notFound(id: id)
            }
            throw DelegationStoreError.illegalTransition(id: id, message: "already cancelled: cancelled is final")
        }
    }

    /// failed → pending, attempts reset, sent again with the same messageId.
    public static func retry(_ database: Database, id: String, by who: String) throws {
        try recordEvent(database, id: id, kind: "retry", worker: who, detail: "retry requested by \(who)")
        let changed = try database.execute(
            """
            UPDATE delegations SET status = 'pending', attempts = 0, next_run_at = \(now), remote_task_id = NULL,
                updated_at = \(now)
            WHERE id = ?1 AND status = 'failed'
            """, id)
        if changed == 0 {
            guard let row = try database.queryFirst("SELECT status FROM delegations WHERE id = ?", id) else {
                throw DelegationStoreError.notFound(id: id)
            }
            throw DelegationStoreError.notRetryable(
                id: id, status: row[0].string.flatMap(DelegationStatus.init(rawValue:)) ?? .pending)
        }
    }

    // MARK: Events

    public static func recordEvent(
        _ database: Database, id: String, kind: String, worker: String?, detail: String?
    ) throws {
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT id, ?2, attempts, ?3, ?4 FROM delegations WHERE id = ?1
            """, id, kind, worker, detail)
    }

    static func record(_ steps: [Step], _ database: Database, id: String, worker: String) throws {
        for step in steps { try recordEvent(database, id: id, kind: step.kind, worker: worker, detail: step.detail) }
    }

    // MARK: Idleness

    /// Work that still needs a worker: live delegations and undelivered mirror calls.
    public static func remainingWork(_ database: Database) throws -> (live: Int, outbox: Int) {
        let row = try database.queryFirst(
            """
            SELECT (SELECT count(*) FROM delegations WHERE status IN ('pending', 'in_progress', 'queued')),
                   (SELECT count(*) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL)
            """)
        return (row?[0].int ?? 0, row?[1].int ?? 0)
    }

    public static func queuedIDs(_ database: Database) throws -> [String] {
        try database.query("SELECT id FROM delegations WHERE status = 'queued'").compactMap { $0[0].string }
    }

    // MARK: Lease guard

    /// `UPDATE delegations SET <set> WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_progress'`;
    /// `set` uses `?3`, `?4`, … for `arguments`.
    static func updateHeld(
        _ database: Database, id: String, worker: String, set: String, _ arguments: any SQLiteBindable...
    ) throws {
        let changed = try database.execute(
            "UPDATE delegations SET \(set) WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_progress'",
            arguments: [id, worker] + arguments)
        guard changed == 0 else { return }
        guard let row = try database.queryFirst("SELECT status, lease_owner FROM delegations WHERE id = ?", id) else {
            throw DelegationStoreError.notFound(id: id)
        }
        throw DelegationStoreError.leaseLost(
            id: id, worker: worker,
            status: row[0].string.flatMap(DelegationStatus.init(rawValue:)) ?? .pending,
            owner: row[1].string)
    }
}
