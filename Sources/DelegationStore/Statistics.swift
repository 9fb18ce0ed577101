package import SQLiteDatabase

/// The queries behind `QueueStatistics`, each through its index.
package enum Statistics {
    package static func compute(_ database: Database, windowStart: String, now: String) throws -> QueueStatistics {
        var figures = QueueStatistics(windowStart: windowStart)
        let counts = try rowCounts(database)
        figures.counts = counts
        figures.oldestPendingCreatedAt = try database.queryFirst(
            "SELECT min(created_at) FROM delegations WHERE status = 'pending'")?[0].string
        let leases = try database.queryFirst(
            """
            SELECT count(*) FILTER (WHERE lease_expires_at > ?1), count(*) FILTER (WHERE lease_expires_at <= ?1),
                   count(*) FILTER (WHERE lease_owner IS NULL)
            FROM delegations WHERE status = 'in_progress'
            """, now)
        figures.leasesHeld = leases?[0].int ?? 0
        figures.leasesExpired = leases?[1].int ?? 0
        figures.followedTasks = leases?[2].int ?? 0
        // Rows created in the window: the finished ones from `delegations_finished` alone (it carries
        // created_at and attempts, migration 0006; a row created in the window finished in it too), the
        // live ones through the status index. Reading each row of a day's traffic from the table took
        // tens of milliseconds at 1M rows.
        figures.attempts = Dictionary(
            try database.query(
                """
                SELECT attempts, count(*) FROM (
                    SELECT attempts FROM delegations INDEXED BY delegations_finished
                    WHERE \(Eviction.finished) AND finished_at >= ?1 AND created_at >= ?1
                    UNION ALL
                    SELECT attempts FROM delegations
                    WHERE status IN ('pending', 'in_progress', 'queued') AND created_at >= ?1)
                GROUP BY attempts
                """, windowStart
            ).map { ($0[0].int ?? 0, $0[1].int ?? 0) }, uniquingKeysWith: +)
        // The day's durations, read from the index alone (it holds every column used here, 0006), sorted
        // here: SQLite's sorter (records, comparisons through its VDBE) took three times as long as reading
        // them, a window function numbering the rows longer still. Eight bytes each: 8 MB at a million a day.
        // A row whose created_at raw SQL made unreadable counts, with no duration.
        var (durations, unreadable) = try database.doubles(
            """
            SELECT (julianday(finished_at) - julianday(created_at)) * 86400.0
            FROM delegations INDEXED BY delegations_finished
            WHERE \(Eviction.finished) AND status = 'completed' AND finished_at >= ?
            """, arguments: [windowStart])
        durations.sort()
        figures.completedInWindow = durations.count + unreadable
        var values: [String: Double] = [:]
        if !durations.isEmpty {
            for (name, share) in zip(QueueStatistics.percentiles, [0.50, 0.95, 0.99]) {
                values[name] = durations[min(durations.count - 1, max(0, Int((Double(durations.count) * share).rounded(.up)) - 1))]
            }
        }
        figures.timeToComplete = values
        // Each through its partial index: the delivered history is never read.
        let pending = try database.queryFirst(
            "SELECT count(*), min(created_at) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL")
        figures.outboxPending = pending?[0].int ?? 0
        figures.outboxOldestPendingCreatedAt = pending?[1].string
        figures.outboxDead = try database.queryFirst("SELECT count(*) FROM platform_outbox WHERE dead_at IS NOT NULL")?[0].int ?? 0
        figures.peerCancelsPending = try database.queryFirst("SELECT count(*) FROM peer_cancels WHERE done_at IS NULL")?[0].int ?? 0
        return figures
    }

    /// Rows per status, as the schema keeps them (`delegation_counts`, migration 0005): constant time.
    package static func rowCounts(_ database: Database) throws -> [DelegationStatus: Int] {
        let kept = Dictionary(
            uniqueKeysWithValues: try database.query("SELECT status, rows FROM delegation_counts")
                .map { ($0[0].string ?? "", $0[1].int ?? 0) })
        return Dictionary(uniqueKeysWithValues: DelegationStatus.allCases.map { ($0, kept[$0.rawValue] ?? 0) })
    }
}
