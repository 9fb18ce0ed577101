import ArgumentParser
import DelegationStore
import DelegationTool

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "The event log across delegations: every transition, lease take-over and recorded step.",
        discussion: """
            For forensic questions. What failed between 02:00 and 03:00 and why:
              delegation-admin events --to-status failed --since 2026-11-28T02:00 --until 2026-11-28T03:00
            """)

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

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
        let query = EventQuery(
            delegationID: delegation, since: since?.timestamp, until: until?.timestamp, toStatuses: toStatuses, kinds: kind,
            newestFirst: (order ?? (delegation == nil ? .newest : .oldest)) == .newest, limit: limit)
        try await Admin.run(options, access: .readOnly) { store in
            let rows = try await store.events(query)
            let json: JSONValue = ["events": .array(rows.map(\.json)), "count": .int(rows.count)]
            let table = Output.table(
                ["AT", "DELEGATION", "WORKSPACE", "KIND", "TRANSITION", "ATT", "WORKER", "DETAIL"],
                rows.map { row in
                    let event = row.event
                    return [
                        event.at, event.delegationID, row.workspaceID.orDash, event.kind,
                        event.toStatus.map { "\(event.fromStatus ?? "∅") → \($0)" } ?? "-", String(event.attempt),
                        event.worker.orDash, event.detail.orDash,
                    ]
                }, maximumWidth: 64)
            return Report(json: json, text: table + "\(rows.count) event(s)")
        }
    }
}
