import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify the file and the queue's invariants; exit 0 when all hold, 1 when one does not.",
        discussion: """
            SQLite's integrity_check and foreign_key_check; the schema objects the migrations create are \
            all present (a dropped trigger would let raw SQL corrupt the state machine); every row's status \
            agrees with its last status event; every status event continues from the previous one along a \
            legal transition; only in_progress rows hold leases; no lease expired long ago (no worker is \
            running); finished rows carry finished_at; the platform mirror is not stuck.
            """)

    @OptionGroup var local: CommonOptions
    @ParentCommand var parent: DelegationAdmin
    /// The global options given after the subcommand, else before it (`delegation-admin --db q.db list`).
    var options: CommonOptions { local.merged(with: parent.global) }

    @Option(name: .customLong("stale-lease"), help: "A lease expired longer ago than this means no worker is running (default 10m).")
    var staleLease: AgeArgument = AgeArgument(argument: "10m")!

    @Option(name: .customLong("stuck-outbox"), help: "An undelivered mirror call older than this is stuck (default 1h).")
    var stuckOutbox: AgeArgument = AgeArgument(argument: "1h")!

    @Option(
        name: .customLong("queued-timeout"),
        help: "The workers' --queued-timeout (env DELEGATION_QUEUED_TIMEOUT in seconds; default 1h): queued rows older than half of it are reported.")
    var queuedTimeout: AgeArgument?

    func run() async throws {
        let timeout = try queuedTimeoutSeconds()
        let thresholds = CheckThresholds(
            staleBefore: Timestamp.string(from: Date().addingTimeInterval(-staleLease.seconds)),
            stuckBefore: Timestamp.string(from: Date().addingTimeInterval(-stuckOutbox.seconds)),
            queuedBefore: Timestamp.string(from: Date().addingTimeInterval(-timeout / 2)))
        try await Admin.run(options, access: .readOnly) { store in
            let findings = try await store.check(thresholds)
            let ok = findings.allSatisfy(\.ok)
            let json: JSONValue = [
                "ok": .bool(ok),
                "checks": .array(findings.map {
                    ["name": .string($0.name), "ok": .bool($0.ok), "detail": .string($0.detail),
                     "examples": .array($0.examples.map(JSONValue.string))]
                }),
            ]
            let text = Output.table(
                ["CHECK", "RESULT", "DETAIL"],
                findings.map { [$0.name, $0.ok ? "ok" : "FAILED", $0.detail + ($0.examples.isEmpty ? "" : " e.g. " + $0.examples.prefix(3).joined(separator: ", "))] },
                maximumWidth: 120) + (ok ? "all checks passed" : "problems found")
            return Report(json: json, text: text, failed: !ok)
        }
    }

    /// `--queued-timeout`, else `DELEGATION_QUEUED_TIMEOUT` (seconds, as the worker reads it), else one hour.
    func queuedTimeoutSeconds() throws -> Double {
        if let queuedTimeout { return queuedTimeout.seconds }
        guard let text = ProcessInfo.processInfo.environment["DELEGATION_QUEUED_TIMEOUT"], !text.isEmpty else { return 3600 }
        guard let seconds = Double(text), seconds.isFinite, seconds > 0, seconds <= 10 * 365 * 86400 else {
            throw ValidationError("DELEGATION_QUEUED_TIMEOUT must be a positive number of seconds, not '\(text)'")
        }
        return seconds
    }
}
