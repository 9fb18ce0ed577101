import ArgumentParser
import DelegationStore

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One delegation in full, with its event timeline and its platform mirror calls.")

    @OptionGroup var options: CommonOptions

    @Argument(help: "The delegation id.")
    var id: String

    func run() async throws {
        let id = self.id
        try await Admin.run(options) { store in
            let found = try await store.read("showing delegation \(id)") { database -> (Delegation, [DelegationEvent], [Row])? in
                guard let row = try database.queryFirst("SELECT \(Delegation.columns) FROM delegations WHERE id = ?", id) else {
                    return nil
                }
                let events = try database.query(
                    "SELECT \(DelegationEvent.columns) FROM delegation_events WHERE delegation_id = ? ORDER BY id", id
                ).map(DelegationEvent.init(row:))
                let outbox = try database.query(
                    """
                    SELECT id, kind, created_at, attempts, delivered_at, dead_at, last_error, next_attempt_at
                    FROM platform_outbox WHERE delegation_id = ? ORDER BY id
                    """, id)
                return (Delegation(row: row), events, outbox)
            }
            guard let (delegation, events, outbox) = found else { throw DelegationStoreError.notFound(id: id) }
            let outboxJSON = outbox.map { row -> JSONValue in
                [
                    "id": .int(row[0].int ?? 0), "kind": .string(row[1].string ?? ""), "created_at": .string(row[2].string ?? ""),
                    "attempts": .int(row[3].int ?? 0), "delivered_at": row[4].string.map(JSONValue.string) ?? .null,
                    "dead_at": row[5].string.map(JSONValue.string) ?? .null,
                    "last_error": row[6].string.map(JSONValue.string) ?? .null,
                    "next_attempt_at": .string(row[7].string ?? ""),
                ]
            }
            let json: JSONValue = [
                "delegation": delegation.json, "events": .array(events.map(\.json)), "outbox": .array(outboxJSON),
            ]
            var text = ""
            let fields: [(String, String)] = [
                ("id", delegation.id), ("workspace", delegation.workspaceID), ("source", delegation.sourceWorkspaceID.orDash),
                ("status", delegation.status.rawValue),
                ("attempts", "\(delegation.attempts)" + (delegation.maxAttempts.map { " of \($0)" } ?? "")),
                ("created", "\(delegation.createdAt) (\(Output.relative(delegation.createdAt)))"),
                ("updated", "\(delegation.updatedAt) (\(Output.relative(delegation.updatedAt)))"),
                ("finished", delegation.finishedAt.map { "\($0) (\(Output.relative($0)))" } ?? "-"),
                ("next run", delegation.status == .pending ? "\(delegation.nextRunAt) (\(Output.relative(delegation.nextRunAt)))" : "-"),
                ("lease", delegation.leaseOwner.map { "\($0) until \(delegation.leaseExpiresAt.orDash)" } ?? "-"),
                ("message id", delegation.messageID), ("traceparent", delegation.traceparent),
                ("remote task", delegation.remoteTaskID.orDash),
                ("task", Output.truncate(delegation.task, to: 300)),
                ("result", delegation.result.map { Output.truncate($0, to: 300) } ?? "-"),
                ("error", delegation.error.map { Output.truncate($0, to: 300) } ?? "-"),
            ]
            for (name, value) in fields { text += name.padding(toLength: 12, withPad: " ", startingAt: 0) + value + "\n" }
            text += "\nevents\n"
            text += Output.table(
                ["AT", "KIND", "TRANSITION", "ATT", "WORKER", "DETAIL"],
                events.map { event in
                    [
                        event.at, event.kind, event.toStatus.map { "\(event.fromStatus ?? "∅") → \($0)" } ?? "-",
                        String(event.attempt), event.worker.orDash, event.detail.orDash,
                    ]
                }, maximumWidth: 80)
            if !outbox.isEmpty {
                text += "\nplatform mirror\n"
                text += Output.table(
                    ["KIND", "ATTEMPTS", "STATE"],
                    outbox.map { row in
                        let state =
                            row[4].string.map { "delivered \($0)" } ?? row[5].string.map { "dead \($0): \(row[6].string ?? "")" }
                            ?? "pending, next attempt \(row[7].string ?? "")" + (row[6].string.map { " (last error: \($0))" } ?? "")
                        return [row[1].string ?? "", String(row[3].int ?? 0), state]
                    }, maximumWidth: 100)
            }
            return Report(json: json, text: text)
        }
    }
}
