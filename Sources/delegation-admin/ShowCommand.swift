import ArgumentParser
import DelegationStore
import DelegationTool

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One delegation in full, with its event timeline and its platform mirror calls.")

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Argument(help: "The delegation id.")
    var id: String

    func run() async throws {
        let id = self.id
        try await Admin.run(options, access: .readOnly) { store in
            guard let detail = try await store.detail(id: id) else { throw DelegationStoreError.notFound(id: id) }
            let (delegation, events, outbox) = (detail.delegation, detail.events, detail.mirrorCalls)
            let json: JSONValue = [
                "delegation": delegation.json, "events": .array(events.map(\.json)),
                "outbox": .array(outbox.map(\.json)),
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
                ("remote task", delegation.remoteTaskID.map { "\($0) (\(delegation.remoteState ?? "?"), \(delegation.polls) polls, last \(delegation.lastPolledAt.orDash))" } ?? "-"),
                ("peer", delegation.peerURL.orDash),
                ("takeovers", "\(delegation.takeovers)"),
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
                    outbox.map { call in
                        let state =
                            call.deliveredAt.map { "delivered \($0)" } ?? call.deadAt.map { "dead \($0): \(call.lastError ?? "")" }
                            ?? "pending, next attempt \(call.nextAttemptAt)" + (call.lastError.map { " (last error: \($0))" } ?? "")
                        return [call.kind, String(call.attempts), state]
                    }, maximumWidth: 100)
            }
            return Report(json: json, text: text)
        }
    }
}

extension MirrorCall {
    var json: JSONValue {
        [
            "id": .int(id), "kind": .string(kind), "created_at": .string(createdAt), "attempts": .int(attempts),
            "delivered_at": deliveredAt.json, "dead_at": deadAt.json, "last_error": lastError.json,
            "next_attempt_at": .string(nextAttemptAt),
        ]
    }
}
