package import SQLiteDatabase

/// Delivery bookkeeping for the outbox. Items are leased like delegations, so two workers never
/// post the same item at once, and go out in order per delegation.
package enum Outbox {
    /// Due items whose delegation has no earlier item still undelivered, oldest first. Calls that wait for
    /// an earlier one are not due (migration 0004), and leased ones are due only when their lease expires,
    /// so the scan reads what it returns, however long the backlog behind an outage.
    package static func claim(_ database: Database, worker: String, limit: Int, lease: Duration) throws -> [OutboxItem] {
        try database.query(
            """
            UPDATE platform_outbox
            SET lease_owner = ?1, lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
                attempts = attempts + (attempts < \(Int64.max)),  -- saturates, as the claim's (Transitions)
                -- Out of the due range while leased: the next claim does not walk the calls in flight.
                next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
            WHERE id IN (
                SELECT o.id FROM platform_outbox o
                WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= \(Transitions.now)
                  AND (o.lease_owner IS NULL OR o.lease_expires_at <= \(Transitions.now))
                  AND NOT EXISTS (
                      SELECT 1 FROM platform_outbox p
                      WHERE p.delegation_id = o.delegation_id AND p.id < o.id
                        AND p.delivered_at IS NULL AND p.dead_at IS NULL)
                ORDER BY o.next_attempt_at, o.id LIMIT ?3)
            RETURNING \(OutboxItem.columns)
            """, worker, Transitions.offset(lease), limit
        ).map(OutboxItem.init(row:))
    }

    /// The platform accepted it. False when this worker no longer held it (it will not be marked twice).
    @discardableResult
    package static func delivered(_ database: Database, item: OutboxItem, worker: String, status: Int) throws -> Bool {
        try delivered(database, items: [(item, status)], worker: worker).first ?? false
    }

    /// Several calls the platform accepted, marked in one statement and audited in one (issue 13: one
    /// statement per batch rather than one operation per call). Answers each entry in order: true when
    /// this worker still held the call and this entry marked it (a call twice in the list is marked and
    /// audited once, for its first entry).
    package static func delivered(_ database: Database, items: [(item: OutboxItem, status: Int)], worker: String) throws -> [Bool] {
        guard !items.isEmpty else { return [] }
        let marked = Set(
            try database.query(
                """
                UPDATE platform_outbox SET delivered_at = \(Transitions.now), lease_owner = NULL, lease_expires_at = NULL,
                    last_error = NULL
                WHERE id IN (SELECT value FROM json_each(?1)) AND lease_owner = ?2 AND delivered_at IS NULL
                RETURNING id
                """, SQLArgument.jsonArray(items.map(\.item.id)), worker
            ).compactMap { $0[0].int })
        var audited = Set<Int>()
        let answers = items.map { marked.contains($0.item.id) && audited.insert($0.item.id).inserted }
        let taken = zip(items, answers).filter(\.1).map(\.0)
        guard !taken.isEmpty else { return answers }
        // In the order given: the n-th delegation id with the n-th detail.
        try database.execute(
            """
            INSERT INTO delegation_events (delegation_id, kind, attempt, worker, detail)
            SELECT d.id, 'mirror', d.attempts, ?3, detail.value
            FROM json_each(?1) AS delegation JOIN json_each(?2) AS detail ON detail.key = delegation.key
            JOIN delegations d ON d.id = delegation.value
            ORDER BY delegation.key
            """,
            SQLArgument.jsonArray(taken.map(\.item.delegationID)),
            SQLArgument.jsonArray(taken.map { "\($0.item.kind.rawValue) delivered to the platform (HTTP \($0.status))" }),
            worker)
        return answers
    }

    /// Not delivered this time (platform down, 5xx): try again after `delay`.
    package static func retry(_ database: Database, item: OutboxItem, worker: String, error: String, delay: Duration) throws {
        try database.execute(
            """
            UPDATE platform_outbox
            SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3), last_error = ?4,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ?1 AND lease_owner = ?2 AND delivered_at IS NULL
            """, item.id, worker, Transitions.offset(delay), TextLimit.errorText(error))
    }

    /// The platform refused it for good (a 4xx): kept with its answer for an operator, not retried.
    package static func dead(_ database: Database, item: OutboxItem, worker: String, error: String) throws {
        let changed = try database.execute(
            """
            UPDATE platform_outbox SET dead_at = \(Transitions.now), last_error = ?3, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ?1 AND lease_owner = ?2 AND delivered_at IS NULL
            """, item.id, worker, TextLimit.errorText(error))
        if changed == 1 {
            try Transitions.recordEvent(
                database, id: item.delegationID, kind: "mirror", worker: worker,
                detail: "\(item.kind.rawValue) refused by the platform: \(error)")
        }
    }

    /// Extends the leases of the items `worker` is posting (`ids`), so a slow platform call keeps its item
    /// while a killed worker's items come back after one short lease rather than a long fixed one.
    package static func renew(_ database: Database, worker: String, ids: [Int], lease: Duration) throws {
        guard !ids.isEmpty else { return }
        try database.execute(
            """
            UPDATE platform_outbox
            SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2),
                next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2)
            WHERE id IN (SELECT value FROM json_each(?3)) AND lease_owner = ?1
              AND delivered_at IS NULL AND dead_at IS NULL
            """, worker, Transitions.offset(lease), SQLArgument.jsonArray(ids))
    }

    /// Shutdown: hand back items this worker leased but did not finish.
    package static func release(_ database: Database, worker: String) throws {
        try database.execute(
            """
            UPDATE platform_outbox SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = \(Transitions.now)
            WHERE lease_owner = ?1 AND delivered_at IS NULL AND dead_at IS NULL
            """,
            worker)
    }

    /// Items not yet delivered nor refused.
    package static func backlog(_ database: Database) throws -> Int {
        try database.queryFirst(
            "SELECT count(*) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL")?[0].int ?? 0
    }
}
