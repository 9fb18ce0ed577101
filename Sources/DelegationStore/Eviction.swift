package import SQLiteDatabase

/// Removing finished history beyond a limit: oldest first, never a live row, never a row whose
/// mirror to the platform is still undelivered or whose peer has not yet answered a cancel. Events and outbox rows go with their delegation.
package enum Eviction {
    /// Exactly the WHERE of the partial index `delegations_finished`, which every query here names with
    /// INDEXED BY: left to itself the planner walked the status index and sorted (98 ms vs 1.6 ms per batch
    /// at 20,000 rows).
    package static let finished = "status IN ('completed', 'failed', 'cancelled')"

    /// A position in the (finished_at, id) order: everything before it may go.
    package struct Cutoff: Sendable, Equatable {
        package var finishedAt: String
        package var id: String
    }

    /// Where eviction stops: after the `keep` newest finished rows are set aside, and at finish times
    /// before `olderThan`, whichever removes more (both are prefixes of the same order).
    package static func cutoff(_ database: Database, keep: Int?, olderThan: String?) throws -> Cutoff? {
        var candidates: [Cutoff] = []
        if let keep {
            if keep == 0 {
                candidates.append(Cutoff(finishedAt: "9999", id: ""))
            } else if let row = try database.queryFirst(
                "SELECT finished_at, id FROM delegations INDEXED BY delegations_finished WHERE \(finished) ORDER BY finished_at DESC, id DESC LIMIT 1 OFFSET ?",
                keep - 1)
            {
                candidates.append(Cutoff(finishedAt: row[0].string ?? "", id: row[1].string ?? ""))
            }
        }
        if let olderThan { candidates.append(Cutoff(finishedAt: olderThan, id: "")) }
        return candidates.max { ($0.finishedAt, $0.id) < ($1.finishedAt, $1.id) }
    }

    /// The next `limit` ids before `cutoff`, oldest first.
    package static func batch(_ database: Database, before cutoff: Cutoff, limit: Int) throws -> [String] {
        try database.query(
            """
            SELECT id FROM delegations d INDEXED BY delegations_finished
            WHERE \(finished) AND (finished_at, id) < (?1, ?2)
              AND NOT EXISTS (SELECT 1 FROM platform_outbox o
                              WHERE o.delegation_id = d.id AND o.delivered_at IS NULL AND o.dead_at IS NULL)
              AND NOT EXISTS (SELECT 1 FROM peer_cancels c WHERE c.delegation_id = d.id AND c.done_at IS NULL)
            ORDER BY finished_at, id LIMIT ?3
            """, cutoff.finishedAt, cutoff.id, limit
        ).compactMap { $0[0].string }
    }

    /// Deletes those of `ids` that are still finished; returns how many went.
    @discardableResult
    package static func delete(_ database: Database, ids: [String]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let list = SQLArgument.jsonArray(ids)
        return try database.execute(
            // `+status`: look the ids up by primary key; an index on status would walk every finished row.
            "DELETE FROM delegations WHERE id IN (SELECT value FROM json_each(?1)) AND +\(finished)", list)
    }

    /// How many finished rows before `cutoff` may go now, and how many wait for their mirror.
    ///
    /// Counted `chunk` rows to a statement, each statement its own snapshot: one statement over a million
    /// rows held a snapshot for ~4 s, the write-ahead log could not be copied past it meanwhile, and the
    /// backlog it left was then copied at once beside the worker (its commits' fsyncs waited behind those
    /// writes: the stalls over 100 ms beside `evict` came 5–7 s after it started). The counts are then not
    /// of one instant, which a plan does not need.
    package static func plan(_ database: Database, before cutoff: Cutoff, chunk: Int = 10_000) throws -> EvictionPlan {
        var evictable = 0, total = 0
        var after: Cutoff?  // the last row counted; nil: none yet (no lower bound)
        while true {
            // One lower and one upper bound each, chosen from fixed texts, so that SQLite bounds the walk
            // of the index by them (two upper bounds could leave it walking to the cutoff, filtering).
            let lower = after == nil ? "" : "AND (finished_at, id) > (?3, ?4)"
            let end = try database.queryFirst(
                """
                SELECT finished_at, id FROM delegations INDEXED BY delegations_finished
                WHERE \(finished) AND (finished_at, id) < (?1, ?2) \(lower)
                ORDER BY finished_at, id LIMIT 1 OFFSET ?5
                """, cutoff.finishedAt, cutoff.id, after?.finishedAt ?? "", after?.id ?? "", max(chunk, 1) - 1
            ).map { Cutoff(finishedAt: $0[0].string ?? "", id: $0[1].string ?? "") }
            let upper = end == nil ? "(finished_at, id) < (?1, ?2)" : "(finished_at, id) <= (?1, ?2)"
            let bound = end ?? cutoff
            let row = try database.queryFirst(
                """
                SELECT count(*) FILTER (WHERE NOT EXISTS (
                           SELECT 1 FROM platform_outbox o
                           WHERE o.delegation_id = d.id AND o.delivered_at IS NULL AND o.dead_at IS NULL)
                         AND NOT EXISTS (SELECT 1 FROM peer_cancels c WHERE c.delegation_id = d.id AND c.done_at IS NULL)),
                       count(*)
                FROM delegations d INDEXED BY delegations_finished
                WHERE \(finished) AND \(upper) \(lower)
                """, arguments: [bound.finishedAt, bound.id] + (after.map { [$0.finishedAt, $0.id] } ?? []))
            evictable += row?[0].int ?? 0
            total += row?[1].int ?? 0
            guard let end else { break }
            after = end
        }
        return EvictionPlan(evictable: evictable, heldBack: total - evictable)
    }
}
