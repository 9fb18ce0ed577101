import ChildProcess
import DelegationStore
import Foundation
import SQLiteDatabase
import Synchronization

/// Row 5: the admin CLI on a big database, and eviction next to a working worker.
enum AdminBench {
    static func run(_ options: BenchOptions, _ results: Results) async throws {
        var rows = options.adminRows
        let path: String
        if let source = options.adminFrom {
            path = options.directory + "/admin.db"
            let standardized = { (path: String) in URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
            guard standardized(source) != standardized(path) else {
                throw BenchError("--admin-from \(source) is the file this run would write: give a different --dir")
            }
            // Only the main file is copied: committed pages still in a WAL would be missing from the copy.
            if fileSize(source + "-wal") > 0 {
                throw BenchError("\(source)-wal is not empty: run `delegation-admin checkpoint --db \(source)` first")
            }
            for file in [path, SearchIndex.path(forDatabaseAt: path)] {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: file + suffix) }
            }
            try FileManager.default.copyItem(atPath: source, toPath: path)
            // The search index file (0007) too, when it is there and whole; otherwise it is built here.
            let index = SearchIndex.path(forDatabaseAt: source)
            if FileManager.default.fileExists(atPath: index) && fileSize(index + "-wal") == 0 {
                try FileManager.default.copyItem(atPath: index, toPath: SearchIndex.path(forDatabaseAt: path))
            } else {
                try await indexEverything(path)
            }
            let copy = try openDatabase(path, readOnly: true)
            rows = try queryInt(copy, "SELECT count(*) FROM delegations")
            // Its timestamps are those of the run that made it: stats' 24-hour window holds what that run
            // (and any evict or worker loop since) left in it, so figures from one copy drift as it ages.
            let recent = try queryInt(
                copy,
                """
                SELECT count(*) FROM delegations INDEXED BY delegations_finished
                WHERE status IN ('completed', 'failed', 'cancelled') AND status = 'completed'
                  AND finished_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
                """)
            print("\n5. admin at scale: \(rows) delegations copied from \(source) (\(recent) completed in the last 24 h;"
                  + " --admin-rows is not used)")
        } else {
            print("\n5. admin at scale: \(rows) delegations over 30 days (95 % finished, with events and delivered mirror calls)")
            path = try await StoreBench.freshDatabase(options, "admin")
            let generated = ContinuousClock.now
            try await generate(path, rows: rows)
            print(String(format: "   generated in %.1f s (%.0f MB)", seconds(since: generated), Double(fileSize(path)) / 1_048_576))
        }

        // A running worker's last second of writes waits in the search index's queue (0006): searches read
        // it too. (With it empty a search skipped a plan that scanned the whole table: 20 ms vs 230.)
        try StoreBench.seed(path, count: 100, workspace: "ws-recent", source: nil, task: "recent")
        let admin = productDirectory.appendingPathComponent("delegation-admin").path
        let sample = try Database(path: path, mode: .readOnly)
        let id = try sample.queryFirst("SELECT id FROM delegations WHERE status = 'completed' ORDER BY created_at LIMIT 1 OFFSET ?", rows / 3)?[0].string ?? ""

        // Baseline: the same binary answering the cheapest question (one primary-key lookup).
        let baseline = try median(admin, ["status", id, "--json", "--db", path])
        results.add(Result(
            row: "5. admin: status ID (process start + one lookup)", figure: ms(baseline), baseline: "-", ratio: nil,
            target: "(baseline)", met: nil))
        for (name, arguments) in [
            ("list --limit 50", ["list", "--limit", "50"]), ("stats", ["stats"]), ("show ID", ["show", id]),
            ("events --delegation ID", ["events", "--delegation", id]),
            ("list --status failed --search", ["list", "--status", "failed", "--search", "task 4"]),
        ] {
            let time = try median(admin, arguments + ["--json", "--db", path])
            results.add(Result(
                row: "5. admin: \(name), \(rows) rows", figure: ms(time), baseline: ms(baseline) + " (status ID)",
                ratio: time / baseline, target: "< 50 ms", met: time < 0.050))
        }

        // A worker completing delegations through the store, timing each commit, first alone then
        // while `evict --keep 100` deletes everything else in batches.
        try StoreBench.seed(path, count: 20_000, workspace: "ws-live", source: nil, task: "live")
        // The seed's pages copied into the file now, not by the first commit of the loop (that commit took
        // 150–190 ms and became the "alone" baseline's worst).
        guard try openDatabase(path).queryFirst("PRAGMA wal_checkpoint(TRUNCATE)")?[0].int == 0 else {
            throw BenchError("could not checkpoint \(path) before the worker loop")
        }
        let store = try DelegationStore(StoreConfiguration(path: path, sourceWorkspaceID: "bench"), logger: quietLogger("bench"))
        let reader = try openDatabase(path, readOnly: true)
        let stop = Locked(false)
        let stalls = Locked<[Double]>([])
        /// The slowest iterations: when (s since the loop began), claim and complete apart, for the reason.
        let slowest = Locked<[(at: Double, claim: Double, complete: Double)]>([])
        let loopStart = ContinuousClock.now
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let loopStartMonotonic = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        let workerLoop = Task {
            while !stop.withLock({ $0 }) {
                let begun = ContinuousClock.now
                guard let claimed = try await store.claim(worker: "bench-worker", limit: 1, lease: .seconds(60)).first else { break }
                let claimTook = seconds(since: begun)
                try await store.complete(id: claimed.id, worker: "bench-worker", result: "done")
                let took = seconds(since: begun)
                stalls.withLock { $0.append(took) }
                if took > 0.05 {
                    slowest.withLock { $0.append((seconds(since: loopStart) - took, claimTook, took - claimTook)) }
                }
            }
        }
        try await Task.sleep(for: .seconds(3))
        let alone = stalls.withLock { samples -> [Double] in
            defer { samples.removeAll() }
            return samples
        }
        let finishedQuery = "SELECT count(*) FROM delegations WHERE status IN ('completed', 'failed', 'cancelled')"
        let finishedBefore = try queryInt(reader, finishedQuery)
        let evictStart = ContinuousClock.now
        let output = Pipe()
        let evict = try SpawnedProcess(
            admin, ["evict", "--keep", "100", "--json", "--db", path], stdout: output.fileHandleForWriting.fileDescriptor, stderr: STDERR_FILENO)
        try output.fileHandleForWriting.close()
        // At most 60 s of it: the point is the worker's stalls, and a batch is a transaction, so a
        // SIGKILL midway loses nothing (the rest would go on the next run).
        let deadline = ContinuousClock.now + .seconds(60)
        while evict.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let finished = !evict.isRunning
        if !finished {
            evict.signal(SIGKILL)
            while evict.isRunning { try await Task.sleep(for: .milliseconds(10)) }
        }
        let evictSeconds = seconds(since: evictStart)
        // Two writers that never pause leave SQLite few moments to start the log over: how far it grew.
        print(String(format: "   write-ahead log after %.0f s of both writers: %.1f MB", evictSeconds, Double(fileSize(path + "-wal")) / 1_048_576))
        _ = finished ? output.fileHandleForReading.readDataToEndOfFile() : Data()
        stop.withLock { $0 = true }
        try await workerLoop.value
        let left = try queryInt(reader, finishedQuery)
        await store.close()
        let during = stalls.withLock { $0 }
        let evicted = finishedBefore + during.count - left  // the worker finished `during.count` meanwhile
        guard evicted > 0, !finished || evict.terminationStatus == 0 else { throw BenchError("evict failed (exit \(evict.terminationStatus))") }
        let worstAlone = alone.max() ?? .nan, worstDuring = during.max() ?? .nan
        print(String(format: "   claim+complete over 50 ms: %d during evict, %d alone; over 100 ms: %d during evict",
                     during.filter { $0 > 0.05 }.count, alone.filter { $0 > 0.05 }.count, during.filter { $0 > 0.1 }.count))
        for slow in slowest.withLock({ $0 }).sorted(by: { $0.claim + $0.complete > $1.claim + $1.complete }).prefix(5) {
            print(String(format: "   slow iteration at %.2f s into the loop (evict began at 3 s; CLOCK_MONOTONIC %.3f s, for `perf trace -T`): claim %.1f ms, complete %.1f ms",
                         slow.at, loopStartMonotonic + slow.at, slow.claim * 1000, slow.complete * 1000))
        }
        results.add(Result(
            row: "5. evict --keep 100 beside a worker", figure: String(format: "%d rows in %.1f s%@", evicted, evictSeconds, finished ? "" : " (stopped after 60 s)"),
            baseline: "-", ratio: nil, target: "(printed)", met: nil))
        results.add(Result(
            row: "5. worker's longest claim+complete during evict",
            figure: String(format: "%.1f ms (p99 %.1f ms, %d commits)", worstDuring * 1000, percentile(during.sorted(), 0.99) * 1000, during.count),
            baseline: String(format: "%.1f ms (same loop, no evict)", worstAlone * 1000), ratio: worstDuring / worstAlone,
            target: "< 100 ms", met: worstDuring < 0.100))
    }

    /// Bulk rows in a few large transactions, through the schema's triggers (events and outbox included).
    static func generate(_ path: String, rows: Int) async throws {
        let database = try Database(path: path, mode: .readWrite, busyTimeout: .seconds(30))
        try database.execute(script: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -200000")
        let chunk = 50_000
        var done = 0
        while done < rows {
            let count = min(chunk, rows - done)
            _ = try database.transaction {
                try database.execute(
                    """
                    WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                    INSERT INTO delegations (workspace_id, task, created_at)
                    SELECT 'ws-' || (i % 50), 'generated task ' || i,
                           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ((?3 - i) * 2592000.0 / ?3) || ' seconds')
                    FROM n
                    """, done + 1, done + count, rows)
            }
            done += count
        }
        let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        try database.transaction {
            try database.execute(
                "UPDATE delegations SET status = 'in_progress', lease_owner = 'generator', lease_expires_at = \(now), attempts = 1 WHERE rowid % 20 <> 0")
            try database.execute("UPDATE delegations SET status = 'completed', result = 'generated result ' || rowid WHERE status = 'in_progress' AND rowid % 10 <> 3")
            try database.execute("UPDATE delegations SET status = 'failed', error = 'generated failure ' || rowid WHERE status = 'in_progress'")
            try database.execute("UPDATE platform_outbox SET delivered_at = \(now) WHERE delivered_at IS NULL")
            // A history spread over 30 days: each one finished a few seconds to minutes after it was created.
            try database.execute(
                """
                UPDATE delegations SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '+' || (2 + rowid % 300) || ' seconds')
                WHERE finished_at IS NOT NULL
                """)
        }
        try database.execute(script: "PRAGMA wal_checkpoint(TRUNCATE); ANALYZE")
        try await indexEverything(path)
    }

    /// Rows written by raw SQL wait in the search index's queue for a store's indexer to index them 512 at
    /// a time (minutes at a million rows); after a bulk load the index is built in one go instead.
    static func indexEverything(_ path: String) async throws {
        // A copy made by an older build: migrated first (the queue the index file reads is 0007's).
        await (try DelegationStore(StoreConfiguration(path: path), logger: quietLogger("bench"))).close()
        let database = try Database(path: path, mode: .readWrite, busyTimeout: .seconds(30))
        try SearchIndex.attach(database, databasePath: path, create: true)
        try SearchIndex.setUp(database)
        try SearchIndex.rebuild(database)
        try database.execute(script: "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA search.wal_checkpoint(TRUNCATE)")
    }

    static func median(_ binary: String, _ arguments: [String], runs: Int = 5) throws -> Double {
        var times: [Double] = []
        for _ in 0..<runs {
            let start = ContinuousClock.now
            let process = try SpawnedProcess(binary, arguments)
            process.waitUntilExit()
            times.append(seconds(since: start))
            guard process.terminationStatus == 0 else { throw BenchError("\(arguments.first ?? "") exited \(process.terminationStatus)") }
        }
        return times.sorted()[runs / 2]
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
