package import SQLiteDatabase

/// Delivery bookkeeping for peer cancels, leased like the platform outbox so two workers never ask twice
/// at once. Every end is recorded in the delegation's history as a `peer.cancel` event.
package enum PeerCancels {
    package static func claim(_ database: Database, worker: String, limit: Int, lease: Duration) throws -> [PeerCancel] {
        try database.query(
            """
            UPDATE peer_cancels
            SET lease_owner = ?1, lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
                attempts = attempts + (attempts < \(Int64.max)),  -- saturates, as the claim's (Transitions)
                next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
            WHERE delegation_id IN (
                SELECT delegation_id FROM peer_cancels
                WHERE done_at IS NULL AND next_attempt_at <= \(Transitions.now)
                ORDER BY next_attempt_at LIMIT ?3)
            RETURNING delegation_id
            """, worker, Transitions.offset(lease), limit
        ).compactMap { $0[0].string }.compactMap { id in
            try database.queryFirst(
                "SELECT \(PeerCancel.columns) FROM peer_cancels c JOIN delegations d ON d.id = c.delegation_id WHERE c.delegation_id = ?",
                id
            ).map(PeerCancel.init(row:))
        }
    }

    /// The peer answered (a canceled task, or an error such as "not cancelable"): done, its answer kept.
    package static func answered(_ database: Database, _ item: PeerCancel, worker: String, answer: String) throws {
        try finish(database, item, worker: worker, answer: answer, detail: "the peer answered the cancel of its task \(item.remoteTaskID): \(answer)")
    }

    /// No answer after the last try: done, and said so in the history.
    package static func giveUp(_ database: Database, _ item: PeerCancel, worker: String, error: String) throws {
        try finish(
            database, item, worker: worker, answer: "gave up: \(error)",
            detail: "gave up asking the peer to cancel its task \(item.remoteTaskID) after \(item.attempts) tries: \(error)")
    }

    /// Not answered this time: asked again after `delay`.
    package static func retry(_ database: Database, _ item: PeerCancel, worker: String, error: String, delay: Duration) throws {
        try database.execute(
            """
            UPDATE peer_cancels SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), answer = ?4,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE delegation_id = ?1 AND lease_owner = ?2 AND done_at IS NULL
            """, item.delegationID, worker, Transitions.offset(delay), TextLimit.errorText(error))
    }

    /// Shutdown: hand back what this worker leased but did not finish.
    package static func release(_ database: Database, worker: String) throws {
        try database.execute(
            """
            UPDATE peer_cancels SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = \(Transitions.now)
            WHERE lease_owner = ?1 AND done_at IS NULL
            """, worker)
    }

    private static func finish(_ database: Database, _ item: PeerCancel, worker: String, answer: String, detail: String) throws {
        let changed = try database.execute(
            """
            UPDATE peer_cancels SET done_at = \(Transitions.now), answer = ?3, lease_owner = NULL, lease_expires_at = NULL
            WHERE delegation_id = ?1 AND lease_owner = ?2 AND done_at IS NULL
            """, item.delegationID, worker, TextLimit.errorText(answer))
        if changed == 1 {
            try Transitions.recordEvent(database, id: item.delegationID, kind: "peer.cancel", worker: worker, detail: detail)
        }
    }
}
