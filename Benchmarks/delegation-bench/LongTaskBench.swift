import ChildProcess
import DelegationFakes
import DelegationStore
import Foundation
import SQLiteDatabase

/// Rows 4 and 6: the `delegation-worker` binary (a child process, built beside this one) against a peer
/// whose tasks run for a long time. The worker sends non-blocking; the peer answers `submitted` at once
/// and `working` on tasks/get until the task's time is up; the worker hands the row over and polls it
/// every `--poll-interval`, holding nothing in between.
extension WorkerBench {
    /// Row 4: thousands of long tasks at once; the worker's peak RSS against the same worker idle.
    static func inFlight(_ options: BenchOptions, _ results: Results) async throws {
        let count = options.inflight
        let concurrency = min(options.inflightConcurrency ?? count, 100_000)
        print("""

            4. in flight: \(count) delegations to a peer whose tasks take \(Int(options.hold)) s (answered non-blocking, \
            handed over, polled every \(options.pollInterval) s), --concurrency \(concurrency), worker a child process
            """)
        let run = try await runLongTasks(
            options, name: "inflight", count: count, hold: options.hold,
            flags: ["--concurrency", String(concurrency), "--lease", "120", "--timeout", "300"], measureIdle: true)

        results.add(Result(
            row: "4. \(count) in flight, peer tasks take \(Int(options.hold)) s",
            figure: "\(run.completed) of \(count) completed in " + String(format: "%.1f s", run.busy.seconds),
            baseline: String(format: "%.0f s (one task's duration)", options.hold), ratio: run.busy.seconds / options.hold,
            target: "all complete", met: run.completed == count))
        if let idle = run.idle {
            results.add(Result(
                row: "4. peak RSS of the worker process", figure: String(format: "%.0f MB", run.busy.peakMB),
                baseline: String(format: "%.0f MB (the same worker binary, idle %.0f s)", idle.peakMB, idle.seconds),
                ratio: run.busy.peakMB / idle.peakMB, target: "< 150 MB", met: run.busy.peakMB < 150))
        }
        results.add(run.executionsResult(row: "4. executions per messageId at the peer"))
        results.add(Result(
            row: "4. claim-to-completion (first claim → finished_at)", figure: spread(run.claimToCompletion),
            baseline: String(format: "%.0f s (one task's duration)", options.hold),
            ratio: percentile(run.claimToCompletion.sorted(), 0.5) / options.hold, target: "(printed)", met: nil))
        results.add(Result(
            row: "4. hand-over-to-completion (accepted_at → finished_at)", figure: spread(run.handOverToCompletion),
            baseline: String(format: "%.0f s + poll interval %d s", options.hold, options.pollInterval),
            ratio: percentile(run.handOverToCompletion.sorted(), 0.5) / options.hold, target: "(printed)", met: nil))
        results.add(Result(
            row: "4. claim-to-send latency", figure: spread(run.claimToSend), baseline: "-", ratio: nil,
            target: "(printed)", met: nil))
    }

    /// Row 6: tasks far longer than the worker's request timeout, run once each.
    static func longTasks(_ options: BenchOptions, _ results: Results) async throws {
        let count = options.longTasks
        print("""

            6. long tasks: \(count) tasks of \(Int(options.longHold)) s each, worker --timeout \(options.longTimeout) \
            --concurrency 64 --poll-interval \(options.pollInterval), a child process
            """)
        let run = try await runLongTasks(
            options, name: "longtasks", count: count, hold: options.longHold,
            flags: ["--concurrency", "64", "--lease", "30", "--timeout", String(options.longTimeout)], measureIdle: false)
        results.add(Result(
            row: "6. \(count) tasks of \(Int(options.longHold)) s, --timeout \(options.longTimeout)",
            figure: "\(run.completed) of \(count) completed in " + String(format: "%.1f s", run.busy.seconds),
            baseline: String(format: "%.0f s (one task's duration)", options.longHold), ratio: run.busy.seconds / options.longHold,
            target: "all complete", met: run.completed == count))
        results.add(run.executionsResult(row: "6. executions per messageId at the peer"))
        results.add(Result(
            row: "6. claim-to-completion (first claim → finished_at)", figure: spread(run.claimToCompletion),
            baseline: String(format: "%.0f s (one task's duration)", options.longHold),
            ratio: percentile(run.claimToCompletion.sorted(), 0.5) / options.longHold, target: "(printed)", met: nil))
        results.add(Result(
            row: "6. peak RSS of the worker process", figure: String(format: "%.0f MB", run.busy.peakMB), baseline: "-",
            ratio: nil, target: "(printed)", met: nil))
    }

    /// What one run of long tasks came to, read back from the peer and the database.
    struct LongTaskRun {
        var busy: Measured
        var idle: Measured?
        var completed: Int
        var statuses: [String: Int]
        /// messageIds of the database's rows, with how many times the peer started each one's task.
        var executions: [String: Int]
        var unknownExecutions: Int
        /// message/send requests the peer received (every attempt, retries included).
        var sends: Int
        var polls: Int
        var retries: Int
        var takeovers: Int
        var claimToCompletion: [Double]
        var handOverToCompletion: [Double]
        var claimToSend: [Double]

        var once: Int { executions.values.filter { $0 == 1 }.count }
        var twiceOrMore: Int { executions.values.filter { $0 > 1 }.count }
        var never: Int { executions.values.filter { $0 == 0 }.count }

        func executionsResult(row: String) -> Result {
            let extra = unknownExecutions > 0 ? ", \(unknownExecutions) unknown messageIds" : ""
            return Result(
                row: row,
                figure: "\(once) once, \(twiceOrMore) more than once, \(never) never\(extra) "
                    + "(\(sends) sends, \(polls) polls, \(retries) retries, \(takeovers) take-overs)",
                baseline: "-", ratio: nil, target: "exactly once each",
                met: once == executions.count && unknownExecutions == 0)
        }
    }

    /// Seeds `count` delegations, runs the worker binary on them against a peer whose tasks take `hold`
    /// seconds, and reads back what happened. With `measureIdle`, first runs the same binary on the same
    /// (still empty) database for a few seconds: its resident set is the baseline of the busy one's.
    static func runLongTasks(
        _ options: BenchOptions, name: String, count: Int, hold: Double, flags: [String], measureIdle: Bool
    ) async throws -> LongTaskRun {
        let platform = FakePlatform(workspaceID: selfID, token: token)
        try await platform.start()
        // When each delegation's first message/send arrived (the peer's executions are counted by messageId).
        let firstSend = Locked<[String: Date]>([:])
        let duration = Duration.milliseconds(Int(hold * 1000))
        let peer = FakePeer(dialect: .v03, honoursNonBlocking: true) { request in
            if let id = request.delegationID { firstSend.withLock { $0[id] = $0[id] ?? Date() } }
            return .longTask(duration, then: .completed("done after \(Int(hold)) s"))
        }
        try await peer.start()
        platform.register("ws-peer", .url(peer.url))
        let binary = productDirectory.appendingPathComponent("delegation-worker").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("\(binary) not found: build it in the same scratch path (--product delegation-worker)")
        }
        let path = try await StoreBench.freshDatabase(options, name)
        let arguments =
            [
                "--db", path, "--platform-url", platform.baseURL, "--workspace-id", selfID, "--token", token,
                "--poll-interval", String(options.pollInterval), "--log-level", "error", "--worker-id", "bench-\(name)",
            ] + flags

        var idle: Measured?
        if measureIdle {
            // Baseline: the same binary on the same database before anything is enqueued, started and left
            // idle (claiming nothing, every loop running) for a few seconds, then stopped with SIGTERM.
            idle = try await runMeasured(binary, arguments, log: options.directory + "/\(name)-idle.log", stopAfter: .seconds(5))
            print(String(format: "   idle worker: peak %.1f MB, resident %.1f MB after %.0f s", idle!.peakMB, idle!.lastMB, idle!.seconds))
        }
        try StoreBench.seed(path, count: count, workspace: "ws-peer", source: selfID)
        let started = Date()
        let busy = try await runMeasured(binary, arguments + ["--exit-when-idle"], log: options.directory + "/\(name).log")
        print(String(format: "   busy worker: %.1f s, peak %.1f MB (%@)", busy.seconds, busy.peakMB, busy.atPeak))
        print("   resident MB by second: \(busy.timelineText)")
        await peer.stop()
        await platform.stop()
        guard busy.status == 0 else { throw BenchError("\(name) worker exited \(busy.status); see \(options.directory)/\(name).log") }

        let database = try openDatabase(path, readOnly: true)
        var statuses: [String: Int] = [:]
        for row in try database.query("SELECT status, count(*) FROM delegations GROUP BY status") {
            statuses[row[0].string ?? "?"] = row[1].int ?? 0
        }
        let rows = try database.query(
            """
            SELECT d.id, d.message_id, d.accepted_at, d.finished_at, d.attempts, d.takeovers,
                   (SELECT min(e.at) FROM delegation_events e
                    WHERE e.delegation_id = d.id AND e.kind = 'status' AND e.to_status = 'in_progress')
            FROM delegations d
            """)
        func since(_ sql: String) throws -> Double {
            try database.queryFirst(sql)?[0].string.flatMap(Timestamp.date(from:)).map { $0.timeIntervalSince(started) } ?? .nan
        }
        print(String(
            format: "   after the worker started: first claim %.1f s, last hand-over %.1f s, last completion %.1f s, last mirror call delivered %.1f s, exit %.1f s",
            try since("SELECT min(at) FROM delegation_events WHERE kind = 'status' AND to_status = 'in_progress'"),
            try since("SELECT max(accepted_at) FROM delegations"), try since("SELECT max(finished_at) FROM delegations"),
            try since("SELECT max(delivered_at) FROM platform_outbox"), busy.seconds))
        let executed = peer.executions
        let sent = firstSend.withLock { $0 }
        var executions: [String: Int] = [:]
        var claimToCompletion: [Double] = [], handOverToCompletion: [Double] = [], claimToSend: [Double] = []
        var retries = 0, takeovers = 0
        for row in rows {
            let id = row[0].string ?? "", messageID = row[1].string ?? ""
            executions[messageID] = executed[messageID] ?? 0
            retries += max(0, (row[4].int ?? 0) - 1)
            takeovers += row[5].int ?? 0
            let accepted = row[2].string.flatMap(Timestamp.date(from:))
            let finished = row[3].string.flatMap(Timestamp.date(from:))
            let claimed = row[6].string.flatMap(Timestamp.date(from:))
            if let claimed, let finished { claimToCompletion.append(finished.timeIntervalSince(claimed)) }
            if let accepted, let finished { handOverToCompletion.append(finished.timeIntervalSince(accepted)) }
            if let claimed, let first = sent[id] { claimToSend.append(max(0, first.timeIntervalSince(claimed))) }
        }
        let received = peer.received
        return LongTaskRun(
            busy: busy, idle: idle, completed: statuses["completed"] ?? 0, statuses: statuses, executions: executions,
            unknownExecutions: executed.keys.filter { executions[$0] == nil }.count,
            sends: received.filter { $0.method == "message/send" || $0.method == "SendMessage" }.count,
            polls: received.filter { $0.method == "tasks/get" || $0.method == "GetTask" }.count,
            retries: retries, takeovers: takeovers, claimToCompletion: claimToCompletion,
            handOverToCompletion: handOverToCompletion, claimToSend: claimToSend)
    }

    struct Measured {
        var status: Int32
        var seconds: Double
        /// VmHWM: the kernel's high-water mark of the resident set.
        var peakMB: Double
        /// VmRSS at the last sample.
        var lastMB: Double
        /// What the process looked like at its largest sampled resident set.
        var atPeak: String
        /// VmRSS (MB) once a second: where the peak falls in the run.
        var timeline: [Double]

        var timelineText: String {
            timeline.enumerated().map { String(format: "%d s %.0f", $0.offset, $0.element) }.joined(separator: ", ")
        }
    }

    /// Runs a child to its end (or, with `stopAfter`, until SIGTERM after that long), sampling its
    /// /proc status every 20 ms. Its output goes to `log`.
    static func runMeasured(_ binary: String, _ arguments: [String], log: String, stopAfter: Duration? = nil) async throws -> Measured {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? output.close() }
        var program = binary
        var programArguments = arguments
        if stopAfter == nil, let wrapper = ProcessInfo.processInfo.environment["BENCH_WORKER_WRAPPER"], !wrapper.isEmpty {
            // Diagnosis only (e.g. BENCH_WORKER_WRAPPER="/usr/bin/heaptrack -o /tmp/worker" around the busy run):
            // the figures then are the wrapper's, not the worker's.
            let words = wrapper.split(separator: " ").map(String.init)
            program = words[0]
            programArguments = Array(words.dropFirst()) + [binary] + arguments
        }
        let start = ContinuousClock.now
        let process = try SpawnedProcess(program, programArguments, stdout: output.fileDescriptor, stderr: output.fileDescriptor)
        let pid = process.pid
        var peakKB = 0.0, lastKB = 0.0, largestKB = 0.0, samples = 0, largestFDs = 0
        var atPeak = ""
        var signalled = false
        var lastFDCount = ContinuousClock.now - .seconds(1)
        var fds = 0
        var timeline: [Double] = []
        while process.isRunning {
            if let status = processStatus(pid) {
                samples += 1
                peakKB = max(peakKB, status["VmHWM"] ?? 0)
                lastKB = status["VmRSS"] ?? 0
                if seconds(since: start) >= Double(timeline.count) { timeline.append(lastKB / 1024) }
                if ContinuousClock.now - lastFDCount >= .milliseconds(250) {
                    fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? fds
                    largestFDs = max(largestFDs, fds)
                    lastFDCount = .now
                }
                if lastKB > largestKB {
                    largestKB = lastKB
                    atPeak = String(
                        format: "at %.1f s: anon %.0f MB, file %.0f MB, %.0f threads, ~%d fds",
                        seconds(since: start), (status["RssAnon"] ?? 0) / 1024, (status["RssFile"] ?? 0) / 1024,
                        status["Threads"] ?? 0, fds)
                }
            }
            if let stopAfter, !signalled, ContinuousClock.now - start >= stopAfter {
                process.signal(SIGTERM)
                signalled = true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard samples > 0, peakKB > 0 else {
            throw BenchError("\(URL(fileURLWithPath: binary).lastPathComponent) exited before its memory could be sampled (exit \(process.terminationStatus); see \(log))")
        }
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        if !lines.isEmpty {
            print("   \(lines.count) lines in \(log); first: \(lines[0].prefix(300))")
        }
        return Measured(
            status: signalled && process.terminationStatus == SIGTERM ? 0 : process.terminationStatus,
            seconds: seconds(since: start), peakMB: peakKB / 1024, lastMB: lastKB / 1024,
            atPeak: atPeak + ", most fds \(largestFDs)", timeline: timeline)
    }

    /// The numeric fields of /proc/PID/status (kB for sizes), or nil once the process is gone.
    static func processStatus(_ pid: Int32) -> [String: Double]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var fields: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Double($0) }
            if let value { fields[String(line[..<colon])] = value }
        }
        return fields["VmRSS"] == nil ? nil : fields
    }
}
