package import SQLiteDatabase

/// The invariants `check` verifies: the file, the schema as migrated, the histories, leases, deadlines.
package enum Checks {
    package static func findings(_ database: Database, _ thresholds: CheckThresholds) throws -> [CheckFinding] {
        let staleBefore = thresholds.staleBefore, stuckBefore = thresholds.stuckBefore
        var findings: [CheckFinding] = []

        // The database alone: the search index file is checked with its own finding (it is derived data).
        let integrity = try database.query("PRAGMA main.integrity_check").compactMap { $0[0].string }
        findings.append(CheckFinding(
            name: "integrity_check", ok: integrity == ["ok"],
            detail: integrity == ["ok"] ? "ok" : "\(integrity.count) problem(s)", examples: Array(integrity.prefix(5))))

        let foreignKeys = try database.query("PRAGMA foreign_key_check")
        findings.append(CheckFinding(
            name: "foreign_keys", ok: foreignKeys.isEmpty,
            detail: foreignKeys.isEmpty ? "ok" : "\(foreignKeys.count) row(s) point at missing parents",
            examples: foreignKeys.prefix(5).map { "\($0[0].string ?? "?") rowid \($0[1].int ?? 0)" }))

        // What a freshly migrated database holds, compared by name and SQL.
        let expected = try Database(path: ":memory:")
        try Migrator.migrate(expected)
        let objects = "SELECT type || ' ' || name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND sql IS NOT NULL"
        let wanted = Dictionary(uniqueKeysWithValues: try expected.query(objects).map { ($0[0].string ?? "", $0[1].string ?? "") })
        let present = Dictionary(try database.query(objects).map { ($0[0].string ?? "", $0[1].string ?? "") }, uniquingKeysWith: { a, _ in a })
        let missing = wanted.keys.filter { present[$0] == nil }.sorted()
        let altered = wanted.keys.filter { present[$0] != nil && present[$0] != wanted[$0] }.sorted()
        findings.append(CheckFinding(
            name: "schema", ok: missing.isEmpty && altered.isEmpty,
            detail: missing.isEmpty && altered.isEmpty
                ? "all \(wanted.count) tables, indexes and triggers as migrated"
                : "\(missing.count) missing, \(altered.count) altered",
            examples: missing.map { "missing \($0)" } + altered.map { "altered \($0)" }))

        let contradicted = try database.query(
            """
            SELECT id, status, last FROM (
                SELECT d.id, d.status,
                       (SELECT e.to_status FROM delegation_events e
                        WHERE e.delegation_id = d.id AND e.kind = 'status' ORDER BY e.id DESC LIMIT 1) AS last
                FROM delegations d)
            WHERE last IS NOT status LIMIT 1000
            """)
        findings.append(CheckFinding(
            name: "status_matches_events", ok: contradicted.isEmpty,
            detail: contradicted.isEmpty ? "every row's status is its last status event's" : "\(contradicted.count) row(s) contradict their events",
            examples: contradicted.prefix(5).map { "\($0[0].string ?? "") is \($0[1].string ?? "") but its events say \($0[2].string ?? "nothing")" }))

        let legal = SQLArgument.jsonArray(DelegationStatus.legalTransitions.map { "\($0[0].rawValue)>\($0[1].rawValue)" })
        let badPaths = try database.query(
            """
            WITH s AS (
                SELECT delegation_id, id, from_status, to_status,
                       lag(to_status) OVER (PARTITION BY delegation_id ORDER BY id) AS previous
                FROM delegation_events WHERE kind = 'status')
            SELECT delegation_id, id, from_status, to_status, previous FROM s
            WHERE from_status IS NOT previous
               OR (from_status IS NULL AND to_status <> 'pending')
               OR (from_status IS NOT NULL AND from_status || '>' || to_status NOT IN (SELECT value FROM json_each(?)))
            LIMIT 1000
            """, legal)
        findings.append(CheckFinding(
            name: "event_paths_legal", ok: badPaths.isEmpty,
            detail: badPaths.isEmpty ? "every history is a legal path from pending" : "\(badPaths.count) event(s) break a history",
            examples: badPaths.prefix(5).map {
                "\($0[0].string ?? ""): event \($0[1].int ?? 0) \($0[2].string ?? "∅") → \($0[3].string ?? "") after \($0[4].string ?? "∅")"
            }))

        let leases = try database.queryFirst(
            """
            SELECT count(*) FILTER (WHERE status = 'in_progress' AND (lease_owner IS NULL OR lease_expires_at IS NULL)
                                      AND remote_task_id IS NULL),
                   count(*) FILTER (WHERE status <> 'in_progress' AND (lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL)),
                   count(*) FILTER (WHERE status = 'in_progress' AND (lease_expires_at < ?1 OR (lease_owner IS NULL AND next_run_at < ?1)))
            FROM delegations WHERE status = 'in_progress' OR lease_owner IS NOT NULL OR lease_expires_at IS NOT NULL
            """, staleBefore)
        let (ownerless, stray, stale) = (leases?[0].int ?? 0, leases?[1].int ?? 0, leases?[2].int ?? 0)
        findings.append(CheckFinding(
            name: "leases", ok: ownerless == 0 && stray == 0,
            detail: "\(ownerless) in_progress without a lease or a peer task to follow, \(stray) lease(s) on rows not in progress"))
        let staleRows = try database.query(
            """
            SELECT id, coalesce(lease_owner, 'nobody (a followed task due for a poll)'), coalesce(lease_expires_at, next_run_at)
            FROM delegations WHERE status = 'in_progress' AND (lease_expires_at < ?1 OR (lease_owner IS NULL AND next_run_at < ?1))
            LIMIT 5
            """, staleBefore)
        findings.append(CheckFinding(
            name: "stale_leases", ok: stale == 0,
            detail: stale == 0
                ? "no lease expired, and no followed task due for a poll, before \(staleBefore)"
                : "\(stale) lease(s) expired or poll(s) overdue since before \(staleBefore): is any worker running?",
            examples: staleRows.map { "\($0[0].string ?? "") held by \($0[1].string ?? "") until \($0[2].string ?? "")" }))

        let finishedAt = try database.queryFirst(
            """
            SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at IS NULL),
                   count(*) FILTER (WHERE status IN ('pending', 'in_progress', 'queued') AND finished_at IS NOT NULL)
            FROM delegations
            """)
        let (unfinished, refinished) = (finishedAt?[0].int ?? 0, finishedAt?[1].int ?? 0)
        findings.append(CheckFinding(
            name: "finished_at", ok: unfinished == 0 && refinished == 0,
            detail: "\(unfinished) finished row(s) without finished_at, \(refinished) live row(s) with one"))

        let stuck = try database.queryFirst(
            "SELECT count(*) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL AND created_at < ?", stuckBefore)?[0].int ?? 0
        let dead = try database.queryFirst("SELECT count(*) FROM platform_outbox WHERE dead_at IS NOT NULL")?[0].int ?? 0
        findings.append(CheckFinding(
            name: "outbox", ok: stuck == 0,
            detail: "\(stuck) mirror call(s) undelivered since before \(stuckBefore); \(dead) refused by the platform (see show)"))
        let drifted = try database.query(
            """
            SELECT c.status, c.rows, (SELECT count(*) FROM delegations d WHERE d.status = c.status) AS actual
            FROM delegation_counts c WHERE c.rows <> actual
            """)
        findings.append(CheckFinding(
            name: "counts", ok: drifted.isEmpty,
            detail: drifted.isEmpty ? "the kept counts per status agree with the rows" : "\(drifted.count) status count(s) drifted",
            examples: drifted.map { "\($0[0].string ?? ""): kept \($0[1].int ?? 0), actual \($0[2].int ?? 0)" }))

        let old = try database.query(
            """
            SELECT id, coalesce(accepted_at, updated_at) FROM delegations
            WHERE status = 'queued' AND coalesce(accepted_at, updated_at) < ? ORDER BY 2 LIMIT 1000
            """, thresholds.queuedBefore)
        findings.append(CheckFinding(
            name: "queued_age", ok: old.isEmpty,
            detail: old.isEmpty
                ? "no delegation queued at the platform since before \(thresholds.queuedBefore) (half the queued deadline)"
                : "\(old.count) delegation(s) queued since before \(thresholds.queuedBefore), over half the queued deadline: is the platform's list showing their outcome?",
            examples: old.prefix(5).map { "\($0[0].string ?? "") queued at \($0[1].string ?? "")" }))
        return findings
    }
    /// The search index file (0007) holds exactly the rows there are, with their current text, except rows
    /// queued for it (inserted, changed or deleted since it last caught up); its FTS5 index has an entry
    /// for every row of its copy of the text. (FTS5's own integrity-check is a write, which a read-only
    /// check cannot run.)
    static func searchIndex(_ database: Database) throws -> CheckFinding {
        let file = SearchIndex.path(forDatabaseAt: database.path)
        let remedy = "stop every process using the database and delete \(file) (with its -wal and -shm): the next read-write open rebuilds it"
        guard try SearchIndex.isLaidOut(database) else {
            return CheckFinding(
                name: "search_index", ok: false,
                detail: "the search index \(file) is missing, not set up or unreadable: searches scan until it is there; the next read-write open (a worker, any admin write) builds a missing one, and an unreadable one is rebuilt once deleted (with its -wal and -shm, every process using the database stopped)")
        }
        let counts: Row?
        do {
            guard try SearchIndex.matchesDatabase(database) else {
                return CheckFinding(
                    name: "search_index", ok: false,
                    detail: "the search index \(file) is from another moment than the database (one of them restored from a backup?), or of another database; searches scan; the next indexer round of a read-write store lays it out again")
            }
            let quick = try database.query("PRAGMA search.quick_check").compactMap { $0[0].string }
            guard quick == ["ok"] else {
                return CheckFinding(
                    name: "search_index", ok: false,
                    detail: "the search index \(file) is damaged (\(quick.prefix(3).joined(separator: "; "))); searches scan past it; \(remedy)")
            }
            counts = try database.queryFirst(
            """
            SELECT (SELECT count(*) FROM delegations d
                    WHERE NOT EXISTS (SELECT 1 FROM search.search_docs s WHERE s.seq = d.seq)
                      AND NOT EXISTS (SELECT 1 FROM delegation_search_queue q WHERE q.seq = d.seq)),
                   (SELECT count(*) FROM search.search_docs s
                    WHERE NOT EXISTS (SELECT 1 FROM delegations d WHERE d.seq = s.seq)
                      AND NOT EXISTS (SELECT 1 FROM delegation_search_queue q WHERE q.seq = s.seq)),
                   (SELECT count(*) FROM search.search_docs s CROSS JOIN delegations d USING (seq)
                    WHERE (s.task IS NOT d.task OR s.result IS NOT d.result OR s.error IS NOT d.error)
                      AND NOT EXISTS (SELECT 1 FROM delegation_search_queue q WHERE q.seq = s.seq)),
                   (SELECT count(*) FROM search.search_docs) - (SELECT count(*) FROM search.search_index_docsize),
                   (SELECT count(*) FROM delegation_search_queue)
            """)
        } catch {
            if (error as? SQLiteError)?.isBusy == true { throw error }
            return CheckFinding(
                name: "search_index", ok: false,
                detail: "the search index \(file) could not be read (\(error)); searches scan past it; \(remedy)")
        }
        let missing = counts?[0].int ?? 0, stray = counts?[1].int ?? 0, stale = counts?[2].int ?? 0
        let unindexed = counts?[3].int ?? 0, queued = counts?[4].int ?? 0
        let ok = missing == 0 && stray == 0 && stale == 0 && unindexed == 0
        return CheckFinding(
            name: "search_index", ok: ok,
            detail: ok
                ? "every row is in the search index with its text or queued for it (\(queued) queued), and nothing else"
                : "\(missing) row(s) missing from the search index, \(stray) stray entr(ies), \(stale) with older text, \(unindexed) copied but not indexed; \(remedy)")
    }
}
