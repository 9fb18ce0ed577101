@testable import DelegationLogging
import DelegationFakes
@testable import DelegationStore
import DelegationTool
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What operators watch: Prometheus metrics that agree with the database, and JSON log lines.
@Suite struct ObservabilityTests {
    @Test func scrapedCountersAgreeWithTheDatabase() async throws {
        let scenario = try await Scenario()
        let calls = CallCounter()
        try await scenario.peer("ws-ok") { _ in .completed("fine") }
        try await scenario.peer("ws-no") { _ in .jsonRPCError(-32000, "refused") }
        try await scenario.peer("ws-busy") { received in
            calls.next(received.delegationID) == 1 ? .http(503, "busy", headers: [("Retry-After", "0")]) : .completed("later")
        }
        for index in 0..<3 { _ = try await scenario.delegate("ws-ok", "task \(index)") }
        _ = try await scenario.delegate("ws-no")
        _ = try await scenario.delegate("ws-busy")
        let worker = try Child(productPath("delegation-worker"), [
            "--db", scenario.databasePath, "--platform-url", scenario.platform.baseURL, "--workspace-id", Scenario.selfID,
            "--token", Scenario.token, "--retry-delay", "0.05", "--poll-interval", "0.1", "--metrics-port", "0",
            "--log-format", "json", "--log-level", "info", "--worker-id", "metrics-worker",
        ])
        // The port it bound is in its log: {"message":"metrics at http://127.0.0.1:PORT/metrics", …}.
        @Sendable func announced() -> String? {
            worker.stderr.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
                .compactMap { $0["message"]?.stringValue }.first { $0.hasPrefix("metrics at ") }.map { String($0.dropFirst("metrics at ".count)) }
        }
        #expect(await eventually { announced() != nil })
        let metricsURL = announced()
        let store = scenario.store
        #expect(await eventually { (try? await store.remainingWork())?.isNone == true })
        // Scraped until a gauge refresh after the last change shows in it.
        let url = URL(string: try #require(metricsURL))!
        @Sendable func scrape() async -> String {
            guard let (data, _) = try? await URLSession.shared.data(from: url) else { return "" }
            return String(decoding: data, as: UTF8.self)
        }
        // Both the rows and the backlog: the gauges are refreshed every poll interval, so a scrape just after
        // the last mirror call can still show the refresh before it (the backlog at 10, run alone).
        #expect(await eventually {
            let samples = Prometheus.samples(await scrape())
            return samples[#"delegation_rows{status="completed"}"#] == 4 && samples["delegation_outbox_backlog"] == 0
        })
        let text = await scrape()
        worker.kill(SIGTERM)
        let result = await worker.finish(within: .seconds(15))
        #expect(result.status == 0)

        let samples = Prometheus.samples(text)
        let counts = try await store.rowCounts()
        #expect(samples[#"delegation_outcomes_total{status="completed"}"#] == Double(counts[.completed]!))
        #expect(samples[#"delegation_outcomes_total{status="failed"}"#] == Double(counts[.failed]!))
        #expect(counts[.completed] == 4 && counts[.failed] == 1)
        let claims = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegation_events WHERE kind = 'status' AND to_status = 'in_progress'")?[0].int }
        #expect(samples["delegation_claims_total"] == Double(claims ?? -1))
        let retries = try await store.read { try $0.queryFirst("SELECT count(*) FROM delegation_events WHERE kind = 'status' AND from_status = 'in_progress' AND to_status = 'pending'")?[0].int }
        #expect(samples["delegation_retries_total"] == Double(retries ?? -1) && retries == 1)
        #expect(samples["delegation_lease_takeovers_total"] == 0)
        for status in DelegationStatus.allCases {
            #expect(samples["delegation_rows{status=\"\(status.rawValue)\"}"] == Double(counts[status] ?? 0), "\(status)")
        }
        #expect(samples["delegation_outbox_backlog"] == 0)
        let records = scenario.platform.records.count
        #expect(samples[#"delegation_platform_requests_total{call="record",outcome="ok"}"#] == Double(records) && records == 5)
        let sends = samples.filter { $0.key.hasPrefix("delegation_a2a_request_duration_seconds_count") }.values.reduce(0, +)
        #expect(sends == 6, "five sends and one retry, each timed: \(samples.filter { $0.key.contains("a2a") })")
        #expect(samples.keys.contains { $0.hasPrefix("delegation_a2a_request_duration_seconds_bucket{") && $0.contains("generation=\"0.3\"") })
        #expect((samples["delegation_store_commit_duration_seconds_count"] ?? 0) > 0)
        #expect((samples["delegation_store_operations_per_commit_count"] ?? 0) > 0)

        // Its log: one JSON object per line, with the delegation's metadata, and never the token.
        let lines = result.stderr.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { (try? JSONValue.parse(String($0)))?.isObject == true })
        let objects = lines.compactMap { try? JSONValue.parse(String($0)) }
        #expect(objects.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["label"] != nil && $0["message"] != nil })
        #expect(objects.contains {
            $0["delegation_id"] != nil && $0["attempt"] != nil && $0["worker"] == "metrics-worker" && $0["traceparent"] != nil
        })
        #expect(!result.stderr.contains(Scenario.token))
        await scenario.close()
    }

    /// A full non-blocking stream (the MCP server's stdout is one, and a terminal's stderr shares it) is
    /// waited for, up to the writer's patience: the line goes out whole when a reader drains it, and is
    /// given up with EAGAIN — not spun on, not trapped — when none does.
    @Test func aFullNonBlockingStreamIsWaitedForUpToThePatience() async throws {
        let ends = try #require(closeOnExecPipe())
        defer { close(ends.read); close(ends.write) }
        _ = fcntl(ends.write, F_SETFL, fcntl(ends.write, F_GETFL) | O_NONBLOCK)
        _ = fcntl(ends.read, F_SETFL, fcntl(ends.read, F_GETFL) | O_NONBLOCK)
        let chunk = [UInt8](repeating: 0x61, count: 4096)
        var filled = 0
        while write(ends.write, chunk, chunk.count) > 0 { filled += chunk.count }
        let whyNot = errno
        #expect(filled > 0 && whyNot == EAGAIN, "the pipe is full")

        let begun = ContinuousClock.now
        #expect(FileDescriptorOutput.write("a line\n", to: ends.write, patience: .milliseconds(200)) == EAGAIN)
        #expect(ContinuousClock.now - begun >= .milliseconds(200), "it waited for the stream")

        // A reader drains it a little later, on a thread of its own (the write below holds one of the
        // task pool's threads while it waits): the whole line goes out.
        let inPipe = filled
        let drainedByReader = Mutex<[UInt8]?>(nil)
        Thread.detachNewThread {
            usleep(100_000)
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var drained: [UInt8] = []
            let deadline = ContinuousClock.now + .seconds(10)
            while drained.count < inPipe && ContinuousClock.now < deadline {
                let count = read(ends.read, &buffer, buffer.count)
                if count > 0 { drained += buffer[0..<count] } else { usleep(1000) }
            }
            drainedByReader.withLock { $0 = drained }
        }
        let line = String(repeating: "b", count: 10_000) + "\n"
        #expect(FileDescriptorOutput.write(line, to: ends.write, patience: .seconds(30)) == nil)
        let readerDeadline = ContinuousClock.now + .seconds(15)
        while drainedByReader.withLock({ $0 }) == nil && ContinuousClock.now < readerDeadline { try await Task.sleep(for: .milliseconds(5)) }
        var received = try #require(drainedByReader.withLock { $0 })
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = ContinuousClock.now + .seconds(10)
        while received.count < filled + line.utf8.count && ContinuousClock.now < deadline {
            let count = read(ends.read, &buffer, buffer.count)
            if count > 0 { received += buffer[0..<count] } else { usleep(1000) }
        }
        #expect(received.count == filled + line.utf8.count)
        #expect(String(decoding: received.suffix(line.utf8.count), as: UTF8.self) == line, "the line arrived whole")
    }

    @Test func theJSONLogHandlerWritesOneEscapedObjectPerLine() throws {
        let lines = LockedLines()
        var handler = JSONLogHandler(label: "test.label", stream: TextOutputStreamTarget { lines.append($0) })
        handler.logLevel = .trace
        handler[metadataKey: "worker"] = "w-1"
        let logger = Logger(label: "test.label") { _ in handler }
        logger.warning("a \"quoted\"\nmessage", metadata: ["delegation_id": "d-1", "attempt": "2"])
        let written = lines.all
        #expect(written.count == 1 && written[0].hasSuffix("\n") && written[0].dropLast().contains("\n") == false)
        let object = try JSONValue.parse(written[0])
        #expect(object["level"] == "warning" && object["label"] == "test.label" && object["message"] == "a \"quoted\"\nmessage")
        #expect(object["worker"] == "w-1" && object["delegation_id"] == "d-1" && object["attempt"] == "2")
        #expect(object["time"]?.stringValue.flatMap(Timestamp.date(from:)) != nil, "UTC, the schema's format")
        #expect(throws: LogFormatError.self) { try LogFormat.resolve(flag: "xml", environment: [:]) }
        #expect(try LogFormat.resolve(flag: nil, environment: ["LOG_FORMAT": "JSON"]) == .json)
        #expect(try LogFormat.resolve(flag: nil, environment: [:]) == .text)
    }
}

/// The sample lines of a Prometheus text exposition, by `name{labels}`.
enum Prometheus {
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
