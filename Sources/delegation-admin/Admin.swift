import ArgumentParser
import DelegationLogging
import DelegationStore
import DelegationTool
import Foundation

/// Opens the store, runs one subcommand's work, prints its report, and turns every failure into the
/// same two shapes: `{"error": ...}` on stdout with `--json`, `error: ...` on stderr without; exit 1.
enum Admin {
    /// `access`: `.readOnly` for the commands that only look (`list`, `show`, `stats`, …): they open the
    /// file read-only and never migrate it.
    static func run(
        _ options: CommonOptions, create: Bool = false, access: StoreConfiguration.Access = .readWrite,
        _ body: (DelegationStore) async throws -> Report
    ) async throws {
        do {
            // Warnings (a denied delegation, …) on stderr, as text or JSON lines; stdout is the answer's.
            try LogFormat.resolve(flag: options.logFormat, environment: ProcessInfo.processInfo.environment)
                .bootstrap(level: .warning)
            let store = try DelegationStore(try options.configuration(create: create, access: access))
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
            FileDescriptorOutput.write("error: \(message)\n", to: STDERR_FILENO)
        }
        exit(1)
    }
}
