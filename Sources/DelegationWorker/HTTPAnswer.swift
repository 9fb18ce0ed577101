import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An HTTP answer, read whole (up to a size limit).
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    /// The start of the body as text, for error messages and logs (at most 300 bytes of it).
    var excerpt: String {
        let text = String(decoding: body.prefix(300), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: " ")
        return body.count > 300 ? text + "…" : text
    }
}
