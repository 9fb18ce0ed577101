import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// `GET /metrics` in the Prometheus text format, on `host:port` (127.0.0.1 unless told otherwise: the
/// figures are operational detail, not for the whole network). A `Service`: it stops with its group,
/// closing the connections it has open — an idle one (a port scanner, a half-open scraper) must not
/// keep the process alive — and a connection that sends no request within `requestTimeout` is closed.
public final class MetricsServer: Service, Sendable {
    private let registry: PrometheusCollectorRegistry
    private let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let connections = OpenConnections()
    private let logger: Logger

    /// How long a connection may take to send its request.
    static let requestTimeout: Duration = .seconds(5)

    /// The address it listens on (the port the system chose when asked for 0).
    public let host: String
    public let port: Int

    /// Binds at once, so a port in use fails the start of the program, not a scrape later.
    /// - Throws: NIO's error for an address that cannot be bound.
    public init(registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger) async throws {
        self.registry = registry
        self.logger = logger
        let connections = self.connections
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try connections.setUpHTTP(channel) }
            }
        self.host = host
        self.port = channel.channel.localAddress?.port ?? port
    }

    public func run() async throws {
        logger.info("metrics at http://\(host):\(port)/metrics")
        let registry = self.registry
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await Self.serve(connection, registry: registry) }
                    }
                }
            }
        } onGracefulShutdown: {
            // Every connection set up so far, served or not; later ones are closed as they are set up.
            let open = self.connections.closeAll()
            self.channel.channel.close(promise: nil)
            for connection in open { connection.close(promise: nil) }
        }
    }

    private static func serve(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, registry: PrometheusCollectorRegistry
    ) async {
        // A request must arrive in time: the connection is closed when the deadline passes first.
        let channel = connection.channel
        let deadline = Task {
            try await Task.sleep(for: requestTimeout)
            try await channel.close()
        }
        defer { deadline.cancel() }
        try? await connection.executeThenClose { inbound, outbound in
            for try await part in inbound {
                guard case .head(let head) = part else { continue }
                deadline.cancel()
                var body: [UInt8] = []
                let status: HTTPResponseStatus
                if head.method == .GET, head.uri.split(separator: "?").first == "/metrics" {
                    registry.emit(into: &body)
                    status = .ok
                } else {
                    body = Array("only GET /metrics here\n".utf8)
                    status = .notFound
                }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
                headers.add(name: "Content-Length", value: "\(body.count)")
                headers.add(name: "Connection", value: "close")
                try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
                try await outbound.write(.end(nil))
                return
            }
        }
    }
}
