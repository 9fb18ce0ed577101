import DelegationWorker
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A minimal HTTP/1.1 server on 127.0.0.1, for fakes that must behave like real servers: keep-alive,
/// any status, any bytes, and the failures (slow, truncated, reset) that real networks produce.
public final class LoopbackHTTPServer: Sendable {
    public typealias Handler = @Sendable (LoopbackRequest) async -> LoopbackResponse

    public let port: Int
    private let serverChannel: any Channel
    private let connections: OpenConnections
    private let serving: Task<Void, Never>
    /// Finishes when the accept loop has ended.
    private let acceptEnded: AsyncStream<Void>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts listening; `port` 0 picks a free one.
    public static func start(port: Int = 0, handler: @escaping Handler) async throws -> LoopbackHTTPServer {
        let connections = OpenConnections()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try connections.setUpHTTP(channel) }
            }
        return LoopbackHTTPServer(server: server, connections: connections, handler: handler)
    }

    private init(
        server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        connections: OpenConnections, handler: @escaping Handler
    ) {
        port = server.channel.localAddress?.port ?? 0
        serverChannel = server.channel
        self.connections = connections
        let (acceptEnded, acceptEndedContinuation) = AsyncStream<Void>.makeStream()
        self.acceptEnded = acceptEnded
        serving = Task {
            await withDiscardingTaskGroup { group in
                try? await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await Self.serve(connection, handler: handler) }
                    }
                }
                acceptEndedContinuation.finish()
            }
        }
    }

    /// Stops listening, closes every connection set up so far (served or not: clients see EOF at once,
    /// as "connection refused" is what a stopped server should mean) and cancels handlers still at work.
    public func stop() async {
        let open = connections.closeAll()
        try? await serverChannel.close()
        for channel in open { try? await channel.close() }
        for await _ in acceptEnded {}
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
