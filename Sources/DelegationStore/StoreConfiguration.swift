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

    public var path: String
    public var durability: Durability
    /// How long a write waits for another connection's lock before failing with a typed busy error.
    public var busyTimeout: Duration
    /// The caller's roles, for the `delegate` permission check.
    public var roles: [String]
    /// This agent's own workspace id, stored as `source_workspace_id` on new delegations.
    public var sourceWorkspaceID: String?
    /// False: the database file must already exist (the admin CLI's inspecting commands).
    public var createIfMissing: Bool

    public static let defaultPath = "./delegations.db"

    public init(
        path: String = defaultPath,
        durability: Durability = .full,
        busyTimeout: Duration = .seconds(10),
        roles: [String] = ["operator"],
        sourceWorkspaceID: String? = nil,
        createIfMissing: Bool = true
    ) {
        self.path = path
        self.durability = durability
        self.busyTimeout = busyTimeout
        self.roles = roles
        self.sourceWorkspaceID = sourceWorkspaceID
        self.createIfMissing = createIfMissing
    }

    /// `DELEGATION_DB`, `DELEGATION_SYNCHRONOUS` (FULL|NORMAL), `DELEGATION_BUSY_TIMEOUT_MS`,
    /// `WORKSPACE_ROLES` (comma list, default `operator`), `WORKSPACE_ID`.
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
            guard let milliseconds = Int(value), milliseconds >= 0 else {
                throw DelegationStoreError.invalidInput("DELEGATION_BUSY_TIMEOUT_MS must be a whole number of milliseconds, not \(value)")
            }
            configuration.busyTimeout = .milliseconds(milliseconds)
        }
        configuration.roles = RBAC.roles(fromList: environment["WORKSPACE_ROLES"])
        configuration.sourceWorkspaceID = environment["WORKSPACE_ID"].flatMap { $0.isEmpty ? nil : $0 }
        return configuration
    }
}
