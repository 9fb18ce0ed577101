import ArgumentParser
import DelegationStore
import Foundation

/// Who an operator action is attributed to in the event log.
enum Operator {
    static var name: String {
        let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown user"
        return "delegation-admin (\(user))"
    }
}

/// Applies `change` to every id inside the caller's transaction: either all of them change, or none
/// does and the first refusal (unknown id, or the database's own words for an illegal transition) is
/// the error.
func changeEach(_ ids: [String], on database: Database, _ change: (Database, String) throws -> Void) throws {
    for id in ids {
        do {
            try change(database, id)
        } catch let error as SQLiteError where error.isTriggerAbort {
            throw DelegationStoreError.illegalTransition(id: id, message: error.message)
        }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Send failed delegations again: failed → pending, attempts reset, same messageId; audited.",
        discussion: "All or nothing: if one id is unknown or not failed, nothing changes.")

    @OptionGroup var options: CommonOptions

    @Argument(help: "Delegation ids to retry.")
    var ids: [String] = []

    @Option(help: "Retry every delegation in this status instead of listing ids (only failed is retryable).")
    var status: DelegationStatus?

    @Option(help: "With --status: only those that finished at or after this time (ISO 8601 UTC, or relative: 2h).")
    var since: TimeArgument?

    func validate() throws {
        if ids.isEmpty == (status == nil) { throw ValidationError("give delegation ids or --status failed, not both or neither") }
        if let status, status != .failed { throw ValidationError("--status: only failed delegations can be retried, not \(status.rawValue)") }
        if since != nil, status == nil { throw ValidationError("--since needs --status failed") }
    }

    func run() async throws {
        let ids = self.ids
        let since = self.since?.timestamp ?? ""
        let who = Operator.name
        try await Admin.run(options) { store in
            let retried = try await store.write("retrying delegations") { database -> [String] in
                let targets =
                    ids.isEmpty
                    ? try database.query(
                        "SELECT id FROM delegations WHERE status = 'failed' AND finished_at >= ? ORDER BY finished_at, id", since
                    ).compactMap { $0[0].string }
                    : ids
                try changeEach(targets, on: database) { try Transitions.retry($0, id: $1, by: who) }
                return targets
            }
            return Report(
                json: ["retried": .array(retried.map(JSONValue.string)), "count": .int(retried.count)],
                text: retried.map { "retried \($0)" }.joined(separator: "\n") + (retried.isEmpty ? "nothing to retry" : ""))
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel live delegations: pending, in_progress or queued → cancelled; audited.",
        discussion: """
            A worker holding one loses its lease and stops working on it. Completed and cancelled ones are \
            final; the database refuses and nothing changes. All or nothing across the ids given.
            """)

    @OptionGroup var options: CommonOptions

    @Argument(help: "Delegation ids to cancel.")
    var ids: [String]

    @Option(help: "Why, recorded as the delegation's error and in its events.")
    var reason: String?

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one delegation id") }
    }

    func run() async throws {
        let ids = self.ids
        let reason = "cancelled by \(Operator.name)" + (reason.map { ": \($0)" } ?? "")
        try await Admin.run(options) { store in
            try await store.write("cancelling delegations") { database in
                try changeEach(ids, on: database) { try Transitions.cancel($0, id: $1, reason: reason) }
            }
            return Report(
                json: ["cancelled": .array(ids.map(JSONValue.string)), "count": .int(ids.count)],
                text: ids.map { "cancelled \($0)" }.joined(separator: "\n"))
        }
    }
}
