import ArgumentParser
import DelegationStore
import Foundation

/// The options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "The delegation database (env DELEGATION_DB; default ./delegations.db).")
    var db: String?

    @Flag(help: "Print exactly one JSON document on stdout; errors as {\"error\": \"...\"}.")
    var json = false

    @Option(
        name: .customLong("busy-timeout"),
        help: "Seconds to wait for another process's write lock before giving up (env DELEGATION_BUSY_TIMEOUT_MS; default 10).")
    var busyTimeout: Double?

    func validate() throws {
        if let busyTimeout, !(busyTimeout >= 0 && busyTimeout <= 3600) {
            throw ValidationError("--busy-timeout must be between 0 and 3600 seconds, not \(busyTimeout)")
        }
    }

    func configuration(create: Bool) throws -> StoreConfiguration {
        var configuration = try StoreConfiguration.fromEnvironment()
        if let db { configuration.path = db }
        if let busyTimeout { configuration.busyTimeout = .milliseconds(Int64(busyTimeout * 1000)) }
        configuration.createIfMissing = create
        return configuration
    }
}

/// Opens the store, runs one subcommand's work, prints its report, and turns every failure into the
/// same two shapes: `{"error": ...}` on stdout with `--json`, `error: ...` on stderr without; exit 1.
enum Admin {
    static func run(
        _ options: CommonOptions, create: Bool = false, _ body: (DelegationStore) async throws -> Report
    ) async throws {
        do {
            let store = try DelegationStore(try options.configuration(create: create))
            let report: Report
            do {
                report = try await body(store)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
            if options.json {
                if let json = report.json { Output.printJSON(json) }
            } else if !report.text.isEmpty {
                Output.write(report.text.hasSuffix("\n") ? report.text : report.text + "\n")
            }
            if report.failed { throw ExitCode(1) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            fail(String(describing: error), json: options.json)
        }
    }

    static func fail(_ message: String, json: Bool) -> Never {
        if json {
            Output.printJSON(["error": .string(message)])
        } else {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        }
        exit(1)
    }
}

/// What a subcommand has to say: the same facts for scripts (`json`) and for people (`text`).
struct Report {
    /// Nil when the command already streamed its document (export).
    var json: JSONValue?
    var text: String
    /// The command ran but its answer is "no" (a failed `check`): exit 1 after printing.
    var failed = false
}
