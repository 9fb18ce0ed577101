package import SQLiteDatabase

/// Every status change the Swift side makes, each one statement run inside the caller's transaction.
///
/// The database decides what is legal (`migrations/0004_follow_ups_and_faults.sql`, the state machine's
/// current text); this file decides which
/// legal move each situation calls for. Worker writes are guarded by `lease_owner`: a worker whose
/// lease was taken over (or whose row an operator cancelled) changes nothing and gets `leaseLost`.
package enum Transitions {
    package static let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

    /// What every move to a final status sets itself, so the schema's bookkeeping trigger has nothing to
    /// fix (one write of the row per transition, not two).
    static let finishing = "finished_at = \(now), lease_owner = NULL, lease_expires_at = NULL, takeovers = 0, updated_at = \(now)"

    /// `strftime`'s modifier for "now plus `duration`", bound as a parameter. Saturates at ±100 years,
    /// so no duration (a peer's Retry-After, a flag) can overflow the arithmetic or the date.
    package static func offset(_ duration: Duration) -> String {
        let limit: Int64 = 100 * 365 * 86_400
        let (seconds, attoseconds) = duration.components
        let clamped = min(max(seconds, -limit), limit)
        let milliseconds = clamped * 1000 + (seconds > -limit && seconds < limit ? attoseconds / 1_000_000_000_000_000 : 0)
        // "+-5.0 seconds" is not a modifier SQLite knows (strftime would answer NULL): the sign goes first.
        return (milliseconds < 0 ? "-" : "+") + "\(Double(milliseconds.magnitude) / 1000) seconds"
    }

    // MARK: Enqueue

    package static func enqueue(
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

    /// Three sources, oldest due first: pending rows that are due; in_progress rows whose lease expired
    /// (taken over from another worker: `takeovers` grows); followed rows whose next poll is due (claimed
    /// for one poll: neither an attempt nor a take-over). A worker never takes over its own rows: it
    /// still works on them (its renewal may just have been delayed by a locked database).
    package static func claim(
        _ database: Database, worker: String, limit: Int, lease: Duration, sourceWorkspaceID: String?
    ) throws -> [Delegation] {
        try database.query(claimSQL, worker, offset(lease), limit, sourceWorkspaceID).map(Delegation.init(row:))
    }

    /// ?1 worker, ?2 lease as a strftime modifier, ?3 how many, ?4 the source workspace for rows without one.
    ///
    /// Counters saturate (`< Int64.max`): raw SQL may have left one at SQLite's largest integer,
    /// and `+ 1` would turn it into a REAL that the STRICT column refuses — failing every claim that row is
    /// part of, for every worker.
    package static let claimSQL = """
        UPDATE delegations
        SET status = 'in_progress',
            attempts = attempts + (remote_task_id IS NULL AND attempts < \(Int64.max)),
            takeovers = takeovers + (status = 'in_progress' AND lease_owner IS NOT NULL AND takeovers < \(Int64.max)),
            lease_owner = ?1,
            lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
            source_workspace_id = coalesce(source_workspace_id, ?4),
            updated_at = \(now)
        WHERE id IN (
            SELECT id FROM (
                -- Each source through the partial index that holds only its rows (migration 0006), named:
                -- left to itself the planner had walked the status index past every row in flight.
                SELECT id, due FROM (
                    SELECT id, next_run_at AS due FROM delegations INDEXED BY delegations_pending
                    WHERE status = 'pending' AND next_run_at <= \(now)
                    ORDER BY next_run_at LIMIT ?3)
                UNION ALL
                SELECT id, due FROM (
                    SELECT id, lease_expires_at AS due FROM delegations INDEXED BY delegations_leased
                    WHERE lease_owner IS NOT NULL AND lease_expires_at <= \(now) AND lease_owner <> ?1
                      AND status = 'in_progress'
                    ORDER BY lease_expires_at LIMIT ?3)
                UNION ALL
                SELECT id, due FROM (
                    SELECT id, next_run_at AS due FROM delegations INDEXED BY delegations_parked
                    WHERE status = 'in_progress' AND lease_owner IS NULL AND next_run_at <= \(now)
                    ORDER BY next_run_at LIMIT ?3)
                ORDER BY due LIMIT ?3))
        RETURNING \(Delegation.columns)
        """

    /// Extends every lease `worker` holds; returns the ids it still holds (the others were lost).
    package static func renewLeases(
        _ database: Database, worker: String, lease: Duration, ids: [String]? = nil
    ) throws -> Set<String> {
        let only = ids.map { SQLArgument.jsonArray($0) }
        return Set(
            try database.query(
                """
                UPDATE delegations INDEXED BY delegations_leased
                SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
                WHERE lease_owner = ?1 AND status = 'in_progress'
                  AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3)))
                RETURNING id
                """, worker, offset(lease), only
            ).compactMap { $0[0].string })
    }

    /// in_progress → completed. `remoteState` is the peer task's last state, when the answer came from one.
    package static func complete(
        _ database: Database, id: String, worker: String, result: String, remoteState: String? = nil, steps: [DelegationStep] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: "status = 'completed', result = ?3, error = NULL, remote_state = coalesce(?4, remote_state), \(finishing)",
            result, remoteState)
    }

    /// in_progress → failed. A followed task the peer did not end itself (`remoteState` not terminal) is
    /// asked to cancel (the `peer_cancels_on_end` trigger).
    package static func fail(
        _ database: Database, id: String, worker: String, error: String, remoteState: String? = nil, steps: [DelegationStep] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: "status = 'failed', error = ?3, remote_state = coalesce(?4, remote_state), \(finishing)",
            TextLimit.errorText(error), remoteState)
    }

    /// in_progress → pending, due again after `delay`; the attempt stays counted.
    package static func scheduleRetry(
        _ database: Database, id: String, worker: String, error: String, delay: Duration, steps: [DelegationStep] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: """
                status = 'pending', error = ?3, next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?4),
                lease_owner = NULL, lease_expires_at = NULL, takeovers = 0, updated_at = \(now)
                """,
            TextLimit.errorText(error), offset(delay))
    }

    /// in_progress → queued: the platform accepted it into its own queue; never resent.
    package static func markQueued(
        _ database: Database, id: String, worker: String, detail: String, steps: [DelegationStep] = []
    ) throws {
        try record(steps + [DelegationStep("queued", detail)], database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: "status = 'queued', accepted_at = \(now), lease_owner = NULL, lease_expires_at = NULL, takeovers = 0, updated_at = \(now)")
    }

    /// The peer accepted the task and runs it (a submitted/working task): the row stays in progress but
    /// lets go of its lease, and waits for its first poll at `nextPoll`. Whoever claims it then (after a
    /// restart too) asks the peer with tasks/get instead of sending again.
    package static func handOver(
        _ database: Database, id: String, worker: String, remoteTaskID: String, peerURL: String, state: String,
        nextPoll: Duration, steps: [DelegationStep] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        try updateHeld(
            database, id: id, worker: worker,
            set: """
                remote_task_id = ?3, peer_url = ?4, remote_state = ?5, accepted_at = coalesce(accepted_at, \(now)),
                next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?6), lease_owner = NULL, lease_expires_at = NULL,
                takeovers = 0, polls = 0, poll_failures = 0, error = NULL, updated_at = \(now)
                """,
            remoteTaskID, peerURL, state, offset(nextPoll))
    }

    /// Parks a followed row again after one poll, until `nextPoll`. A poll that changes nothing adds no
    /// event: it only counts (`polls`, `last_polled_at`); a changed state is a step in `steps`.
    /// `peerURL` replaces the stored one when discovery was asked again.
    package static func park(
        _ database: Database, id: String, worker: String, after poll: PollOutcome, peerURL: String? = nil,
        nextPoll: Duration, steps: [DelegationStep] = []
    ) throws {
        try record(steps, database, id: id, worker: worker)
        switch poll {
        case .answered(let state):
            try updateHeld(
                database, id: id, worker: worker,
                set: """
                    remote_state = ?3, polls = polls + (polls < \(Int64.max)), last_polled_at = \(now), poll_failures = 0, error = NULL,
                    peer_url = coalesce(?4, peer_url), next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5),
                    lease_owner = NULL, lease_expires_at = NULL, takeovers = 0, updated_at = \(now)
                    """,
                state, peerURL, offset(nextPoll))
        case .unreachable(let error):
            try updateHeld(
                database, id: id, worker: worker,
                set: """
                    error = ?3, poll_failures = poll_failures + (poll_failures < \(Int64.max)), last_polled_at = \(now),
                    peer_url = coalesce(?4, peer_url), next_run_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?5),
                    lease_owner = NULL, lease_expires_at = NULL, takeovers = 0, updated_at = \(now)
                    """,
                TextLimit.errorText(error), peerURL, offset(nextPoll))
        }
    }

    /// Graceful shutdown: every row `worker` holds is let go, due now. A row being sent goes back to
    /// pending, its attempt uncounted; a followed row is parked for its next poll.
    package static func releaseLeases(_ database: Database, worker: String) throws -> [String] {
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT id, 'released', attempts, lease_owner,
                   CASE WHEN remote_task_id IS NULL THEN 'lease released at shutdown; attempt not counted'
                        ELSE 'lease released at shutdown; the peer''s task is polled by the next worker' END
            FROM delegations INDEXED BY delegations_leased WHERE lease_owner = ?1 AND status = 'in_progress'
            """, worker)
        return try database.query(
            """
            UPDATE delegations INDEXED BY delegations_leased
            SET status = CASE WHEN remote_task_id IS NULL THEN 'pending' ELSE 'in_progress' END,
                next_run_at = \(now), updated_at = \(now),
                attempts = attempts - (remote_task_id IS NULL AND attempts > 0),
                lease_owner = NULL, lease_expires_at = NULL, takeovers = 0
            WHERE lease_owner = ?1 AND status = 'in_progress' RETURNING id
            """, worker
        ).compactMap { $0[0].string }
    }

    /// Rows `worker` holds whose lease expired although it no longer works on them (not in `inFlight`):
    /// let go at once, as at shutdown, so that a single worker does not leave them stuck (nobody takes
    /// over a worker's own rows while it lives).
    package static func releaseStrayLeases(_ database: Database, worker: String, inFlight: [String]) throws -> [String] {
        let working = SQLArgument.jsonArray(inFlight)
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT id, 'released', attempts, lease_owner, 'lease expired on a row its worker no longer works on; released'
            FROM delegations INDEXED BY delegations_leased
            WHERE lease_owner = ?1 AND lease_expires_at <= \(now) AND status = 'in_progress'
              AND id NOT IN (SELECT value FROM json_each(?2))
            """, worker, working)
        return try database.query(
            """
            UPDATE delegations INDEXED BY delegations_leased
            SET status = CASE WHEN remote_task_id IS NULL THEN 'pending' ELSE 'in_progress' END,
                next_run_at = \(now), updated_at = \(now), lease_owner = NULL, lease_expires_at = NULL, takeovers = 0
            WHERE lease_owner = ?1 AND lease_expires_at <= \(now) AND status = 'in_progress'
              AND id NOT IN (SELECT value FROM json_each(?2))
            RETURNING id
            """, worker, working
        ).compactMap { $0[0].string }
    }

    /// A peer accepted a task for a row that ended meanwhile (cancelled or failed while the send was in
    /// flight): ask the peer to cancel it, as the trigger does for rows that end while followed.
    package static func requestPeerCancel(_ database: Database, id: String, remoteTaskID: String, peerURL: String) throws {
        try database.execute(
            """
            INSERT INTO peer_cancels (delegation_id, remote_task_id, peer_url)
            SELECT id, ?2, ?3 FROM delegations WHERE id = ?1 AND status IN ('cancelled', 'failed')
            ON CONFLICT (delegation_id) DO UPDATE SET
                remote_task_id = excluded.remote_task_id, peer_url = excluded.peer_url, attempts = 0,
                next_attempt_at = excluded.next_attempt_at, lease_owner = NULL, lease_expires_at = NULL,
                done_at = NULL, answer = NULL
            WHERE peer_cancels.remote_task_id IS NOT excluded.remote_task_id
            """, id, remoteTaskID, peerURL)
    }

    /// queued → completed | failed, when the platform's list shows the outcome. False when the row
    /// is no longer queued (another worker resolved it first, or an operator cancelled it).
    package static func resolveQueued(_ database: Database, id: String, outcome: QueuedOutcome) throws -> Bool {
        switch outcome {
        case .completed(let result):
            try database.execute(
                "UPDATE delegations SET status = 'completed', result = ?2, error = NULL, \(finishing) WHERE id = ?1 AND status = 'queued'",
                id, result) == 1
        case .failed(let error):
            try database.execute(
                "UPDATE delegations SET status = 'failed', error = ?2, \(finishing) WHERE id = ?1 AND status = 'queued'",
                id, error.isEmpty ? "failed at the platform" : TextLimit.errorText(error)) == 1
        }
    }

    /// queued → failed for rows the platform's queue accepted before `acceptedBefore` whose outcome never
    /// showed up on its list. Returns their ids.
    package static func expireQueued(_ database: Database, acceptedBefore: String, reason: String) throws -> [String] {
        try database.query(
            """
            UPDATE delegations SET status = 'failed', error = ?2, \(finishing)
            WHERE status = 'queued' AND coalesce(accepted_at, updated_at) < ?1 RETURNING id
            """, acceptedBefore, TextLimit.errorText(reason)
        ).compactMap { $0[0].string }
    }

    // MARK: Operator

    /// pending | in_progress | queued → cancelled. A worker holding the row loses its lease.
    package static func cancel(_ database: Database, id: String, reason: String) throws {
        let changed = try database.execute(
            "UPDATE delegations SET status = 'cancelled', error = ?2, \(finishing) WHERE id = ?1 AND status <> 'cancelled'",
            id, TextLimit.errorText(reason))
        if changed == 0 {
            guard try database.queryFirst("SELECT 1 FROM delegations WHERE id = ?", id) != nil else {
                throw DelegationStoreError.notFound(id: id)
            }
            throw DelegationStoreError.illegalTransition(id: id, message: "already cancelled: cancelled is final")
        }
    }

    /// failed → pending, attempts reset, sent again with the same messageId.
    package static func retry(_ database: Database, id: String, by who: String) throws {
        try recordEvent(database, id: id, kind: "retry", worker: who, detail: "retry requested by \(who)")
        let changed = try database.execute(
            """
            UPDATE delegations SET status = 'pending', attempts = 0, next_run_at = \(now), remote_task_id = NULL,
                finished_at = NULL, takeovers = 0,
                peer_url = NULL, remote_state = NULL, accepted_at = NULL, polls = 0, last_polled_at = NULL,
                poll_failures = 0, updated_at = \(now)
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

    package static func recordEvent(
        _ database: Database, id: String, kind: String, worker: String?, detail: String?
    ) throws {
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT id, ?2, attempts, ?3, ?4 FROM delegations WHERE id = ?1
            """, id, kind, worker, detail.map(TextLimit.errorText))
    }

    package static func record(_ steps: [DelegationStep], _ database: Database, id: String, worker: String) throws {
        for step in steps { try recordEvent(database, id: id, kind: step.kind, worker: worker, detail: step.detail) }
    }

    // MARK: Idleness

    package static func remainingWork(_ database: Database) throws -> RemainingWork {
        let row = try database.queryFirst(
            """
            SELECT (SELECT count(*) FROM delegations WHERE status IN ('pending', 'in_progress', 'queued')),
                   (SELECT count(*) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL),
                   (SELECT count(*) FROM peer_cancels WHERE done_at IS NULL)
            """)
        return RemainingWork(live: row?[0].int ?? 0, outbox: row?[1].int ?? 0, peerCancels: row?[2].int ?? 0)
    }

    package static func queuedIDs(_ database: Database) throws -> [String] {
        try database.query("SELECT id FROM delegations WHERE status = 'queued'").compactMap { $0[0].string }
    }

    /// Runs `body` for delegation `id` inside a multi-row operation, so that a trigger's refusal names
    /// the row it refused (the operation as a whole has no single id).
    package static func attributed<T>(_ id: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError where error.isTriggerAbort {
            throw DelegationStoreError.illegalTransition(id: id, message: error.message)
        }
    }

    // MARK: Lease guard

    /// `UPDATE delegations SET <set> WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_progress'`;
    /// `set` uses `?3`, `?4`, … for `arguments`.
    package static func updateHeld(
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
