import DelegationFakes
import DelegationWorker
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// The two HTTP servers we run on NIO — the fakes' (stopped by the chaos run's platform outages) and the
/// worker's `/metrics` — stopped while clients connect. NIO dropped a connection set up after the
/// listener closed with its writer unfinished and trapped on that ("Deinited NIOAsyncWriter without
/// calling finish()"): the harness died; a worker shutting down during a scrape would have too.
@Suite struct LoopbackServerTests {
    @Test func stoppingWhileConnectionsArriveNeitherTrapsNorHangs() async throws {
        for round in 0..<20 {
            let server = try await LoopbackHTTPServer.start { _ in LoopbackResponse.text(200, "ok") }
            let port = UInt16(server.port)
            // 48 clients connect (and send half a request) from plain threads while the server stops.
            let clients = Clients.connect(count: 48, port: port)
            if round.isMultiple(of: 2) { try await Task.sleep(for: .milliseconds(1)) }
            let stopped = ContinuousClock.now
            await server.stop()
            let returned = ContinuousClock.now
            #expect(returned - stopped < .seconds(30), "round \(round): stop took too long (a hang)")
            await clients.finished()
            let leftOpen = clients.neverClosed
            #expect(leftOpen == 0, "round \(round): \(leftOpen) connection(s) never closed by the server (30 s)")
        }
    }
}

extension LoopbackServerTests {
    @Test func theMetricsServerShutsDownWhileScrapersConnect() async throws {
        for round in 0..<20 {
            let server = try await MetricsServer(
                registry: PrometheusCollectorRegistry(), host: "127.0.0.1", port: 0, logger: Logger(label: "metrics-test"))
            let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: Logger(label: "metrics-test")))
            let running = Task { try await group.run() }
            let clients = Clients.connect(count: 48, port: UInt16(server.port))
            if round.isMultiple(of: 2) { try await Task.sleep(for: .milliseconds(1)) }
            let stopped = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await running.value
            let returned = ContinuousClock.now
            #expect(returned - stopped < .seconds(30), "round \(round): shutdown took too long (a hang)")
            await clients.finished()
            let leftOpen = clients.neverClosed
            #expect(leftOpen == 0, "round \(round): \(leftOpen) connection(s) never closed by the server (30 s)")
        }
    }
}

/// Clients on plain threads that connect, send half a request and then wait (up to 30 s) for the server
/// to end the connection (EOF or a reset), noting when it did.
private final class Clients: Sendable {
    let group = DispatchGroup()
    /// When each connected client saw its connection end; nil: not within 30 s.
    private let endings = Mutex<[ContinuousClock.Instant?]>([])

    /// Waits (without blocking a thread) until every client is done.
    func finished() async {
        while group.wait(timeout: .now()) == .timedOut { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// Connected clients whose connection the server never ended (they gave up after 30 s). Generous on
    /// purpose: in the full suite other tests' blocking SQLite waits can hold both cooperative threads for
    /// seconds, and the stop with them; a connection NIO dropped stays open until the client gives up.
    var neverClosed: Int { endings.withLock { $0.filter { $0 == nil }.count } }

    static func connect(count: Int, port: UInt16) -> Clients {
        let clients = Clients()
        for _ in 0..<count {
            clients.group.enter()
            Thread.detachNewThread {
                defer { clients.group.leave() }
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard descriptor >= 0 else { return }
                defer { close(descriptor) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                guard connected == 0 else { return }  // refused: the listener was already closed
                let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8)
                _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                var timeout = timeval(tv_sec: 30, tv_usec: 0)
                setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let received = recv(descriptor, &buffer, buffer.count, 0)
                    if received > 0 { continue }  // an answer (the request was never finished): read on
                    let timedOut = received == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)
                    clients.endings.withLock { $0.append(timedOut ? nil : ContinuousClock.now) }
                    return  // 0: EOF; -1 otherwise: reset
                }
            }
        }
        return clients
    }
}
