@testable import DelegationStore
import Foundation
import SQLiteDatabase
import TestSupport
import Testing

/// `stats` over its window, read from `delegations_finished` (migration 0006) and the status index.
@Suite struct StatisticsTests {
    @Test func percentilesAndAttemptsOverTheWindow() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        // 100 completions taking 1 … 100 s, two of them after a retry; 3 live rows; 5 rows from before the window.
        try await store.write("history") { database in
            for seconds in 1...100 {
                let seq = try database.queryFirst(
                    """
                    INSERT INTO delegations (workspace_id, task, created_at)
                    VALUES ('ws', 'job', strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-01T00:00:00Z', ?)) RETURNING seq
                    """, "+\(seconds * 60) seconds")?[0].int ?? -1
                try database.execute(
                    "UPDATE delegations SET status = 'in_progress', attempts = ?2, lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE seq = ?1",
                    seq, seconds > 98 ? 2 : 1)
                try database.execute(
                    """
                    UPDATE delegations SET status = 'completed', result = 'ok',
                        finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at, ?2) WHERE seq = ?1
                    """, seq, "+\(seconds) seconds")
            }
            for _ in 0..<3 { try database.execute("INSERT INTO delegations (workspace_id, task, created_at) VALUES ('ws', 'live', '2026-11-02T00:00:00.000Z')") }
            // A failure in the window after three attempts: in the attempts, not among the completions.
            try database.execute("INSERT INTO delegations (workspace_id, task, created_at) VALUES ('ws', 'doomed', '2026-11-02T00:00:00.000Z')")
            try database.execute(
                "UPDATE delegations SET status = 'in_progress', attempts = 3, lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE task = 'doomed'")
            try database.execute("UPDATE delegations SET status = 'failed', error = 'gave up' WHERE task = 'doomed'")
            for _ in 0..<5 {
                try database.execute("INSERT INTO delegations (workspace_id, task, created_at) VALUES ('ws', 'old', '2026-10-01T00:00:00.000Z')")
                try database.execute("UPDATE delegations SET status = 'cancelled', error = 'old' WHERE task = 'old' AND status = 'pending'")
            }
        }
        let figures = try await store.statistics(windowStart: "2026-11-01T00:00:00.000Z")
        #expect(figures.completedInWindow == 100)
        // julianday arithmetic: microseconds off.
        #expect(figures.timeToComplete.mapValues { $0.rounded() } == ["p50": 50, "p95": 95, "p99": 99], "\(figures.timeToComplete)")
        #expect(figures.attempts == [1: 98, 2: 2, 3: 1, 0: 3], "finished rows from the index, live ones from the table; the old ones left out")
        #expect(figures.counts[.completed] == 100 && figures.counts[.pending] == 3 && figures.counts[.cancelled] == 5 && figures.counts[.failed] == 1)

        let plans = try await store.read { database in
            try database.query(
                "EXPLAIN QUERY PLAN " + Statistics.finishedInWindow,
                "2026-11-01"
            ).compactMap { $0["detail"].string }
        }
        #expect(plans.contains { $0.contains("COVERING INDEX delegations_finished") }, "\(plans)")
        await store.close()
    }

    /// Raw SQL can write any text as created_at: such a row counts as completed, with no duration, and
    /// the percentiles are those of the rows that have one (sorted first as NULL, it used to take a rank).
    @Test func aCompletionWithAnUnreadableCreationTimeCountsWithoutADuration() async throws {
        let directory = TemporaryDirectory()
        let store = try makeStore(directory)
        try await store.write("history") { database in
            for (created, seconds) in [("2026-11-01T00:00:00.000Z", 10), ("2026-11-01T00:00:00.000Z", 20),
                                       ("2026-11-01T00:00:00.000Z", 30), ("not a time", 5)] {
                let seq = try database.queryFirst(
                    "INSERT INTO delegations (workspace_id, task, created_at) VALUES ('ws', 'job', ?) RETURNING seq", created)?[0].int ?? -1
                try database.execute(
                    "UPDATE delegations SET status = 'in_progress', attempts = 1, lease_owner = 'w', lease_expires_at = '2999-01-01T00:00:00.000Z' WHERE seq = ?1",
                    seq)
                try database.execute(
                    """
                    UPDATE delegations SET status = 'completed', result = 'ok',
                        finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-01T00:00:00.000Z', ?2) WHERE seq = ?1
                    """, seq, "+\(seconds) seconds")
            }
        }
        let figures = try await store.statistics(windowStart: "2026-11-01T00:00:00.000Z")
        #expect(figures.completedInWindow == 4)
        #expect(figures.timeToComplete.mapValues { $0.rounded() } == ["p50": 20, "p95": 30, "p99": 30], "\(figures.timeToComplete)")
        await store.close()
    }
}
