import DelegationStore
import Foundation
import Logging
import SQLiteDatabase
import Synchronization

// delegation-bench: every figure with a baseline measured in the same run, and the ratio between them.
//
//   swift run -c release delegation-bench                    default sizes, several minutes
//   swift run -c release delegation-bench --admin-rows 1000000 --only admin
//   swift run -c release delegation-bench --only inflight,longtasks,outbox
//
// The worker rows (inflight, longtasks) run the `delegation-worker` binary built beside this one:
// build both products in the same scratch path (`--product delegation-worker`, `--product delegation-bench`;
// `delegation-admin` too for row 5). BENCH_WORKER_WRAPPER="/usr/bin/heaptrack -o /tmp/worker" runs the busy
// worker of those rows under a profiler (diagnosis only: the RSS figures are then the wrapper's).
//
// Rows: 1 store (per-operation vs the C API), 2 group (64 concurrent claim/complete vs row 1), 3 e2e
// (worker vs the bare HTTP ceiling), 4 inflight (10,000 delegations to a peer whose tasks take 20 s, run
// non-blocking and handed over: peak RSS of the worker process vs the same worker idle, executions per
// messageId, claim-to-completion), 5 admin (big database), 6 longtasks (1,000 tasks of 30 s with
// `--timeout 5`: each executed exactly once), 7 outbox (claiming mirror calls with 1,000 vs 100,000
// waiting behind a platform outage; the pre-0004 claim query for contrast).

struct BenchOptions {
    var jobs = 20_000
    var groupJobs = 20_000
    var e2e = 5_000
    var inflight = 10_000
    var hold = 20.0
    var inflightConcurrency: Int?
    var pollInterval = 5
    var longTasks = 1_000
    var longHold = 30.0
    var longTimeout = 5
    var outboxSmall = 1_000
    var outboxLarge = 100_000
    var outboxClaims = 300
    var adminRows = 100_000
    /// A history kept by an earlier `--only admin --keep` run, copied instead of generated (minutes at 1M rows).
    var adminFrom: String?
    var only: Set<String> = []
    /// Leave the databases in --dir for a look afterwards.
    var keep = false
    var directory = NSTemporaryDirectory() + "delegation-bench-\(UUID().uuidString.prefix(8))"

    static func parse(_ arguments: [String]) -> BenchOptions {
        var options = BenchOptions()
        var index = 0
        func next() -> String {
            index += 1
            guard index < arguments.count else { usage("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        /// Sizes and durations in a range the rows can use (a huge --hold would overflow milliseconds).
        func int(_ name: String, _ range: ClosedRange<Int> = 1...10_000_000) -> Int {
            guard let value = Int(next()), range.contains(value) else {
                usage("\(name) needs a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--jobs": options.jobs = int("--jobs")
            case "--group-jobs": options.groupJobs = int("--group-jobs")
            case "--e2e": options.e2e = int("--e2e")
            case "--inflight": options.inflight = int("--inflight")
            case "--hold": options.hold = Double(int("--hold", 1...86_400))
            case "--inflight-concurrency": options.inflightConcurrency = int("--inflight-concurrency")
            case "--poll-interval": options.pollInterval = int("--poll-interval", 1...86_400)
            case "--longtasks": options.longTasks = int("--longtasks")
            case "--long-hold": options.longHold = Double(int("--long-hold", 1...86_400))
            case "--long-timeout": options.longTimeout = int("--long-timeout", 1...86_400)
            case "--outbox-small": options.outboxSmall = int("--outbox-small", 24...10_000_000)
            case "--outbox-large": options.outboxLarge = int("--outbox-large", 24...10_000_000)
            case "--outbox-claims": options.outboxClaims = int("--outbox-claims")
            case "--admin-rows": options.adminRows = int("--admin-rows")
            case "--admin-from": options.adminFrom = next()
            case "--only":
                let rows = next().split(separator: ",").map(String.init)
                if let unknown = rows.first(where: { !BenchOptions.rows.contains($0) }) { usage("--only: unknown row \(unknown)") }
                options.only.formUnion(rows)
            case "--dir": options.directory = next()
            case "--keep": options.keep = true
            case "--help", "-h": usage(nil)
            default: usage("unknown argument \(arguments[index])")
            }
            index += 1
        }
        return options
    }

    static func usage(_ problem: String?) -> Never {
        let text = """
            usage: delegation-bench [--only store,group,e2e,inflight,admin,longtasks,outbox] [--dir PATH] [--keep]
                                    [--jobs N] [--group-jobs N] [--e2e N]
                                    [--inflight N] [--hold SECONDS] [--inflight-concurrency N] [--poll-interval SECONDS]
                                    [--longtasks N] [--long-hold SECONDS] [--long-timeout SECONDS]
                                    [--outbox-small N] [--outbox-large N] [--outbox-claims N] [--admin-rows N] [--admin-from PATH]

              store      1. enqueue/claim/complete through the store vs the same SQL through the C API (--jobs, 20000)
              group      2. 64 tasks claiming and completing through one store (--group-jobs, 20000)
              e2e        3. delegations through a worker vs the bare HTTP ceiling (--e2e, 5000)
              inflight   4. delegations to a peer whose tasks take --hold s (10000, 20 s), the worker a child process:
                            peak RSS vs the same worker idle, executions per messageId, claim-to-completion
                            (--inflight-concurrency: the worker's --concurrency, default one slot per delegation;
                --poll-interval: the worker's, 5 s, for rows 4 and 6)
              admin      5. the admin CLI on a big history, evict beside a worker (--admin-rows, 100000;
                            --admin-from: copy the admin.db an earlier --keep run left instead of generating one)
              longtasks  6. tasks of --long-hold s (1000, 30 s) with the worker's --timeout --long-timeout (5):
                            each executed exactly once, all complete, claim-to-completion
              outbox     7. claiming mirror calls with --outbox-small vs --outbox-large waiting (1000, 100000),
                            --outbox-claims claims timed at each size (300)
            """
        if let problem {
            FileHandle.standardError.write(Data("delegation-bench: \(problem)\n\(text)\n".utf8))
            exit(2)
        }
        print(text)
        exit(0)
    }

    func wants(_ row: String) -> Bool { only.isEmpty || only.contains(row) }

    static let rows: Set<String> = ["store", "group", "e2e", "inflight", "admin", "longtasks", "outbox"]
}

/// One line of the results table.
struct Result {
    var row: String
    var figure: String
    var baseline: String
    var ratio: Double?
    var target: String
    var met: Bool?
}

final class Results: @unchecked Sendable {
    var rows: [Result] = []

    func add(_ result: Result) {
        rows.append(result)
        let ratio = result.ratio.map { String(format: "%.2f×", $0) } ?? "-"
        let verdict = result.met.map { $0 ? "met" : "MISSED" } ?? ""
        print("  \(result.row): \(result.figure) | baseline \(result.baseline) | ratio \(ratio) | target \(result.target) \(verdict)")
    }

    var markdown: String {
        var text = "| measurement | figure | baseline (same run) | ratio | target |\n|---|---|---|---|---|\n"
        for row in rows {
            let ratio = row.ratio.map { String(format: "%.2f×", $0) } ?? "-"
            let verdict = row.met.map { $0 ? " ✔" : " ✘ missed" } ?? ""
            text += "| \(row.row) | \(row.figure) | \(row.baseline) | \(ratio) | \(row.target)\(verdict) |\n"
        }
        return text
    }
}

func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .error
    return logger
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
}

func rate(_ count: Int, _ seconds: Double) -> String { String(format: "%.0f/s", Double(count) / seconds) }

/// Runs one row and says how long it took (its setup included).
func timed<T>(_ row: String, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
    let start = ContinuousClock.now
    let value = try await body()
    print(String(format: "   (row %@ took %.1f s)", row, seconds(since: start)))
    return value
}

/// "p50 …, p99 …, max …" of durations in seconds.
func spread(_ values: [Double]) -> String {
    let sorted = values.sorted()
    return String(
        format: "p50 %.1f s, p99 %.1f s, max %.1f s", percentile(sorted, 0.5), percentile(sorted, 0.99), sorted.last ?? .nan)
}

/// A connection of the bench's own on a store's file, for seeding and reading figures back (the store's
/// public API is named operations only; the schema's triggers run the same either way).
func openDatabase(_ path: String, readOnly: Bool = false) throws -> Database {
    let database = try Database(path: path, mode: readOnly ? .readOnly : .readWrite, busyTimeout: .seconds(30))
    if !readOnly { try database.execute(script: "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY") }
    return database
}

/// One integer a query returns.
func queryInt(_ database: Database, _ sql: String, _ arguments: any SQLiteBindable...) throws -> Int {
    try database.queryFirst(sql, arguments: arguments)?[0].int ?? 0
}

/// The directory holding this executable (the worker and admin binaries are built beside it).
let productDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()

@main
struct Bench {
    static func main() async {
        let options = BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))
        let results = Results()
        do {
            try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
            #if DEBUG
            print("warning: a debug build; run `swift run -c release delegation-bench` for figures worth quoting")
            #endif
            print("delegation-bench: files in \(options.directory)")
            var perOperationFull: Double?
            if options.wants("store") {
                perOperationFull = try await timed("store") { try await StoreBench.perOperation(options, results) }
            }
            if options.wants("group") {
                try await timed("group") { try await StoreBench.groupCommit(options, results, perOperationFull: perOperationFull) }
            }
            if options.wants("e2e") { try await timed("e2e") { try await WorkerBench.endToEnd(options, results) } }
            if options.wants("inflight") { try await timed("inflight") { try await WorkerBench.inFlight(options, results) } }
            if options.wants("admin") { try await timed("admin") { try await AdminBench.run(options, results) } }
            if options.wants("longtasks") { try await timed("longtasks") { try await WorkerBench.longTasks(options, results) } }
            if options.wants("outbox") { try await timed("outbox") { try await OutboxBench.run(options, results) } }
            print("\n" + results.markdown)
            if !options.keep { try? FileManager.default.removeItem(atPath: options.directory) }
        } catch {
            FileHandle.standardError.write(Data("delegation-bench: \(error)\n".utf8))
            exit(1)
        }
    }
}

/// A value shared between tasks, behind a lock.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}
