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

/// A minimal HTTP/1.1 server on 127.0.0.1, for fakes that must behave like real servers: keep-alive,
/// any status, any bytes, and the failures (slow, truncated, reset) that real networks produce.
public final class LoopbackHTTPServer: Sendable {
    public typealias Handler = @Sendable (LoopbackRequest) async -> LoopbackResponse

    public let port: Int
    private let serverChannel: any Channel
    private let connections = OpenConnections()
    private let serving: Task<Void, Never>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts listening; `port` 0 picks a free one.
    public static func start(port: Int = 0, handler: @escaping Handler) async throws -> LoopbackHTTPServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return LoopbackHTTPServer(server: server, handler: handler)
    }

    private init(server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>, handler: @escaping Handler) {
        port = server.channel.localAddress?.port ?? 0
        serverChannel = server.channel
        let connections = self.connections
        serving = Task {
            await withDiscardingTaskGroup { group in
                try? await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        let key = connections.add(connection.channel)
                        group.addTask {
                            await Self.serve(connection, handler: handler)
                            connections.remove(key)
                        }
                    }
                }
            }
        }
    }

    /// Stops listening, closes every open connection and cancels handlers still at work.
    public func stop() async {
        try? await serverChannel.close()
        for channel in connections.all { try? await channel.close() }
        serving.cancel()
        await serving.value
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, handler: Handler
    ) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                case .body(let buffer):
                    body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    guard let requestHead = head else { continue }
                    let request = LoopbackRequest(
                        method: requestHead.method.rawValue, uri: requestHead.uri,
                        headers: requestHead.headers.map { ($0.name, $0.value) }, body: body)
                    let response = await handler(request)
                    let keepGoing = try await write(response, keepAlive: requestHead.isKeepAlive, to: outbound)
                    if !keepGoing { return }
                }
            }
        }
    }

    /// Writes `response`; false when the connection must end after it.
    private static func write(
        _ response: LoopbackResponse, keepAlive: Bool, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws -> Bool {
        if let delay = response.delay { try await Task.sleep(for: delay) }
        if case .closeWithoutResponse = response.delivery { return false }
        var headers = HTTPHeaders(response.headers)
        if !headers.contains(name: "Content-Length") { headers.add(name: "Content-Length", value: "\(response.body.count)") }
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        let status = HTTPResponseStatus(statusCode: response.status)
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        switch response.delivery {
        case .whole:
            if !response.body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body)))) }
        case .trickle(let chunkSize, let interval):
            var offset = 0
            while offset < response.body.count {
                let end = min(offset + max(chunkSize, 1), response.body.count)
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body[offset..<end]))))
                offset = end
                if offset < response.body.count { try await Task.sleep(for: interval) }
            }
        case .resetAfter(let bytes):
            let cut = min(bytes, response.body.count)
            if cut > 0 { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body[0..<cut])))) }
            return false
        case .closeWithoutResponse:
            return false
        }
        try await outbound.write(.end(nil))
        return keepAlive
    }
}

/// The connections a server has open, so that stopping it can close them.
final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) -> ObjectIdentifier {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        return key
    }

    func remove(_ key: ObjectIdentifier) {
        _ = channels.withLock { $0.removeValue(forKey: key) }
    }

    var all: [any Channel] { channels.withLock { Array($0.values) } }
}
