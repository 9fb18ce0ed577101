/// One numbered file from `migrations/`, embedded into the binary at build time.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String

    /// Every migration this build knows, in order (generated from `migrations/*.sql`).
    public static let all: [Migration] = EmbeddedMigrations.all

    /// FNV-1a 64 of the file's bytes: detects a migration edited after it was applied.
    public var checksum: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
