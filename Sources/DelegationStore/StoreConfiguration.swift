import Foundation

/// How the store opens its database. `fromEnvironment()` reads the variables the seed tool used.
public struct StoreConfiguration: Sendable {
    /// What a COMMIT promises.
    public enum Durability: String, Sendable, CaseIterable {
        /// `synchronous=FULL`: a committed delegation survives power loss. The default: a delegation
        /// acknowledged as "delegated" must not vanish.
        case full = "FULL"
        /// `synchronous=NORMAL`: survives a crash of the process (kill -9) but a power loss may drop
        /// the last commits. Faster per commit; opt in with `DELEGATION_SYNCHRONOUS=NORMAL`.
        case normal = "NORMAL"
    }

    /// What the store may do to the file.
    public enum Access: Sendable {
        /// Reads and writes; the schema is brought up to date when the store opens it.
        case readWrite
        /// Reads only, on a read-only connection: nothing is ever written, the schema is never migrated
        /// (an out-of-date one is an error that says to run `delegation-admin migrate`).
        case readOnly
    }

    public var path: String
    public var durability: Durability
    /// How long a write waits for another connection's lock before failing with a typed busy error.
    public var busyTimeout: Duration
    /// This agent's own workspace id, stored as `source_workspace_id` on new delegations.
    public var sourceWorkspaceID: String?
    /// False: the database file must already exist (the admin CLI's inspecting commands).
    public var createIfMissing: Bool
    public var access: Access
    /// Each time the write-ahead log has grown by this many pages, the writer copies the last stretch into
    /// the database itself so that the log can start over (`Checkpointer`); tests lower it.
    package var logRestartPages = 10_000

    public static let defaultPath = "./delegations.db"

    public init(
        path: String = defaultPath,
        durability: Durability = .full,
        busyTimeout: Duration = .seconds(10),
        sourceWorkspaceID: String? = nil,
        createIfMissing: Bool = true,
        access: Access = .readWrite
    ) {
        self.path = path
        self.durability = durability
        self.busyTimeout = busyTimeout
        self.sourceWorkspaceID = sourceWorkspaceID
        self.createIfMissing = createIfMissing && access == .readWrite
        self.access = access
    }

    /// `DELEGATION_DB`, `DELEGATION_SYNCHRONOUS` (FULL|NORMAL), `DELEGATION_BUSY_TIMEOUT_MS`, `WORKSPACE_ID`.
    /// - Throws: `DelegationStoreError` (`invalidInput`) naming the variable whose value is unusable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> StoreConfiguration
    {
        var configuration = StoreConfiguration()
        if let path = environment["DELEGATION_DB"], !path.isEmpty { configuration.path = path }
        if let value = environment["DELEGATION_SYNCHRONOUS"], !value.isEmpty {
            guard let durability = Durability(rawValue: value.uppercased()) else {
                throw DelegationStoreError.invalidInput("DELEGATION_SYNCHRONOUS must be FULL or NORMAL, not \(value)")
            }
            configuration.durability = durability
        }
        if let value = environment["DELEGATION_BUSY_TIMEOUT_MS"], !value.isEmpty {
            guard let milliseconds = Int(value), (0...3_600_000).contains(milliseconds) else {
                throw DelegationStoreError.invalidInput("DELEGATION_BUSY_TIMEOUT_MS must be a whole number of milliseconds, not \(value)")
            }
            configuration.busyTimeout = .milliseconds(milliseconds)
        }
        configuration.sourceWorkspaceID = environment["WORKSPACE_ID"].flatMap { $0.isEmpty ? nil : $0 }
        return configuration
    }
}
