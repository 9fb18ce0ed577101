import DelegationStore
import Foundation
import SQLiteDatabase

/// Row 7: claiming mirror calls after a platform outage, with a small and a large backlog waiting.
///
/// The backlog is what an outage leaves: every record call failed and was rescheduled minutes ahead,
/// the update and notify calls of the same delegations wait behind their record, and a handful of
/// records are due now. Since migration 0004 the calls that wait are out of the due index, so a claim
/// reads what it returns; before it, they sat in the due range and every claim walked past all of them,
/// probing each one's delegation for an earlier undelivered call.
enum OutboxBench {
    /// Records due now in each backlog (what each claim returns).
    static let due = 8
    static let worker = "bench-outbox"

    /// `Outbox.claim` before migration 0004 (f131009), for contrast: the same query, without moving
    /// leased calls out of the due range.
    static let oldClaimSQL = """
        UPDATE platform_outbox
        SET lease_owner = ?1, lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?2), attempts = attempts + 1
        WHERE id IN (
            SELECT o.id FROM platform_outbox o
            WHERE o.delivered_at IS NULL AND o.dead_at IS NULL AND o.next_attempt_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
              AND (o.lease_owner IS NULL OR o.lease_expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
              AND NOT EXISTS (
                  SELECT 1 FROM platform_outbox p
                  WHERE p.delegation_id = o.delegation_id AND p.id < o.id
                    AND p.delivered_at IS NULL AND p.dead_at IS NULL)
            ORDER BY o.next_attempt_at, o.id LIMIT ?3)
        RETURNING id, delegation_id, kind, body, attempts
        """

    struct Timings {
        var samples: [Double]
        /// SQLite virtual-machine steps of one claim statement (how much it read), when known.
        var steps: Int?
        var median: Double { percentile(samples.sorted(), 0.5) }
        var p99: Double { percentile(samples.sorted(), 0.99) }
        var text: String {
            String(format: "median %.3f ms, p99 %.3f ms", median * 1000, p99 * 1000)
                + (steps.map { ", \($0) VM steps" } ?? "") + " (\(samples.count) claims)"
        }
    }

    struct Figures {
        var backlog: Int
        var store: Timings
        var statement: Timings
        var oldStatement: Timings
    }

    static func run(_ options: BenchOptions, _ results: Results) async throws {
        let sizes = [options.outboxSmall, options.outboxLarge]
        print("""

            7. outbox: claiming mirror calls (limit 128) with \(sizes.map(String.init).joined(separator: " vs ")) calls waiting \
            after a platform outage (records rescheduled ahead, updates and notifies behind them, \(due) records due)
            """)
        var figures: [Figures] = []
        for size in sizes { figures.append(try await measure(options, size: size)) }
        let (small, large) = (figures[0], figures[1])
        let smallLabel = grouped(small.backlog), largeLabel = grouped(large.backlog)

        results.add(Result(
            row: "7. store.claimOutbox, \(smallLabel) waiting (NORMAL)", figure: small.store.text, baseline: "-", ratio: nil,
            target: "(baseline)", met: nil))
        let ratio = large.store.median / small.store.median
        results.add(Result(
            row: "7. store.claimOutbox, \(largeLabel) waiting (NORMAL)", figure: large.store.text,
            baseline: String(format: "%.3f ms (%@ waiting)", small.store.median * 1000, smallLabel), ratio: ratio,
            target: "≤ 1.5×", met: ratio <= 1.5))
        let statementRatio = large.statement.median / small.statement.median
        results.add(Result(
            row: "7. Outbox.claim alone (rolled back), \(largeLabel) waiting", figure: large.statement.text,
            baseline: String(format: "%.3f ms, %d VM steps (%@ waiting)", small.statement.median * 1000, small.statement.steps ?? 0, smallLabel),
            ratio: statementRatio,
            target: "≤ 1.5×", met: statementRatio <= 1.5))
        let oldRatio = large.oldStatement.median / small.oldStatement.median
        results.add(Result(
            row: "7. pre-0004 claim (waiting calls in the due range), \(largeLabel) waiting", figure: large.oldStatement.text,
            baseline: String(format: "%.3f ms, %d VM steps (%@ waiting)", small.oldStatement.median * 1000, small.oldStatement.steps ?? 0, smallLabel),
            ratio: oldRatio,
            target: "(contrast)", met: nil))
        results.add(Result(
            row: "7. pre-0004 claim vs 0004 claim, \(largeLabel) waiting", figure: String(format: "%.3f ms", large.oldStatement.median * 1000),
            baseline: String(format: "%.3f ms (0004 statement)", large.statement.median * 1000),
            ratio: large.oldStatement.median / large.statement.median, target: "(contrast)", met: nil))
    }

    /// 100000 as "100,000".
    static func grouped(_ value: Int) -> String {
        var digits = String(value)
        var index = digits.count - 3
        while index > 0 {
            digits.insert(",", at: digits.index(digits.startIndex, offsetBy: index))
            index -= 3
        }
        return digits
    }

    /// Builds a backlog of about `size` undelivered calls and times the claims against it.
    static func measure(_ options: BenchOptions, size: Int) async throws -> Figures {
        let path = try await StoreBench.freshDatabase(options, "outbox-\(size)")
        let store = try DelegationStore(StoreConfiguration(path: path, durability: .normal), logger: quietLogger("bench"))
        let built = ContinuousClock.now
        let delegations = (size + 2) / 3
        let backlog = try await store.write("building an outbox backlog") { database in
            try buildBacklog(database, delegations: delegations)
        }
        let database = try openDatabase(path)
        let waiting = try queryInt(database, "SELECT count(*) FROM platform_outbox WHERE next_attempt_at = '9999-12-31T23:59:59.999Z'")
        print(String(
            format: "   %d calls waiting (%d behind their record, %d due), built in %.1f s", backlog, waiting,
            try queryInt(database, "SELECT count(*) FROM platform_outbox WHERE next_attempt_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"),
            seconds(since: built)))
        let claims = options.outboxClaims

        // Through the store's public door, one write transaction each (synchronous=NORMAL, so the figure
        // is the claim rather than an fsync). Each claim takes the due records; they are handed back,
        // due again, between two claims.
        var storeSamples: [Double] = []
        for index in 0..<(claims + 10) {
            let start = ContinuousClock.now
            let items = try await store.claimOutbox(worker: worker, limit: 128, lease: .seconds(30))
            let took = seconds(since: start)
            if index >= 10 { storeSamples.append(took) }  // the first ones warm the caches
            guard items.count == due, items.allSatisfy({ $0.kind == .record }) else {
                throw BenchError("outbox claim returned \(items.count) calls (\(Set(items.map(\.kind.rawValue)))), expected the \(due) due records")
            }
            try handBack(database, ids: items.map(\.id))
        }
        await store.close()

        // `Outbox.claim` alone on a connection of the bench's own, rolled back each time.
        let statement = try timeStatement(database, claims: claims) { database in
            try Outbox.claim(database, worker: worker, limit: 128, lease: .seconds(30)).count
        }
        // The same backlog as the schema before 0004 had it: calls that wait are due from their creation.
        try database.execute(
            "UPDATE platform_outbox SET next_attempt_at = created_at WHERE next_attempt_at = '9999-12-31T23:59:59.999Z'")
        let old = try timeStatement(database, claims: claims, budget: 20) { database in
            try database.query(oldClaimSQL, worker, Transitions.offset(.seconds(30)), 128).count
        }
        return Figures(backlog: backlog, store: Timings(samples: storeSamples), statement: statement, oldStatement: old)
    }

    /// Times `claim` (which returns how many calls it claimed) inside a transaction that is rolled back, so
    /// every run sees the same rows. Stops early after `budget` seconds (with at least 20 samples).
    static func timeStatement(
        _ database: Database, claims: Int, budget: Double = .infinity, _ claim: (Database) throws -> Int
    ) throws -> Timings {
        var samples: [Double] = []
        var steps: Int?
        let begun = ContinuousClock.now
        for index in 0..<(claims + 5) {
            try database.execute(script: "BEGIN IMMEDIATE")
            let start = ContinuousClock.now
            let claimed = try claim(database)
            let took = seconds(since: start)
            steps = database.lastStatementSteps
            try database.execute(script: "ROLLBACK")
            guard claimed == due else { throw BenchError("claim statement returned \(claimed) calls, expected \(due)") }
            if index >= 5 { samples.append(took) }
            if samples.count >= 20, seconds(since: begun) > budget { break }
        }
        return Timings(samples: samples, steps: steps)
    }

    /// The claimed records, due again (as if their delivery failed at once and was retried now).
    static func handBack(_ database: Database, ids: [Int]) throws {
        try database.execute(
            """
            UPDATE platform_outbox
            SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds')
            WHERE id IN (SELECT value FROM json_each(?1))
            """, "[" + ids.map(String.init).joined(separator: ",") + "]")
    }

    /// `delegations` completed delegations whose mirror calls the platform never took (in one store write),
    /// through the schema's own triggers (a record on the claim; an update and a notify, waiting behind it, on the
    /// outcome), then the outage: every record tried and rescheduled 1–11 minutes ahead, a few due now.
    static func buildBacklog(_ database: Database, delegations: Int) throws -> Int {
        try database.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
            INSERT INTO delegations (workspace_id, task, source_workspace_id) SELECT 'ws-peer', 'benchmark task ' || i, 'bench-agent' FROM n
            """, delegations)
        try database.execute(
            """
            UPDATE delegations SET status = 'in_progress', lease_owner = 'bench-outage', attempts = 1,
                lease_expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+3600 seconds')
            WHERE status = 'pending'
            """)
        try database.execute("UPDATE delegations SET status = 'completed', result = 'done ' || rowid WHERE status = 'in_progress'")
        try database.execute(
            """
            UPDATE platform_outbox
            SET attempts = 4, last_error = 'HTTP 503: platform unavailable',
                next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || (60 + abs(random()) % 600) || ' seconds')
            WHERE kind = 'record'
            """)
        try database.execute(
            """
            UPDATE platform_outbox SET next_attempt_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 seconds')
            WHERE id IN (SELECT id FROM platform_outbox WHERE kind = 'record' ORDER BY id LIMIT ?1)
            """, due)
        return try queryInt(database, "SELECT count(*) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL")
    }
}
