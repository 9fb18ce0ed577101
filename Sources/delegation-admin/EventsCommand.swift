import ArgumentParser
import DelegationStore

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "The event log across delegations: every transition, lease take-over and recorded step.",
        discussion: """
            For forensic questions. What failed between 02:00 and 03:00 and why:
              delegation-admin events --to-status failed --since 2026-11-28T02:00 --until 2026-11-28T03:00
            """)

    @OptionGroup var options: CommonOptions

    @Option(help: "Only the events of this delegation.")
    var delegation: String?

    @Option(help: "At or after this time (ISO 8601 UTC, or relative: 2h, 7d).")
    var since: TimeArgument?

    @Option(help: "Before this time (ISO 8601 UTC, or relative: 2h, 7d).")
    var until: TimeArgument?

    @Option(name: .customLong("to-status"), help: "Only transitions into this status (repeatable).")
    var toStatuses: [DelegationStatus] = []

    @Option(help: "Only events of this kind (repeatable): status, lease, retry, sent, …")
    var kind: [String] = []

    @Option(help: "At most this many events (1…100000).")
    var limit = 100

    @Option(help: "newest or oldest first (default: oldest with --delegation, else newest).")
    var order: ListFilter.SortOrder?

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000, not \(limit)") }
    }

    func run() async throws {
        var conditions: [String] = []
        var arguments: [any SQLiteBindable] = []
        if let delegation {
            conditions.append("e.delegation_id = ?")
            arguments.append(delegation)
        }
        if let since {
            conditions.append("e.at >= ?")
            arguments.append(since.timestamp)
        }
        if let until {
            conditions.append("e.at < ?")
            arguments.append(until.timestamp)
        }
        if !toStatuses.isEmpty {
            conditions.append("e.to_status IN (SELECT value FROM json_each(?)) AND e.kind = 'status'")
            arguments.append(JSONValue.array(toStatuses.map { .string($0.rawValue) }).serialized)
        }
        if !kind.isEmpty {
            conditions.append("e.kind IN (SELECT value FROM json_each(?))")
            arguments.append(JSONValue.array(kind.map(JSONValue.string)).serialized)
        }
        let newest = (order ?? (delegation == nil ? .newest : .oldest)) == .newest
        let sql = """
            SELECT e.id, e.delegation_id, e.at, e.kind, e.from_status, e.to_status, e.attempt, e.worker, e.detail,
                   d.workspace_id
            FROM delegation_events e LEFT JOIN delegations d ON d.id = e.delegation_id
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY \(newest ? "e.id DESC" : "e.id") LIMIT ?
            """
        let limit = self.limit
        let delegation = self.delegation
        let bound = arguments + [limit]
        try await Admin.run(options) { store in
            let rows = try await store.read("reading events") { database -> [(DelegationEvent, String?)] in
                if let delegation,
                    try database.queryFirst("SELECT 1 FROM delegations WHERE id = ?", delegation) == nil
                {
                    throw DelegationStoreError.notFound(id: delegation)
                }
                return try database.query(sql, arguments: bound).map { (DelegationEvent(row: $0), $0[9].string) }
            }
            let json: JSONValue = [
                "events": .array(rows.map { event, workspace in
                    guard case .object(var pairs) = event.json else { return event.json }
                    pairs.insert(("workspace_id", workspace.map(JSONValue.string) ?? .null), at: 2)
                    return .object(pairs)
                }),
                "count": .int(rows.count),
            ]
            let table = Output.table(
                ["AT", "DELEGATION", "WORKSPACE", "KIND", "TRANSITION", "ATT", "WORKER", "DETAIL"],
                rows.map { event, workspace in
                    [
                        event.at, event.delegationID, workspace.orDash, event.kind,
                        event.toStatus.map { "\(event.fromStatus ?? "∅") → \($0)" } ?? "-", String(event.attempt),
                        event.worker.orDash, event.detail.orDash,
                    ]
                }, maximumWidth: 64)
            return Report(json: json, text: table + "\(rows.count) event(s)")
        }
    }
}
