/// One row of `schema_migrations`: a migration applied to the database, and when.
public struct AppliedMigration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let checksum: String
    public let appliedAt: String
}
