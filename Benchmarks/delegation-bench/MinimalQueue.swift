import CSQLite
import Foundation

/// The floor issue 13 measures the store against: a minimal SQLite job queue in C — an INTEGER key, one
/// partial index on the pending rows, no history, no mirror, no triggers — through the bare C API with
/// the store's pragmas (WAL, the same `synchronous`, temp_store in memory).
enum MinimalQueue {
    /// Jobs per second that were claimed and completed: `perCommit` jobs (a claim and a completion each) per
    /// transaction; `perCommit == 0` commits each operation on its own (two commits per job), as the store's
    /// per-operation figure does.
    static func claimAndComplete(path: String, jobs: Int, perCommit: Int, synchronous: String) throws -> Double {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
            let db = handle
        else { throw BenchError("cannot open \(path)") }
        defer { sqlite3_close_v2(db) }
        func exec(_ sql: String) throws { try CAPI.exec(db, sql) }
        try exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous); PRAGMA temp_store = MEMORY")
        try exec(
            """
            CREATE TABLE jobs (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,
                               owner TEXT, lease_until INTEGER);
            CREATE INDEX jobs_pending ON jobs (id) WHERE state = 0;
            """)
        try exec(
            """
            BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(jobs))
            INSERT INTO jobs (payload) SELECT 'benchmark task ' || i FROM n; COMMIT;
            PRAGMA wal_checkpoint(TRUNCATE);
            """)
        func prepare(_ sql: String) throws -> OpaquePointer { try CAPI.prepare(db, sql) }
        let begin = try prepare("BEGIN IMMEDIATE"), commit = try prepare("COMMIT")
        let claim = try prepare(
            """
            UPDATE jobs SET state = 1, owner = ?1, lease_until = unixepoch() + 30
            WHERE id = (SELECT id FROM jobs WHERE state = 0 ORDER BY id LIMIT 1) RETURNING id
            """)
        let complete = try prepare("UPDATE jobs SET state = 2, owner = NULL, lease_until = NULL WHERE id = ?1 AND owner = ?2")
        defer { for statement in [begin, commit, claim, complete] { sqlite3_finalize(statement) } }
        func run(_ statement: OpaquePointer) throws {
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { break }
                if code != SQLITE_ROW { throw BenchError(String(cString: sqlite3_errmsg(db))) }
            }
            sqlite3_reset(statement)
        }
        let start = ContinuousClock.now
        var done = 0
        while done < jobs {
            try run(begin)
            // One claim then one completion per job; `perCommit` jobs share a COMMIT (or each operation its own).
            for _ in 0..<min(max(perCommit, 1), jobs - done) {
                sqlite3_bind_text(claim, 1, "bench-worker", -1, csqlite_transient())
                guard sqlite3_step(claim) == SQLITE_ROW else { throw BenchError("minimal queue: nothing to claim") }
                let id = sqlite3_column_int64(claim, 0)
                sqlite3_reset(claim)
                if perCommit == 0 {
                    try run(commit)
                    try run(begin)
                }
                sqlite3_bind_int64(complete, 1, id)
                sqlite3_bind_text(complete, 2, "bench-worker", -1, csqlite_transient())
                try run(complete)
                done += 1
            }
            try run(commit)
        }
        return Double(jobs) / seconds(since: start)
    }
}
