import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The peer's answer was larger than the worker will hold.
struct OversizedAnswer: Error, CustomStringConvertible {
    let limit: Int
    var description: String { "answer larger than \(limit) bytes" }
}
