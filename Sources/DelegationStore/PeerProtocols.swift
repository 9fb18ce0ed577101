package import SQLiteDatabase

/// Which A2A generation a peer speaks, as learned from its answers.
package enum PeerProtocols {
    package static func all(_ database: Database) throws -> [String: String] {
        Dictionary(
            try database.query("SELECT url, protocol FROM a2a_peers").map { ($0[0].string ?? "", $0[1].string ?? "0.3") },
            uniquingKeysWith: { $1 })
    }

    package static func remember(_ database: Database, url: String, protocol version: String) throws {
        try database.execute(
            """
            INSERT INTO a2a_peers (url, protocol) VALUES (?1, ?2)
            ON CONFLICT (url) DO UPDATE SET protocol = excluded.protocol, learned_at = excluded.learned_at
            """, url, version)
    }
}
