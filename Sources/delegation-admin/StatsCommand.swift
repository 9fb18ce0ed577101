import ArgumentParser
import DelegationStore
import Foundation

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Queue health: counts by status, oldest pending, leases, attempts, time to complete, mirror backlog.")

    @OptionGroup var options: CommonOptions

    @Option(help: "Window for the attempts histogram (rows created since) and time-to-complete percentiles (completed since); default 24h.")
    var since: TimeArgument?

    struct Figures: Sendable {
        var counts: [(String, Int)] = []
        var oldestPending: String?
        var leasesHeld = 0
        var leasesExpired = 0
        var attempts: [(Int, Int)] = []
        var completedInWindow = 0
        var percentiles: [(String, Double?)] = []
        var outboxPending = 0
        var outboxDead = 0
        var outboxOldest: String?
    }

    func run() async throws {
        let since = self.since?.timestamp ?? Timestamp.string(from: Date().addingTimeInterval(-86400))
        try await Admin.run(options) { store in
            let figures = try await store.read("computing stats") { database in
                var figures = Figures()
                let counts = Dictionary(
                    uniqueKeysWithValues: try database.query("SELECT status, count(*) FROM delegations GROUP BY status")
                        .map { ($0[0].string ?? "", $0[1].int ?? 0) })
                figures.counts = DelegationStatus.allCases.map { ($0.rawValue, counts[$0.rawValue] ?? 0) }
                figures.oldestPending = try database.queryFirst(
                    "SELECT min(created_at) FROM delegations WHERE status = 'pending'")?[0].string
                let now = Timestamp.string(from: Date())
                let leases = try database.queryFirst(
                    """
                    SELECT count(*) FILTER (WHERE lease_expires_at > ?1), count(*) FILTER (WHERE lease_expires_at <= ?1)
                    FROM delegations WHERE status = 'in_progress'
                    """, now)
                figures.leasesHeld = leases?[0].int ?? 0
                figures.leasesExpired = leases?[1].int ?? 0
                // Over the window, through the created_at index: a full scan would grow with the history.
                figures.attempts = try database.query(
                    "SELECT attempts, count(*) FROM delegations WHERE created_at >= ? GROUP BY attempts ORDER BY attempts", since
                ).map { ($0[0].int ?? 0, $0[1].int ?? 0) }
                // Percentiles streamed from a sorted scan: no list of durations held in memory.
                let durations = """
                    SELECT (julianday(finished_at) - julianday(created_at)) * 86400.0 AS seconds
                    FROM delegations INDEXED BY delegations_finished
                    WHERE \(Eviction.finished) AND status = 'completed' AND finished_at >= ?
                    """
                let total = try database.queryFirst("SELECT count(*) FROM (\(durations))", since)?[0].int ?? 0
                figures.completedInWindow = total
                let wanted: [(String, Double)] = [("p50", 0.50), ("p95", 0.95), ("p99", 0.99)]
                var values: [String: Double] = [:]
                if total > 0 {
                    let ranks = wanted.map { ($0.0, min(total - 1, Int((Double(total) * $0.1).rounded(.up)) - 1)) }
                    var index = 0
                    try database.forEachRow("\(durations) ORDER BY seconds", arguments: [since]) { row in
                        for (name, rank) in ranks where rank == index { values[name] = row[0].double }
                        index += 1
                    }
                }
                figures.percentiles = wanted.map { ($0.0, values[$0.0]) }
                // Each through its partial index: the delivered history is never read.
                let pending = try database.queryFirst(
                    "SELECT count(*), min(created_at) FROM platform_outbox WHERE delivered_at IS NULL AND dead_at IS NULL")
                figures.outboxPending = pending?[0].int ?? 0
                figures.outboxOldest = pending?[1].string
                figures.outboxDead = try database.queryFirst(
                    "SELECT count(*) FROM platform_outbox WHERE dead_at IS NOT NULL")?[0].int ?? 0
                return figures
            }
            let json: JSONValue = [
                "counts": .object(figures.counts.map { ($0.0, .int($0.1)) }),
                "total": .int(figures.counts.reduce(0) { $0 + $1.1 }),
                "oldest_pending_created_at": figures.oldestPending.map(JSONValue.string) ?? .null,
                "oldest_pending_age_seconds": figures.oldestPending.flatMap(Self.age).map(JSONValue.double) ?? .null,
                "leases": ["held": .int(figures.leasesHeld), "expired": .int(figures.leasesExpired)],
                "attempts_histogram": .object(figures.attempts.map { (String($0.0), .int($0.1)) }),
                "time_to_complete": .object(
                    [("since", .string(since)), ("completed", .int(figures.completedInWindow))]
                        + figures.percentiles.map { ($0.0 + "_seconds", $0.1.map(JSONValue.double) ?? .null) }),
                "outbox": [
                    "pending": .int(figures.outboxPending), "dead": .int(figures.outboxDead),
                    "oldest_pending_created_at": figures.outboxOldest.map(JSONValue.string) ?? .null,
                ],
            ]
            var text = Output.table(["STATUS", "COUNT"], figures.counts.map { [$0.0, String($0.1)] })
            text += "\noldest pending      \(figures.oldestPending.map { "\($0) (\(Output.relative($0)))" } ?? "none")\n"
            text += "leases              \(figures.leasesHeld) held, \(figures.leasesExpired) expired\n"
            text += "attempts            " + figures.attempts.map { "\($0.0)×\($0.1)" }.joined(separator: "  ") + "\n"
            text += "time to complete    \(figures.completedInWindow) completed since \(since): "
                + figures.percentiles.map { "\($0.0) \(Output.duration($0.1))" }.joined(separator: ", ") + "\n"
            text += "platform mirror     \(figures.outboxPending) pending, \(figures.outboxDead) dead"
                + (figures.outboxOldest.map { ", oldest pending \(Output.relative($0))" } ?? "") + "\n"
            return Report(json: json, text: text)
        }
    }

    static func age(_ timestamp: String) -> Double? {
        Timestamp.date(from: timestamp).map { Date().timeIntervalSince($0) }
    }
}
