import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A request that got no HTTP answer: the network failed, or it took too long. Always worth retrying.
struct TransportError: Error, CustomStringConvertible {
    let description: String
}
