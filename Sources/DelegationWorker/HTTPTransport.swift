import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The one HTTP client a worker process uses: connections are pooled and reused across delegations.
struct HTTPTransport: Sendable {
    let client: HTTPClient
    /// Answers larger than this are refused rather than held in memory.
    let maximumBody: Int

    static func makeClient(concurrency: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,  // a redirect is an answer, not an instruction (no hop to file://)
            timeout: .init(connect: .seconds(10)),
            connectionPool: .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency)))
        configuration.httpVersion = .http1Only
        // A refused connection should fail this attempt now: the worker's own retries are durable and
        // backed off, while the pool's would silently spend the whole request timeout (300 s) retrying.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func send(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration
    ) async throws -> HTTPAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let (seconds, attoseconds) = timeout.components
        let amount = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let client = self.client
        let maximumBody = self.maximumBody
        let finished = request
        // The client's deadline covers the head of the answer; a peer trickling its body one byte a second
        // (slow-loris) would outlive it. A timer on an event loop bounds the whole exchange: it cancels the
        // exchange when it fires, and is itself freed when the answer comes first (a cancelled Task.sleep
        // keeps its memory until its deadline: ~0.7 KB per request for the whole --timeout).
        let exchange = Task {
            let response = try await client.execute(finished, timeout: amount)
            let buffer = try await response.body.collect(upTo: maximumBody)
            return HTTPAnswer(status: Int(response.status.code), headers: response.headers, body: Array(buffer.readableBytesView))
        }
        let expired = Mutex(false)
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: amount + .milliseconds(250)) {
            expired.withLock { $0 = true }
            exchange.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await exchange.value
            } onCancel: {
                exchange.cancel()
            }
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw OversizedAnswer(limit: maximumBody)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            if expired.withLock({ $0 }) {
                throw TransportError(description: "request timed out after \(timeout) (answer not complete)")
            }
            if error is CancellationError { throw CancellationError() }
            throw TransportError(description: Self.describe(error, timeout: timeout))
        }
    }

    /// Words an operator understands for what went wrong on the wire.
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "request timed out after \(timeout)"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "connection closed by the server before a complete answer"
            case .cancelled: return "request cancelled"
            default: return "HTTP client error: \(error)"
            }
        }
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("connection refused") || text.contains("ECONNREFUSED") || text.contains("errno: 111") {
            return "connection refused (\(text))"
        }
        if error is HTTPParserError {
            return "connection closed before the answer was complete (\(text))"
        }
        if text.localizedCaseInsensitiveContains("reset by peer") || text.contains("errno: 104") {
            return "connection reset (\(text))"
        }
        return text
    }
}

