import DelegationStore
import DelegationTool
import Foundation

extension DatabaseSizes {
    var json: JSONValue { ["database_bytes": .int(database), "wal_bytes": .int(wal)] }
    var text: String { "database \(Self.format(database)), WAL \(Self.format(wal))" }

    static func format(_ bytes: Int) -> String {
        switch bytes {
        case ..<1024: "\(bytes) B"
        case ..<(1024 * 1024): String(format: "%.1f KiB", Double(bytes) / 1024)
        default: String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
        }
    }
}

extension Checkpoint {
    var json: JSONValue {
        ["busy": .bool(busy), "wal_frames": .int(walFrames), "checkpointed_frames": .int(checkpointedFrames)]
    }
}
