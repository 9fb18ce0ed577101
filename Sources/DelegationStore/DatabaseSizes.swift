import Foundation

/// The database file and its WAL, in bytes.
public struct DatabaseSizes: Sendable, Equatable {
    public var database: Int
    public var wal: Int

    /// Reads the sizes of `path` and `path-wal` (0 for a missing file).
    public init(path: String) {
        func size(_ path: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        }
        database = size(path)
        wal = size(path + "-wal")
    }
}
