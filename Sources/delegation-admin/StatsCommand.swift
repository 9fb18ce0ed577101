import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Queue health: counts by status, oldest pending, leases, attempts, time to complete, mirror backlog.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Option(help: "Window for the attempts histogram (rows created since) and time-to-complete percentiles (completed since); default 24h.")
    var since: TimeArgument?

    func run() async throws {
        let since = self.since?.timestamp ?? Timestamp.string(from: Date().addingTimeInterval(-86400))
        try await Admin.run(options, access: .readOnly) { store in
            let figures = try await store.statistics(windowStart: since)
            let json: JSONValue = [
                "counts": .object(DelegationStatus.allCases.map { ($0.rawValue, .int(figures.counts[$0] ?? 0)) }),
                "total": .int(figures.total),
                "oldest_pending_created_at": figures.oldestPendingCreatedAt.json,
                "oldest_pending_age_seconds": figures.oldestPendingCreatedAt.flatMap(Self.age).map(JSONValue.double) ?? .null,
                "leases": ["held": .int(figures.leasesHeld), "expired": .int(figures.leasesExpired)],
                "followed_tasks": .int(figures.followedTasks),
                "attempts_histogram": .object(figures.attempts.keys.sorted().map { (String($0), .int(figures.attempts[$0] ?? 0)) }),
                "time_to_complete": .object(
                    [("since", .string(since)), ("completed", .int(figures.completedInWindow))]
                        + QueueStatistics.percentiles.map { ($0 + "_seconds", figures.timeToComplete[$0].map(JSONValue.double) ?? .null) }),
                "outbox": [
                    "pending": .int(figures.outboxPending), "dead": .int(figures.outboxDead),
                    "oldest_pending_created_at": figures.outboxOldestPendingCreatedAt.json,
                ],
                "peer_cancels_pending": .int(figures.peerCancelsPending),
            ]
            var text = Output.table(["STATUS", "COUNT"], DelegationStatus.allCases.map { [$0.rawValue, String(figures.counts[$0] ?? 0)] })
            text += "\noldest pending      \(figures.oldestPendingCreatedAt.map { "\($0) (\(Output.relative($0)))" } ?? "none")\n"
            text += "leases              \(figures.leasesHeld) held, \(figures.leasesExpired) expired; \(figures.followedTasks) followed tasks between polls\n"
            text += "attempts            " + figures.attempts.keys.sorted().map { "\($0)×\(figures.attempts[$0] ?? 0)" }.joined(separator: "  ") + "\n"
            text += "time to complete    \(figures.completedInWindow) completed since \(since): "
                + QueueStatistics.percentiles.map { "\($0) \(Output.duration(figures.timeToComplete[$0]))" }.joined(separator: ", ") + "\n"
            text += "platform mirror     \(figures.outboxPending) pending, \(figures.outboxDead) dead"
                + (figures.outboxOldestPendingCreatedAt.map { ", oldest pending \(Output.relative($0))" } ?? "") + "\n"
            text += "peer cancels        \(figures.peerCancelsPending) waiting for an answer\n"
            return Report(json: json, text: text)
        }
    }

    static func age(_ timestamp: String) -> Double? {
        Timestamp.date(from: timestamp).map { Date().timeIntervalSince($0) }
    }
}
