package import SQLiteDatabase

/// The reads behind inspection: one place for each query, every value a bound parameter.
package enum Queries {
    package static func delegation(_ database: Database, id: String) throws -> Delegation? {
        try database.queryFirst("SELECT \(Delegation.columns) FROM delegations WHERE id = ?", id).map(Delegation.init(row:))
    }

    package static func events(_ database: Database, delegationID: String) throws -> [DelegationEvent] {
        try database.query(
            "SELECT \(DelegationEvent.columns) FROM delegation_events WHERE delegation_id = ? ORDER BY id", delegationID
        ).map(DelegationEvent.init(row:))
    }

    package static func mirrorCalls(_ database: Database, delegationID: String) throws -> [MirrorCall] {
        try database.query(
            "SELECT \(MirrorCall.columns) FROM platform_outbox WHERE delegation_id = ? ORDER BY id", delegationID
        ).map(MirrorCall.init(row:))
    }

    /// The row, its events and its mirror calls (call inside one read transaction for one snapshot).
    package static func detail(_ database: Database, id: String) throws -> DelegationDetail? {
        guard let delegation = try delegation(database, id: id) else { return nil }
        return DelegationDetail(
            delegation: delegation, events: try events(database, delegationID: id),
            mirrorCalls: try mirrorCalls(database, delegationID: id))
    }

    package static func liveAndRecentlyFinished(_ database: Database, finished: Int) throws -> [Delegation] {
        try database.query(
            """
            SELECT \(Delegation.columns) FROM (
                SELECT * FROM delegations WHERE status IN ('pending', 'in_progress', 'queued')
                UNION ALL
                SELECT * FROM (
                    SELECT * FROM delegations WHERE status IN ('completed', 'failed', 'cancelled')
                    ORDER BY finished_at DESC, id DESC LIMIT ?))
            ORDER BY created_at, id
            """, finished
        ).map(Delegation.init(row:))
    }

    // MARK: Filtered lists

    /// `SELECT <columns> FROM delegations WHERE … ORDER BY … LIMIT ?` and its arguments. With a search of
    /// three characters or more: the trigram index's hits, and the rows still waiting to be indexed
    /// matched on their text, merged in seq order (`seq` is then an extra last column). `indexed`: the
    /// connection has the index attached (`SearchIndex.isAvailable`); without it a search is a scan.
    package static func select(
        _ columns: String, _ query: DelegationQuery, indexed: Bool = true
    ) -> (sql: String, arguments: [any SQLiteBindable]) {
        var conditions: [String] = []
        var arguments: [any SQLiteBindable] = []
        if !query.statuses.isEmpty {
            conditions.append("status IN (SELECT value FROM json_each(?))")
            arguments.append(SQLArgument.jsonArray(query.statuses.map(\.rawValue)))
        }
        if let workspace = query.workspaceID {
            conditions.append("workspace_id = ?")
            arguments.append(workspace.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let since = query.createdSince {
            conditions.append("created_at >= ?")
            arguments.append(since)
        }
        if let until = query.createdBefore {
            conditions.append("created_at < ?")
            arguments.append(until)
        }
        if let finished = query.finishedSince {
            conditions.append("finished_at >= ?")
            arguments.append(finished)
        }
        let limit: any SQLiteBindable = query.limit ?? -1
        let like = "(task LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')"
        func likeArguments(_ search: String) -> [any SQLiteBindable] {
            Array(repeating: "%" + escapeLike(search) + "%", count: 3)
        }
        func whereClause(_ extra: [String]) -> String {
            let all = conditions + extra
            return all.isEmpty ? "" : "WHERE " + all.joined(separator: " AND ") + " "
        }

        guard let search = query.search, search.unicodeScalars.count >= 3, indexed else {
            // seq (the rowid) breaks ties: it rides along in every index on created_at, so no sort is needed.
            let order = query.newestFirst ? "ORDER BY created_at DESC, seq DESC" : "ORDER BY created_at, seq"
            if let search = query.search {
                // Too short for trigrams, or no index file (yet): a scan.
                return ("SELECT \(columns) FROM delegations " + whereClause([like]) + order + " LIMIT ?",
                        arguments + likeArguments(search) + [limit])
            }
            return ("SELECT \(columns) FROM delegations " + whereClause([]) + order + " LIMIT ?", arguments + [limit])
        }
        // The trigram index (its own file since 0007) drives the first arm, walked in rowid order (a phrase of the text is a
        // substring match, case-insensitive); rows it does not hold yet, or holds with older text, are in
        // delegation_search_queue (0006) and are matched by LIKE in the second. Both arms come in seq
        // order, so SQLite merges them and the first `limit` rows that pass the filters end the query (2 ms
        // at 1M rows where a sort of every hit by created_at took 110). Search results therefore come in
        // enqueue order (seq), which is creation order unless the clock stepped back.
        // The second arm looks the queued rows up by rowid, in seq order; written as a join of the queue
        // and the table, SQLite (once ANALYZE had seen the queue empty: no statistics, so a guess of a
        // million rows) built a Bloom filter over every row of the table first: 230 ms at 850k rows.
        // NOT INDEXED keeps it from walking a status or workspace index and sorting instead.
        let phrase = "\"" + search.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let direction = query.newestFirst ? "DESC" : "ASC"
        let sql = """
            SELECT \(columns), seq FROM (SELECT rowid AS seq FROM search.search_index WHERE search_index MATCH ?) AS hits \
            CROSS JOIN delegations USING (seq) \
            \(whereClause(["seq NOT IN (SELECT seq FROM delegation_search_queue)"]))\
            UNION ALL \
            SELECT \(columns), seq FROM delegations NOT INDEXED \
            \(whereClause(["seq IN (SELECT seq FROM delegation_search_queue)", like]))\
            ORDER BY seq \(direction) LIMIT ?
            """
        return (sql, [phrase] + arguments + arguments + likeArguments(search) + [limit])
    }

    package static func list(_ database: Database, _ query: DelegationQuery) throws -> [Delegation] {
        try scanningPastADamagedIndex(database, query) { indexed in
            let (sql, arguments) = select(Delegation.columns, query, indexed: indexed)
            return try database.query(sql, arguments: arguments).map(Delegation.init(row:))
        }
    }

    package static func ids(_ database: Database, _ query: DelegationQuery) throws -> [String] {
        try scanningPastADamagedIndex(database, query) { indexed in
            let (sql, arguments) = select("id", query, indexed: indexed)
            return try database.query(sql, arguments: arguments).compactMap { $0[0].string }
        }
    }

    /// Streams the matching rows one at a time (and their events when asked): memory stays flat whatever the size.
    package static func forEach(
        _ database: Database, _ query: DelegationQuery, withEvents: Bool,
        _ body: (Delegation, [DelegationEvent]?) throws -> Void
    ) throws {
        let indexed = try usesIndex(database, query)
        var delivered = false
        func run(_ indexed: Bool) throws {
            let (sql, arguments) = select(Delegation.columns, query, indexed: indexed)
            // Events are read on the side while the main statement steps: a second cached statement.
            try database.forEachRow(sql, arguments: arguments) { row in
                let delegation = Delegation(row: row)
                delivered = true
                try body(delegation, withEvents ? try events(database, delegationID: delegation.id) : nil)
            }
        }
        do {
            try run(indexed)
        } catch let error as SQLiteError where error.isCorrupt && indexed && !delivered {
            try run(false)  // a damaged index file: scanned past, as `list` does (no row was given out twice)
        }
    }

    private static func usesIndex(_ database: Database, _ query: DelegationQuery) throws -> Bool {
        query.search == nil ? false : try SearchIndex.isAvailable(database)
    }

    /// The index file is derived data: if it turns out damaged, the same query scans instead of failing.
    private static func scanningPastADamagedIndex<T>(
        _ database: Database, _ query: DelegationQuery, _ body: (_ indexed: Bool) throws -> T
    ) throws -> T {
        guard try usesIndex(database, query) else { return try body(false) }
        do {
            return try body(true)
        } catch let error as SQLiteError where error.isCorrupt {
            return try body(false)
        }
    }

    package static func escapeLike(_ text: String) -> String {
        // By scalar: "%" followed by a combining mark is one Character, not equal to "%", yet LIKE sees the "%".
        var escaped = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar == "%" || scalar == "_" || scalar == "\\" { escaped.append("\\") }
            escaped.append(scalar)
        }
        return String(escaped)
    }

    // MARK: The event log

    package static func events(_ database: Database, _ query: EventQuery) throws -> [WorkspaceEvent] {
        var conditions: [String] = []
        var arguments: [any SQLiteBindable] = []
        if let delegation = query.delegationID {
            guard try database.queryFirst("SELECT 1 FROM delegations WHERE id = ?", delegation) != nil else {
                throw DelegationStoreError.notFound(id: delegation)
            }
            conditions.append("e.delegation_id = ?")
            arguments.append(delegation)
        }
        if let since = query.since {
            conditions.append("e.at >= ?")
            arguments.append(since)
        }
        if let until = query.until {
            conditions.append("e.at < ?")
            arguments.append(until)
        }
        if !query.toStatuses.isEmpty {
            conditions.append("e.to_status IN (SELECT value FROM json_each(?)) AND e.kind = 'status'")
            arguments.append(SQLArgument.jsonArray(query.toStatuses.map(\.rawValue)))
        }
        if !query.kinds.isEmpty {
            conditions.append("e.kind IN (SELECT value FROM json_each(?))")
            arguments.append(SQLArgument.jsonArray(query.kinds))
        }
        let columns = DelegationEvent.columns.split(separator: ",").map { "e." + $0.trimmingCharacters(in: .whitespaces) }
        let sql = """
            SELECT \(columns.joined(separator: ", ")), d.workspace_id
            FROM delegation_events e LEFT JOIN delegations d ON d.id = e.delegation_id
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY \(query.newestFirst ? "e.id DESC" : "e.id") LIMIT ?
            """
        return try database.query(sql, arguments: arguments + [query.limit]).map {
            WorkspaceEvent(event: DelegationEvent(row: $0), workspaceID: $0[9].string)
        }
    }
}
