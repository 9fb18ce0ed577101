import DelegationStore
import Foundation
import Logging
import Synchronization

// delegation-bench: every figure with a baseline measured in the same run, and the ratio between them.
//
//   swift run -c release delegation-bench                    default sizes, a few minutes
//   swift run -c release delegation-bench --admin-rows 1000000 --only admin
//
// Rows: store (per-operation vs the C API), group (64 concurrent claim/complete vs row 1), e2e (worker
// vs the bare HTTP ceiling), inflight (10,000 held requests: RSS and claim-to-send), admin (big database).

struct BenchOptions {
    var jobs = 20_000
    var groupJobs = 20_000
    var e2e = 5_000
    var inflight = 10_000
    var hold = 20.0
    var adminRows = 100_000
    var only: Set<String> = []
    var directory = NSTemporaryDirectory() + "delegation-bench-\(UUID().uuidString.prefix(8))"

    static func parse(_ arguments: [String]) -> BenchOptions {
        var options = BenchOptions()
        var index = 0
        func next() -> String {
            index += 1
            guard index < arguments.count else { usage("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        func int(_ name: String) -> Int {
            guard let value = Int(next()), value > 0 else { usage("\(name) needs a whole number > 0") }
            return value
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--jobs": options.jobs = int("--jobs")
            case "--group-jobs": options.groupJobs = int("--group-jobs")
            case "--e2e": options.e2e = int("--e2e")
            case "--inflight": options.inflight = int("--inflight")
            case "--hold": options.hold = Double(int("--hold"))
            case "--admin-rows": options.adminRows = int("--admin-rows")
            case "--only": options.only.formUnion(next().split(separator: ",").map(String.init))
            case "--dir": options.directory = next()
            case "--help", "-h": usage(nil)
            default: usage("unknown argument \(arguments[index])")
            }
            index += 1
        }
        return options
    }

    static func usage(_ problem: String?) -> Never {
        let text = """
            usage: delegation-bench [--only store,group,e2e,inflight,admin] [--jobs N] [--group-jobs N]
                                    [--e2e N] [--inflight N] [--hold SECONDS] [--admin-rows N] [--dir PATH]
            """
        if let problem {
            FileHandle.standardError.write(Data("delegation-bench: \(problem)\n\(text)\n".utf8))
            exit(2)
        }
        print(text)
        exit(0)
    }

    func wants(_ row: String) -> Bool { only.isEmpty || only.contains(row) }
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
                perOperationFull = try await StoreBench.perOperation(options, results)
            }
            if options.wants("group") {
                try await StoreBench.groupCommit(options, results, perOperationFull: perOperationFull)
            }
            if options.wants("e2e") { try await WorkerBench.endToEnd(options, results) }
            if options.wants("inflight") { try await WorkerBench.inFlight(options, results) }
            if options.wants("admin") { try await AdminBench.run(options, results) }
            print("\n" + results.markdown)
            try? FileManager.default.removeItem(atPath: options.directory)
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
