import ArgumentParser
import DelegationFakes
import DelegationStore
import DelegationTool
import DelegationWorker
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// `delegation-demo`: the whole path on loopback — a fake platform, five fake peer agents, a real
/// store and a real worker — with outcomes a newcomer can read. Fakes live here, not in the worker.
@main
struct DelegationDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegation-demo",
        abstract: "Run the delegation worker end to end against a loopback platform and loopback peer agents.")

    @Option(help: "SQLite database file (created if missing; default ./delegations.db).")
    var db: String = StoreConfiguration.defaultPath

    @Option(name: .customLong("log-level"), help: "The worker's log level on stderr (default error).")
    var logLevel: String = "error"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration = WorkerConfiguration()
        configuration.databasePath = db
        try await Self.run(configuration: &configuration, logger: Logger(label: "delegation.demo"))
    }

    /// Counts calls per key (the flaky peer fails each delegation's first attempt only).
    final class Counter: Sendable {
        private let counts = Mutex<[String: Int]>([:])
        func next(_ key: String) -> Int {
            counts.withLock { counts in
                counts[key, default: 0] += 1
                return counts[key]!
            }
        }
    }

    /// Five peers (0.3, 1.0, flaky, queued by the platform, failing) and a workspace nobody knows.
    static func run(configuration: inout WorkerConfiguration, logger: Logger) async throws {
        let platform = FakePlatform(workspaceID: "demo-agent", token: "demo-token")
        try await platform.start()
        let attempts = Counter()
        let research = FakePeer(dialect: .v03) { .completed("Q3 summary: revenue up 12%, churn down; details in the attached notes. (asked: \($0.text ?? ""))") }
        let modern = FakePeer(dialect: .v10) { _ in .message("Release notes translated to French (answered by an A2A 1.0 peer).") }
        let flaky = FakePeer(dialect: .v03) { received in
            attempts.next(received.delegationID ?? "") == 1
                ? .http(503, #"{"error":"peer restarting","busy":true,"retry_after":1}"#, headers: [("Retry-After", "1")])
                : .completed("Build is green on the second try.")
        }
        let busy = FakePeer(dialect: .v03) { received in
            if let id = received.delegationID {
                Task {
                    try? await Task.sleep(for: .seconds(1))
                    platform.resolve(delegationID: id, status: "completed", preview: "Offsite plan drafted (delivered later by the platform's queue).")
                }
            }
            return .queued
        }
        let broken = FakePeer(dialect: .v03) { _ in .task(state: "failed", text: "cannot open the spreadsheet: unsupported format", taskID: nil) }
        let peers = [research, modern, flaky, busy, broken]
        for peer in peers { try await peer.start() }
        platform.register("research", .url(research.url))
        platform.register("translator", .url(modern.url))
        platform.register("ci", .url(flaky.url))
        platform.register("planner", .url(busy.url))
        platform.register("sheets", .url(broken.url))

        configuration.platformURL = platform.baseURL
        configuration.workspaceID = "demo-agent"
        configuration.token = "demo-token"
        configuration.retryDelay = .seconds(1)
        configuration.pollInterval = .milliseconds(500)
        configuration.claimInterval = .milliseconds(100)
        configuration.exitWhenIdle = true

        let store = try DelegationStore(
            StoreConfiguration(path: configuration.databasePath, durability: configuration.durability, sourceWorkspaceID: "demo-agent"),
            logger: logger)
        let tool = DelegationTool(store: store, logger: logger)
        let tasks = [
            ("research", "Summarise the Q3 sales report"),
            ("translator", "Translate the release notes"),
            ("ci", "Check the build status"),
            ("planner", "Plan the team offsite"),
            ("sheets", "Parse the attached spreadsheet"),
            ("nowhere", "Ask a workspace that does not exist"),
        ]
        print("Demo: a loopback platform at \(platform.baseURL) and \(peers.count) peer agents; database \(configuration.databasePath)\n")
        var ids: [String] = []
        for (workspace, task) in tasks {
            let answer = try await tool.delegate(workspaceID: workspace, task: task)
            let id = answer["task_id"]?.stringValue ?? "?"
            ids.append(id)
            print("delegated to \(workspace.padding(toLength: 10, withPad: " ", startingAt: 0)) \(id)  \"\(task)\"")
        }
        print("\nrunning the worker until every delegation is settled…\n")
        let started = ContinuousClock.now
        let http = DelegationWorker.makeHTTPClient(concurrency: configuration.concurrency)
        let worker = try DelegationWorker(configuration: configuration, store: store, httpClient: http, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: HTTPClientService(http)),
                    .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        let elapsed = ContinuousClock.now - started

        var counts: [DelegationStatus: Int] = [:]
        for id in ids {
            guard let row = try await store.delegation(id: id) else { continue }
            counts[row.status, default: 0] += 1
            let outcome = row.result ?? row.error ?? ""
            print("\(row.status.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(row.workspaceID.padding(toLength: 10, withPad: " ", startingAt: 0)) attempts \(row.attempts)  \(outcome.prefix(90))")
        }
        let summary = DelegationStatus.allCases.compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }
        print("\nsummary: \(summary.joined(separator: ", ")) in \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
        print("platform saw \(platform.records.count) record, \(platform.updates.count) update and \(platform.notifications.count) notify calls")
        print("\nThe history of each is in the database, e.g.:")
        print("  swift run delegation-admin show \(ids[2]) --db \(configuration.databasePath)")
        print("  sqlite3 \(configuration.databasePath) \"SELECT at, kind, from_status, to_status, detail FROM delegation_events WHERE delegation_id = '\(ids[2])' ORDER BY id\"")
        await store.close()
        for peer in peers { await peer.stop() }
        await platform.stop()
    }
}
