import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What a fake server answers, including ways a real server misbehaves.
public struct LoopbackResponse: Sendable {
    public enum Delivery: Sendable {
        case whole
        /// The body in `chunkSize`-byte pieces, `interval` apart (a slow-loris server).
        case trickle(chunkSize: Int, interval: Duration)
        /// The head and the first `bytes` of a longer body, then the connection is closed.
        case resetAfter(bytes: Int)
        /// No answer at all: the connection is closed as soon as the request arrived.
        case closeWithoutResponse
    }

    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Waits this long before answering.
    public var delay: Duration?
    public var delivery: Delivery

    public init(
        status: Int, headers: [(String, String)] = [], body: [UInt8] = [], delay: Duration? = nil,
        delivery: Delivery = .whole
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.delivery = delivery
    }

    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain") -> LoopbackResponse {
        LoopbackResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }
}
