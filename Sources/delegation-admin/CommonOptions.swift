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

    @Option(name: .customLong("log-format"), help: "text or json: how warnings are logged on stderr (env LOG_FORMAT; default text).")
    var logFormat: String?

    /// These options where given, else `other`'s (the same options before the subcommand's name).
    func merged(with other: CommonOptions) -> CommonOptions {
        var merged = self
        merged.db = db ?? other.db
        merged.json = json || other.json
        merged.busyTimeout = busyTimeout ?? other.busyTimeout
        merged.logFormat = logFormat ?? other.logFormat
        return merged
    }

    func validate() throws {
        if let busyTimeout, !(busyTimeout >= 0 && busyTimeout <= 3600) {
            throw ValidationError("--busy-timeout must be between 0 and 3600 seconds, not \(busyTimeout)")
        }
    }

    /// The store's configuration from the environment and these options. Read-only access never creates,
    /// writes or migrates the file.
    func configuration(create: Bool, access: StoreConfiguration.Access) throws -> StoreConfiguration {
        var configuration = try StoreConfiguration.fromEnvironment()
        if let db { configuration.path = db }
        if let busyTimeout { configuration.busyTimeout = .milliseconds(Int64(busyTimeout * 1000)) }
        configuration.access = access
        configuration.createIfMissing = create && access == .readWrite
        return configuration
    }
}
