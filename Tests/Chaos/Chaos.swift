import ChildProcess
import DelegationFakes
import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import Logging
import Synchronization

// delegation-chaos: several real `delegation-worker` processes on one database, a loopback peer and
// platform, delegations enqueued while faults are injected at random: SIGKILLs of a random worker
// (restarted under a new name), platform outages (the fake platform stops, then starts again on the
// same port), another process holding the database's write lock past the workers' busy timeout, and a
// peer that hangs past the request timeout. At the end every promise the queue makes is checked and
// the figures printed; exit 1 if one broke.
//
//   swift run -c release delegation-chaos --delegations 10000 --kills 50 --outages 3 --locks 5   (scripts/chaos.sh)
//   delegation-chaos --delegations 500 --kills 10 --outages 1 --locks 1                          (the short form in swift test)

struct Options {
    var delegations = 10_000
    var kills = 50
    var outages = 0
    var locks = 0
    var hangs = true
    var workers = 4
    var concurrency = 8
    var killInterval = 0.2
    var outageSeconds = 10.0
    var lockSeconds = 2.5
    var lease = 5.0
    var timeout = 900.0
    var directory: String?

    static let usage = """
        usage: delegation-chaos [--delegations M] [--kills K] [--outages O] [--locks L] [--no-hangs]
                                [--workers N] [--concurrency C] [--kill-interval SECONDS]
                                [--outage-seconds SECONDS] [--lock-seconds SECONDS] [--lease SECONDS]
                                [--timeout SECONDS] [--dir PATH]
        """

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("\(arguments[index - 1]) needs a value\n\(usage)") }
            return arguments[index]
        }
        func number(_ text: String, _ name: String) -> Double {
            guard let number = Double(text), number >= 0, number.isFinite, number < 1e9 else {
                fail("\(name) must be a number ≥ 0, not \(text)")
            }
            return number
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--delegations": options.delegations = Int(number(value(), "--delegations"))
            case "--kills": options.kills = Int(number(value(), "--kills"))
            case "--outages": options.outages = Int(number(value(), "--outages"))
            case "--locks": options.locks = Int(number(value(), "--locks"))
            case "--no-hangs": options.hangs = false
            case "--workers": options.workers = max(1, Int(number(value(), "--workers")))
            case "--concurrency": options.concurrency = max(1, Int(number(value(), "--concurrency")))
            case "--kill-interval": options.killInterval = number(value(), "--kill-interval")
            case "--outage-seconds": options.outageSeconds = number(value(), "--outage-seconds")
            case "--lock-seconds": options.lockSeconds = number(value(), "--lock-seconds")
            case "--timeout": options.timeout = number(value(), "--timeout")
            case "--lease": options.lease = max(1, number(value(), "--lease"))
            case "--dir": options.directory = value()
            case "--help", "-h":
                print(usage)
                exit(0)
            default: fail("unknown argument \(arguments[index])\n\(usage)")
            }
            index += 1
        }
        return options
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("delegation-chaos: \(message)\n".utf8))
    exit(2)
}

/// What the peer does with a delegation, decided by its id so the expected end state is known.
enum Fate: CaseIterable {
    case completes, busyOnceThenCompletes, queuedThenCompleted, longTask, hangsOnceThenCompletes,
         refusedByJSONRPC, serverErrorEveryTime

    init(_ delegationID: String, hangs: Bool) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in delegationID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        switch hash % 100 {
        case 0..<60: self = .completes
        case 60..<70: self = .busyOnceThenCompletes
        case 70..<80: self = .queuedThenCompleted
        case 80..<85: self = .longTask
        case 85..<90: self = hangs ? .hangsOnceThenCompletes : .completes
        case 90..<95: self = .refusedByJSONRPC
        default: self = .serverErrorEveryTime
        }
    }

    var expectedStatus: String {
        switch self {
        case .completes, .busyOnceThenCompletes, .queuedThenCompleted, .longTask, .hangsOnceThenCompletes: "completed"
        case .refusedByJSONRPC, .serverErrorEveryTime: "failed"
        }
    }

    /// Sends the peer should see without any fault of ours.
    func expectedSends(retryAttempts: Int) -> Int {
        switch self {
        case .busyOnceThenCompletes, .hangsOnceThenCompletes: 2
        case .serverErrorEveryTime: retryAttempts
        default: 1
        }
    }
}

/// A running `delegation-worker` child.
final class WorkerProcess: Sendable {
    let process: SpawnedProcess
    let name: String

    init(binary: String, arguments: [String], name: String, log: String, environment: [String: String] = [:]) throws {
        self.name = name
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        handle?.seekToEndOfFile()
        defer { try? handle?.close() }
        process = try SpawnedProcess(
            binary, arguments + ["--worker-id", name],
            environment: SpawnedProcess.currentEnvironment().merging(environment) { $1 },
            stderr: handle?.fileDescriptor
        )
    }

    func signal(_ signal: Int32) { process.signal(signal) }

    func waitForExit(timeout: Double) async -> Bool {
        await process.waitForExit(timeout: .milliseconds(Int(timeout * 1000)))
    }
}

@main
struct Chaos {
    /// A discovery the platform refuses spends an attempt, so the backoff must outlast the platform's
    /// downtime: the first delay is a quarter of all outages together (they can fall back to back), so the
    /// three retries a row may spend on them span ≥ 0.8 × 7 × ¼ = 1.4 × the total; a kill mid-attempt spends
    /// one more (the take-over starts a new attempt), and the last two stay for a peer's own fault (a 503 or
    /// a hang) and the send that completes.
    static let retryAttempts = 6
    static let requestTimeout = 2.0
    static let busyTimeoutMilliseconds = 500

    static func main() async {
        let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
        do {
            exit(try await run(options) ? 0 : 1)
        } catch {
            fail("\(error)")
        }
    }

    static func run(_ options: Options) async throws -> Bool {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let workerBinary = here.appendingPathComponent("delegation-worker").path
        let adminBinary = here.appendingPathComponent("delegation-admin").path
        let probeBinary = here.appendingPathComponent("store-probe").path
        for binary in [workerBinary, adminBinary, probeBinary] where !FileManager.default.isExecutableFile(atPath: binary) {
            fail("\(binary) is missing: build the package first (swift build)")
        }
        let directory = options.directory ?? (NSTemporaryDirectory() + "delegation-chaos-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let database = directory + "/chaos.db"
        print("chaos: \(options.delegations) delegations, \(options.workers) workers × concurrency \(options.concurrency); faults: \(options.kills) kills, \(options.outages) platform outages of \(options.outageSeconds) s, \(options.locks) write locks held \(options.lockSeconds) s, peer hangs \(options.hangs ? "on" : "off"); files in \(directory)")

        // The loopback platform and one peer whose behaviour per delegation is fixed by its id.
        // The list shows every row here (not the real platform's newest 50): this run measures faults, not
        // the window, whose loss of outcomes is tested on its own (FaultModelTests).
        let platform = FakePlatform(workspaceID: "chaos-agent", token: "chaos-token", listWindow: 1_000_000)
        try await platform.start()
        let sends = Mutex<[String: Int]>([:])
        let hung = Mutex(0)
        let hangs = options.hangs
        let peer = FakePeer(dialect: .v03) { received in
            let id = received.delegationID ?? ""
            let count = sends.withLock { sends -> Int in
                sends[id, default: 0] += 1
                return sends[id]!
            }
            let delay = Duration.milliseconds(Int.random(in: 0...200))
            switch Fate(id, hangs: hangs) {
            case .longTask:
                return .longTask(.milliseconds(Int.random(in: 500...1500)), then: .completed("done after a while"))
            case .hangsOnceThenCompletes:
                if count == 1 {
                    hung.withLock { $0 += 1 }
                    return .delayed(.seconds(requestTimeout * 2), .completed("too late"))
                }
                return .delayed(delay, .completed("done after a hang"))
            case .completes:
                return .delayed(delay, .completed("done \(id.prefix(8))"))
            case .busyOnceThenCompletes:
                return .delayed(delay, count == 1 ? .http(503, #"{"busy":true}"#, headers: [("Retry-After", "0")]) : .completed("done after busy"))
            case .queuedThenCompleted:
                Task {
                    try? await Task.sleep(for: .milliseconds(300))
                    platform.resolve(delegationID: id, status: "completed", preview: "drained by the platform")
                }
                return .delayed(delay, .queued)
            case .refusedByJSONRPC:
                return .delayed(delay, .jsonRPCError(-32000, "peer refused the task"))
            case .serverErrorEveryTime:
                return .delayed(delay, .http(500, "internal error", headers: []))
            }
        }
        try await peer.start()
        platform.register("chaos-peer", .url(peer.url))

        let retryDelay = options.outages > 0 ? max(0.05, Double(options.outages) * options.outageSeconds / 4) : 0.05
        let arguments = [
            "--db", database, "--platform-url", platform.baseURL, "--workspace-id", "chaos-agent", "--token", "chaos-token",
            "--retry-attempts", String(retryAttempts), "--retry-delay", String(retryDelay),
            "--poll-interval", "0.2", "--lease", String(options.lease),
            "--timeout", String(requestTimeout), "--max-takeovers", "5",
            "--concurrency", String(options.concurrency), "--shutdown-grace", "1", "--log-level", "error",
        ]
        // The schema exists before the workers race to create it.
        var logger = Logger(label: "delegation-chaos")
        logger.logLevel = .warning
        let store = try DelegationStore(StoreConfiguration(path: database, sourceWorkspaceID: "chaos-agent"), logger: logger)
        // The verdict reads the file as any other client would: its own read-only connection.
        func inspect<T>(_ body: (Database) throws -> T) throws -> T {
            try body(try Database(path: database, mode: .readOnly))
        }
        var generation = 0
        func start(_ slot: Int) throws -> WorkerProcess {
            generation += 1
            return try WorkerProcess(
                binary: workerBinary, arguments: arguments, name: "chaos-w\(slot)-g\(generation)", log: directory + "/worker-\(slot).log",
                environment: ["DELEGATION_BUSY_TIMEOUT_MS": String(busyTimeoutMilliseconds)])
        }
        var workers = try (0..<options.workers).map { try start($0) }
        let started = Date()

        // Enqueue while the workers run and the killer kills.
        let enqueue = Task {
            await withTaskGroup(of: Void.self) { lanes in
                let laneCount = 16
                for lane in 0..<laneCount {
                    lanes.addTask {
                        for index in stride(from: lane, to: options.delegations, by: laneCount) {
                            _ = try? await store.enqueue(workspaceID: "chaos-peer", task: "chaos task \(index)")
                        }
                    }
                }
            }
        }
        // The faults, in a random order, one at a time, ~killInterval apart.
        enum Fault { case kill, outage, lock }
        let faults = (Array(repeating: Fault.kill, count: options.kills) + Array(repeating: .outage, count: options.outages)
            + Array(repeating: .lock, count: options.locks)).shuffled()
        var kills = 0, outages = 0, locks = 0
        for fault in faults {
            try await Task.sleep(for: .milliseconds(Int(options.killInterval * 1000 * Double.random(in: 0.75...1.25))))
            switch fault {
            case .kill:
                let slot = Int.random(in: 0..<workers.count)
                workers[slot].signal(SIGKILL)
                _ = await workers[slot].waitForExit(timeout: 10)
                kills += 1
                workers[slot] = try start(slot)
            case .outage:
                // Connections are refused meanwhile: discovery, mirror calls and the list all fail.
                await platform.stop()
                try await Task.sleep(for: .milliseconds(Int(options.outageSeconds * 1000)))
                try await platform.start()
                outages += 1
            case .lock:
                // Another process (an operator's sqlite3, a backup) holds the write lock past the busy timeout.
                let probe = try SpawnedProcess(probeBinary, ["lock", database, String(options.lockSeconds)], stderr: STDERR_FILENO)
                while probe.isRunning { try await Task.sleep(for: .milliseconds(20)) }
                if probe.terminationStatus == 0 { locks += 1 }
            }
        }
        await enqueue.value
        print(String(format: "chaos: %d kills, %d outages, %d held locks done after %.1f s; waiting for the queue to drain",
                     kills, outages, locks, Date().timeIntervalSince(started)))

        // Drained: nothing live, nothing left to mirror.
        // A row whose peer fails every time spends all its attempts: up to 1.2 × 31 first delays of backoff.
        let drainTimeout = options.timeout + 1.2 * Double((1 << (retryAttempts - 1)) - 1) * retryDelay
        let deadline = Date().addingTimeInterval(drainTimeout)
        var drained = false
        while Date() < deadline {
            let remaining = try await store.remainingWork()
            let total = try inspect { try $0.queryFirst("SELECT count(*) FROM delegations")?[0].int ?? 0 }
            if remaining.live == 0, remaining.outbox == 0, remaining.peerCancels == 0, total >= options.delegations {
                drained = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let elapsed = Date().timeIntervalSince(started)
        for worker in workers { worker.signal(SIGTERM) }
        for worker in workers where !(await worker.waitForExit(timeout: 15)) { worker.signal(SIGKILL) }

        // The verdict.
        var problems: [String] = []
        if !drained { problems.append(String(format: "the queue did not drain within %.0f s", drainTimeout)) }
        let rows = try inspect { database in
            try database.query("SELECT id, status, message_id FROM delegations").map {
                ($0[0].string ?? "", $0[1].string ?? "", $0[2].string ?? "")
            }
        }
        if rows.count != options.delegations { problems.append("\(rows.count) rows, expected \(options.delegations) (lost or duplicated)") }
        let live = rows.filter { !["completed", "failed", "cancelled"].contains($0.1) }.count
        if live > 0 { problems.append("\(live) delegation(s) not terminal") }
        let wrong = rows.filter { $0.1 != Fate($0.0, hangs: hangs).expectedStatus }
        if !wrong.isEmpty {
            problems.append("\(wrong.count) delegation(s) ended in the wrong state, e.g. \(wrong.prefix(3).map { "\($0.0): \($0.1)" })")
        }

        let integrity = try inspect { try $0.queryFirst("PRAGMA integrity_check")?[0].string ?? "" }
        if integrity != "ok" { problems.append("integrity_check: \(integrity)") }
        let checkOutput = Pipe()
        let check = try SpawnedProcess(
            adminBinary, ["check", "--json", "--db", database], stdout: checkOutput.fileHandleForWriting.fileDescriptor, stderr: STDERR_FILENO)
        try checkOutput.fileHandleForWriting.close()
        let checkText = String(decoding: checkOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        let checkJSON = try? JSONValue.parse(checkText)
        if check.terminationStatus != 0 || checkJSON?["ok"] != .bool(true) {
            problems.append("delegation-admin check failed: \(checkText.prefix(600))")
        }

        // The peer: every messageId at least once; sends beyond each fate's own retries are duplicates.
        let received = peer.sends
        let seenMessageIDs = Set(received.compactMap(\.messageID))
        let unseen = rows.filter { !seenMessageIDs.contains($0.2) }.count
        if unseen > 0 { problems.append("\(unseen) delegation(s) never reached the peer") }
        let sendCounts = sends.withLock { $0 }
        var duplicateSends = 0
        for row in rows {
            duplicateSends += max(0, (sendCounts[row.0] ?? 0) - Fate(row.0, hangs: hangs).expectedSends(retryAttempts: retryAttempts))
        }
        // Each kill can repeat at most the requests the killed worker had in flight.
        let duplicateBound = kills * options.concurrency
        if duplicateSends > duplicateBound {
            problems.append("\(duplicateSends) duplicate sends, more than kills × concurrency = \(duplicateBound)")
        }

        // The outbox: everything delivered; the platform saw each call at least once.
        let outbox = try inspect { database in
            try database.query(
                """
                SELECT kind, count(*), count(delivered_at), count(dead_at) FROM platform_outbox GROUP BY kind
                """
            ).map { ($0[0].string ?? "", $0[1].int ?? 0, $0[2].int ?? 0, $0[3].int ?? 0) }
        }
        var duplicateMirrors = 0
        for (kind, total, delivered, dead) in outbox {
            if delivered != total { problems.append("outbox \(kind): \(total - delivered) undelivered (\(dead) dead)") }
            let accepted: Int
            switch kind {
            case "record": accepted = platform.records.count
            case "update": accepted = platform.updates.count
            default: accepted = platform.notifications.count
            }
            if accepted < total { problems.append("platform accepted \(accepted) \(kind) calls for \(total) outbox rows") }
            duplicateMirrors += max(0, accepted - total)
        }
        // Long tasks ran once at the peer, except where a kill fell between the peer's accepting the task and
        // the hand-over's commit: the next holder sends it again (same messageId). Each such rerun is also a
        // duplicate send, so the same bound holds, and without kills there are none.
        let executions = peer.executions
        let reruns = executions.values.reduce(0) { $0 + max(0, $1 - 1) }
        if reruns > kills * options.concurrency {
            problems.append("\(reruns) long task reruns at the peer, more than kills × concurrency = \(kills * options.concurrency)")
        }
        // ... and every rerun row shows the take-over that resent it: a rerun without one is a worker
        // sending a task its peer already runs.
        let rerunMessageIDs = Set(executions.filter { $0.value > 1 }.keys)
        let rerunWithoutTakeover = try rows.filter { rerunMessageIDs.contains($0.2) }.filter { row in
            try inspect {
                try $0.queryFirst("SELECT count(*) FROM delegation_events WHERE delegation_id = ? AND kind = 'lease'", row.0)?[0].int ?? 0
            } == 0
        }
        if !rerunWithoutTakeover.isEmpty {
            problems.append("\(rerunWithoutTakeover.count) long task(s) ran again at the peer without a lease take-over, e.g. \(rerunWithoutTakeover.prefix(3).map(\.0))")
        }
        // A kill or an outage can repeat at most the mirror calls a worker had posted but not yet marked: its window.
        let mirrorBound = (kills + outages * options.workers) * 128
        if duplicateMirrors > mirrorBound {
            problems.append("\(duplicateMirrors) duplicate mirror calls, more than kills × outbox window = \(mirrorBound)")
        }
        let recordIDs = platform.records.compactMap { $0["delegation_id"]?.stringValue }
        if Set(recordIDs) != Set(rows.map(\.0)) { problems.append("platform records do not cover exactly the delegations") }

        let counts = Dictionary(grouping: rows, by: \.1).mapValues(\.count)
        let events = try inspect { try $0.queryFirst("SELECT count(*), count(*) FILTER (WHERE kind = 'lease') FROM delegation_events") }
        let summary: JSONValue = [
            "delegations": .int(rows.count), "expected": .int(options.delegations), "kills": .int(kills),
            "outages": .int(outages), "held_locks": .int(locks), "peer_hangs": .int(hung.withLock { $0 }),
            "long_tasks": .int(peer.executions.count), "long_task_reruns": .int(reruns),
            "workers": .int(options.workers), "concurrency": .int(options.concurrency),
            "seconds": .double((elapsed * 10).rounded() / 10),
            "completed": .int(counts["completed"] ?? 0), "failed": .int(counts["failed"] ?? 0),
            "not_terminal": .int(live), "wrong_outcome": .int(wrong.count),
            "integrity_check": .string(integrity), "admin_check_ok": .bool(checkJSON?["ok"] == .bool(true)),
            "peer_sends": .int(received.count), "message_ids_seen": .int(seenMessageIDs.count),
            "duplicate_sends": .int(duplicateSends), "duplicate_bound": .int(duplicateBound),
            "duplicate_mirror_calls": .int(duplicateMirrors), "duplicate_mirror_bound": .int(mirrorBound),
            "events": .int(events?[0].int ?? 0), "lease_takeovers": .int(events?[1].int ?? 0),
            "problems": .array(problems.map(JSONValue.string)),
        ]
        print(String(format: "chaos: %d delegations in %.1f s (%.0f/s) with %d kills, %d platform outages, %d held write locks, %d peer hangs",
                     rows.count, elapsed, Double(rows.count) / elapsed, kills, outages, locks, hung.withLock { $0 }))
        print("chaos: \(peer.executions.count) long tasks followed at the peer, \(reruns) reruns, \(rerunWithoutTakeover.count) of them without a take-over")
        print("chaos: \(counts["completed"] ?? 0) completed, \(counts["failed"] ?? 0) failed, \(live) not terminal, \(wrong.count) in the wrong state")
        print("chaos: peer saw \(seenMessageIDs.count) messageIds in \(received.count) sends; \(duplicateSends) duplicate sends (bound \(duplicateBound)); \(duplicateMirrors) duplicate mirror calls; \(events?[1].int ?? 0) lease take-overs")
        print("chaos: integrity_check \(integrity); delegation-admin check \(checkJSON?["ok"] == .bool(true) ? "ok" : "FAILED")")
        print(problems.isEmpty ? "chaos: PASS" : "chaos: FAIL\n  " + problems.joined(separator: "\n  "))
        print("CHAOS_SUMMARY " + summary.serialized)
        await store.close()
        await peer.stop()
        await platform.stop()
        if problems.isEmpty, options.directory == nil { try? FileManager.default.removeItem(atPath: directory) }
        return problems.isEmpty
    }
}
