import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A request as the fake servers see it.
public struct LoopbackRequest: Sendable {
    public var method: String
    /// Path and query, as sent.
    public var uri: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? "") }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}
