import DelegationFakes
import DelegationWorker
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
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
            // 64 clients connect (and send half a request) from plain threads while the server stops.
            let connecting = Thread.detachedConnects(count: 64, port: port)
            if round.isMultiple(of: 2) { try await Task.sleep(for: .milliseconds(1)) }
            let stopped = ContinuousClock.now
            await server.stop()
            #expect(ContinuousClock.now - stopped < .seconds(10), "round \(round): stop took too long")
            connecting.wait()
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
            let connecting = Thread.detachedConnects(count: 64, port: UInt16(server.port))
            if round.isMultiple(of: 2) { try await Task.sleep(for: .milliseconds(1)) }
            let stopped = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(ContinuousClock.now - stopped < .seconds(10), "round \(round): shutdown took too long")
            connecting.wait()
        }
    }
}

private extension Thread {
    /// Starts `count` blocking connects to 127.0.0.1:`port`; the group is done when all have been tried.
    static func detachedConnects(count: Int, port: UInt16) -> DispatchGroup {
        let group = DispatchGroup()
        for _ in 0..<count {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard descriptor >= 0 else { return }
                defer { close(descriptor) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = port.bigEndian
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                if connected == 0 {
                    let request = Array("GET / HTTP/1.1\r\nHost: x\r\n".utf8)
                    _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    usleep(20_000)
                }
            }
        }
        return group
    }
}
