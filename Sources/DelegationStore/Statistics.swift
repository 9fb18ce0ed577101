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
        // One pass over the window's finished rows, from `delegations_finished` alone (0006 put status,
        // created_at and attempts in it): attempts of those created in the window, the durations of the
        // completed ones. Stepped here rather than grouped and sorted by SQLite: its sorter took twice as
        // long as reading the rows, a second scan for the attempts a third, a window function numbering
        // the sorted rows longer still. The durations are eight bytes each: 8 MB at a million a day.
        var attempts: [Int: Int] = [:]
        var durations: [Double] = []
        var completed = 0
        let finished = try database.statement(finishedInWindow, [windowStart])
        defer { finished.reset() }
        while try finished.step() {
            if finished.value(at: 0).int == 1 { attempts[finished.value(at: 1).int ?? 0, default: 0] += 1 }
            if finished.value(at: 2).int == 1 {
                completed += 1
                // NULL when raw SQL wrote a created_at julianday cannot read: counted, with no duration.
                if let seconds = finished.value(at: 3).double { durations.append(seconds) }
            }
        }
        // The live rows created in the window, through the status index.
        for row in try database.query(
            """
            SELECT attempts, count(*) FROM delegations
            WHERE status IN ('pending', 'in_progress', 'queued') AND created_at >= ?1 GROUP BY attempts
            """, windowStart)
        {
            attempts[row[0].int ?? 0, default: 0] += row[1].int ?? 0
        }
        figures.attempts = attempts
        figures.completedInWindow = completed
        durations.sort()
        var percentiles: [String: Double] = [:]
        if !durations.isEmpty {
            for (name, share) in zip(QueueStatistics.percentiles, [0.50, 0.95, 0.99]) {
                percentiles[name] = durations[min(durations.count - 1, max(0, Int((Double(durations.count) * share).rounded(.up)) - 1))]
            }
        }
        figures.timeToComplete = percentiles
        // Each through its partial index: the delivered history is never read.
        let pending = try database.queryFirst(
            "SELECT count(*), min(created_at) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL")
        figures.outboxPending = pending?[0].int ?? 0
        figures.outboxOldestPendingCreatedAt = pending?[1].string
        figures.outboxDead = try database.queryFirst("SELECT count(*) FROM platform_outbox WHERE dead_at IS NOT NULL")?[0].int ?? 0
        figures.peerCancelsPending = try database.queryFirst("SELECT count(*) FROM peer_cancels WHERE done_at IS NULL")?[0].int ?? 0
        return figures
    }

    /// The window's finished rows (?1: its start), from the index alone: created in the window, attempts,
    /// completed, and the seconds a completed one took (NULL when julianday cannot read a timestamp).
    package static let finishedInWindow = """
        SELECT created_at >= ?1, attempts, status = 'completed',
               CASE WHEN status = 'completed' THEN (julianday(finished_at) - julianday(created_at)) * 86400.0 END
        FROM delegations INDEXED BY delegations_finished
        WHERE \(Eviction.finished) AND finished_at >= ?1
        """

    /// Rows per status, as the schema keeps them (`delegation_counts`, migration 0005): constant time.
    package static func rowCounts(_ database: Database) throws -> [DelegationStatus: Int] {
        let kept = Dictionary(
            uniqueKeysWithValues: try database.query("SELECT status, rows FROM delegation_counts")
                .map { ($0[0].string ?? "", $0[1].int ?? 0) })
        return Dictionary(uniqueKeysWithValues: DelegationStatus.allCases.map { ($0, kept[$0.rawValue] ?? 0) })
    }
}
