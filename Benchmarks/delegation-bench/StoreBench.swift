import CSQLite
import DelegationStore
import Foundation
import SQLiteDatabase
import Synchronization

/// Rows 1 and 2: the store's operations against the same SQL through the bare C API.
enum StoreBench {
    /// The SQL the store runs for each operation (the schema's triggers do the rest either way).
    static let enqueueSQL = """
        INSERT INTO delegations (workspace_id, task, source_workspace_id, max_attempts) VALUES (?, ?, ?, ?) RETURNING id
        """
    /// `Transitions.complete` (through `updateHeld`): the transition sets its own bookkeeping in the one
    /// UPDATE, so the schema's bookkeeping trigger does not run a second one (?4 is left NULL).
    static let completeSQL = """
        UPDATE delegations SET status = 'completed', result = ?3, error = NULL, remote_state = coalesce(?4, remote_state),
            finished_at = \(Transitions.now), lease_owner = NULL, lease_expires_at = NULL, takeovers = 0,
            updated_at = \(Transitions.now)
        WHERE id = ?1 AND lease_owner = ?2 AND status = 'in_progress'
        """

    /// `count` pending delegations to `workspace` in one transaction, through the schema's defaults and triggers.
    static func seed(_ path: String, count: Int, workspace: String, source: String?, task: String = "benchmark task") throws {
        let database = try openDatabase(path)
        _ = try database.transaction {
            try database.execute(
                """
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                INSERT INTO delegations (workspace_id, task, source_workspace_id) SELECT ?2, ?3 || ' ' || i, ?4 FROM n
                """, count, workspace, task, source)
        }
    }

    /// A migrated, empty database file.
    static func freshDatabase(_ options: BenchOptions, _ name: String) async throws -> String {
        let path = options.directory + "/\(name).db"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let store = try DelegationStore(StoreConfiguration(path: path), logger: quietLogger("bench"))
        await store.close()
        return path
    }

    struct Phases {
        var enqueue: Double
        var claim: Double
        var complete: Double
        var total: Double { enqueue + claim + complete }
    }

    /// The same three operations, each in its own BEGIN IMMEDIATE … COMMIT, prepared once, nothing else.
    static func baseline(path: String, jobs: Int, synchronous: String) throws -> Phases {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db = handle else {
            throw BenchError("cannot open \(path)")
        }
        defer { sqlite3_close_v2(db) }
        func exec(_ sql: String) throws { try CAPI.exec(db, sql) }
        // The store's own connection settings, so both sides run the same SQL the same way.
        try exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous); PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY")
        func prepare(_ sql: String) throws -> OpaquePointer { try CAPI.prepare(db, sql) }
        let begin = try prepare("BEGIN IMMEDIATE"), commit = try prepare("COMMIT")
        let insert = try prepare(enqueueSQL), claim = try prepare(Transitions.claimSQL), complete = try prepare(completeSQL)
        defer { for statement in [begin, commit, insert, claim, complete] { sqlite3_finalize(statement) } }
        func run(_ statement: OpaquePointer) throws {
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { break }
                if code != SQLITE_ROW { throw BenchError(String(cString: sqlite3_errmsg(db))) }
            }
            sqlite3_reset(statement)
        }
        func text(_ statement: OpaquePointer, _ index: Int32, _ value: String) {
            sqlite3_bind_text(statement, index, value, -1, csqlite_transient())
        }

        var start = ContinuousClock.now
        for index in 0..<jobs {
            try run(begin)
            text(insert, 1, "ws-bench")
            text(insert, 2, "benchmark task \(index)")
            text(insert, 3, "ws-self")
            sqlite3_bind_null(insert, 4)
            try run(insert)
            try run(commit)
        }
        let enqueue = seconds(since: start)

        var ids: [String] = []
        ids.reserveCapacity(jobs)
        let lease = Transitions.offset(.seconds(30))
        start = ContinuousClock.now
        for _ in 0..<jobs {
            try run(begin)
            text(claim, 1, "bench-worker")
            text(claim, 2, lease)
            sqlite3_bind_int64(claim, 3, 1)
            text(claim, 4, "ws-self")
            while sqlite3_step(claim) == SQLITE_ROW {
                ids.append(String(cString: sqlite3_column_text(claim, 0)))
            }
            sqlite3_reset(claim)
            try run(commit)
        }
        let claimTime = seconds(since: start)

        start = ContinuousClock.now
        for id in ids {
            try run(begin)
            text(complete, 1, id)
            text(complete, 2, "bench-worker")
            text(complete, 3, "done")
            try run(complete)
            try run(commit)
        }
        let completeTime = seconds(since: start)
        guard ids.count == jobs else { throw BenchError("baseline claimed \(ids.count) of \(jobs)") }
        return Phases(enqueue: enqueue, claim: claimTime, complete: completeTime)
    }

    /// The same three operations through the store's public API, one awaited call at a time.
    static func store(path: String, jobs: Int, durability: StoreConfiguration.Durability) async throws -> Phases {
        let store = try DelegationStore(
            StoreConfiguration(path: path, durability: durability, sourceWorkspaceID: "ws-self"), logger: quietLogger("bench"))
        var start = ContinuousClock.now
        for index in 0..<jobs { _ = try await store.enqueue(workspaceID: "ws-bench", task: "benchmark task \(index)") }
        let enqueue = seconds(since: start)
        var claimed: [String] = []
        start = ContinuousClock.now
        for _ in 0..<jobs { claimed += try await store.claim(worker: "bench-worker", limit: 1, lease: .seconds(30)).map(\.id) }
        let claim = seconds(since: start)
        start = ContinuousClock.now
        for id in claimed { try await store.complete(id: id, worker: "bench-worker", result: "done") }
        let complete = seconds(since: start)
        await store.close()
        guard claimed.count == jobs else { throw BenchError("store claimed \(claimed.count) of \(jobs)") }
        return Phases(enqueue: enqueue, claim: claim, complete: complete)
    }

    /// Issue 13's per-operation floor as the minimal queue runs it: `jobs` rows waiting (seeded in one
    /// transaction, not timed), then one claim and its completion, one commit each, one job at a time —
    /// so one row is leased at a time, as in the minimal queue, rather than all of them. Jobs per second.
    static func claimThenComplete(path: String, jobs: Int, durability: StoreConfiguration.Durability) async throws -> Double {
        try seed(path, count: jobs, workspace: "ws-bench", source: "ws-self")
        // The seed's pages copied into the file now, not by checkpoints inside the timed loop (the minimal
        // queue does the same after its seed).
        guard try openDatabase(path).queryFirst("PRAGMA wal_checkpoint(TRUNCATE)")?[0].int == 0 else {
            throw BenchError("could not checkpoint \(path) after seeding")
        }
        let store = try DelegationStore(
            StoreConfiguration(path: path, durability: durability, sourceWorkspaceID: "ws-self"), logger: quietLogger("bench"))
        let start = ContinuousClock.now
        var done = 0
        while let claimed = try await store.claim(worker: "bench-worker", limit: 1, lease: .seconds(30)).first {
            try await store.complete(id: claimed.id, worker: "bench-worker", result: "done")
            done += 1
        }
        let elapsed = seconds(since: start)
        await store.close()
        guard done == jobs else { throw BenchError("store claimed and completed \(done) of \(jobs)") }
        return Double(jobs) / elapsed
    }

    /// Row 1. Returns the store's per-operation rate at FULL, row 2's baseline.
    static func perOperation(_ options: BenchOptions, _ results: Results) async throws -> Double {
        print("\n1. store per-operation: \(options.jobs) jobs × enqueue, claim, complete, one transaction each, WAL")
        var fullRate = 0.0
        for durability in [StoreConfiguration.Durability.full, .normal] {
            let basePath = try await freshDatabase(options, "base-\(durability.rawValue)")
            let base = try baseline(path: basePath, jobs: options.jobs, synchronous: durability.rawValue)
            let storePath = try await freshDatabase(options, "store-\(durability.rawValue)")
            let ours = try await store(path: storePath, jobs: options.jobs, durability: durability)
            for (name, baseTime, ourTime) in [
                ("enqueue", base.enqueue, ours.enqueue), ("claim", base.claim, ours.claim), ("complete", base.complete, ours.complete),
                ("all three", base.total, ours.total),
            ] {
                let count = name == "all three" ? options.jobs * 3 : options.jobs
                let ratio = baseTime / ourTime
                results.add(Result(
                    row: "1. \(name), synchronous=\(durability.rawValue)", figure: rate(count, ourTime) + " (store)",
                    baseline: rate(count, baseTime) + " (C API)", ratio: ratio, target: "≥ 0.8×", met: ratio >= 0.8))
            }
            if durability == .full { fullRate = Double(options.jobs * 3) / ours.total }
            // Issue 13's floor: one claim and one completion per commit, against the minimal queue doing the same.
            let minimal = try MinimalQueue.claimAndComplete(
                path: options.directory + "/minimal-\(durability.rawValue).db", jobs: options.jobs, perCommit: 0,
                synchronous: durability.rawValue)
            let jobsPerSecond = try await claimThenComplete(
                path: try await freshDatabase(options, "alternating-\(durability.rawValue)"), jobs: options.jobs, durability: durability)
            results.add(Result(
                row: "1. claim + complete, one commit each, synchronous=\(durability.rawValue)",
                figure: String(format: "%.0f jobs/s (store, one job at a time; %.0f jobs/s from the claim and complete phases above)",
                               jobsPerSecond, Double(options.jobs) / (ours.claim + ours.complete)),
                baseline: String(format: "%.0f jobs/s (minimal queue)", minimal), ratio: jobsPerSecond / minimal,
                target: "≥ 0.5×", met: jobsPerSecond / minimal >= 0.5))
        }
        return fullRate
    }

    /// Row 2: 64 tasks claiming and completing through one store at FULL; commits are shared.
    static func groupCommit(_ options: BenchOptions, _ results: Results, perOperationFull: Double?) async throws {
        print("\n2. group commit: 64 concurrent tasks claiming and completing \(options.groupJobs) delegations, synchronous=FULL")
        let path = try await freshDatabase(options, "group")
        let jobs = options.groupJobs
        try seed(path, count: jobs, workspace: "ws-bench", source: nil)
        let store = try DelegationStore(StoreConfiguration(path: path, sourceWorkspaceID: "ws-self"), logger: quietLogger("bench"))
        // Row 1's figure, or (when row 1 was skipped) a short per-operation run now.
        let baselineRate: Double
        if let perOperationFull {
            baselineRate = perOperationFull
        } else {
            let probe = try await freshDatabase(options, "group-baseline")
            let phases = try await self.store(path: probe, jobs: 2000, durability: .full)
            baselineRate = Double(2000 * 3) / phases.total
        }
        let latencies = Locked<[Double]>([])
        let before = (transactions: store.writerStatistics.transactions, operations: store.writerStatistics.operations)
        let start = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<64 {
                group.addTask {
                    var mine: [Double] = []
                    while let claimed = try? await store.claim(worker: "w\(lane)", limit: 1, lease: .seconds(60)).first {
                        let begun = ContinuousClock.now
                        try? await store.complete(id: claimed.id, worker: "w\(lane)", result: "done")
                        mine.append(seconds(since: begun))
                    }
                    let collected = mine
                    latencies.withLock { $0 += collected }
                }
            }
        }
        let elapsed = seconds(since: start)
        let after = (transactions: store.writerStatistics.transactions, operations: store.writerStatistics.operations)
        await store.close()
        let sorted = latencies.withLock { $0 }.sorted()
        guard sorted.count == jobs else { throw BenchError("group commit completed \(sorted.count) of \(jobs)") }
        let operations = Double(jobs * 2)
        let ourRate = operations / elapsed
        let perCommit = Double(after.operations - before.operations) / Double(max(1, after.transactions - before.transactions))
        results.add(Result(
            row: "2. claim + complete, 64 tasks, FULL", figure: String(format: "%.0f ops/s, %.1f ops per commit", ourRate, perCommit),
            baseline: String(format: "%.0f ops/s (row 1, FULL)", baselineRate), ratio: ourRate / baselineRate,
            target: "≥ 5×", met: ourRate / baselineRate >= 5))
        // Issue 13's floor for shared commits: the minimal queue, 32 jobs (a claim and a completion each) per commit.
        let minimal = try MinimalQueue.claimAndComplete(
            path: options.directory + "/minimal-batched.db", jobs: jobs, perCommit: 32, synchronous: "FULL")
        let jobsPerSecond = Double(jobs) / elapsed
        results.add(Result(
            row: "2. claim + complete, 64 tasks, FULL, as jobs", figure: String(format: "%.0f jobs/s (store)", jobsPerSecond),
            baseline: String(format: "%.0f jobs/s (minimal queue, 32 jobs = 64 operations per commit)", minimal), ratio: jobsPerSecond / minimal,
            target: "≥ 0.3×", met: jobsPerSecond / minimal >= 0.3))
        let p50 = percentile(sorted, 0.5) * 1000, p99 = percentile(sorted, 0.99) * 1000
        results.add(Result(
            row: "2. latency of one completion under that load", figure: String(format: "p50 %.1f ms, p99 %.1f ms", p50, p99),
            baseline: "-", ratio: nil, target: "p99 < 20 ms", met: p99 < 20))
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
