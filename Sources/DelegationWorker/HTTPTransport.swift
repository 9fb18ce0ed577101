import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

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
        do {
            // The client's deadline covers the head of the answer; a peer trickling its body one byte a
            // second (slow-loris) would outlive it. The race below bounds the whole exchange.
            return try await withThrowingTaskGroup(of: HTTPAnswer?.self) { group in
                group.addTask {
                    let response = try await client.execute(finished, timeout: amount)
                    let buffer = try await response.body.collect(upTo: maximumBody)
                    return HTTPAnswer(
                        status: Int(response.status.code), headers: response.headers,
                        body: Array(buffer.readableBytesView))
                }
                group.addTask {
                    try await Task.sleep(for: timeout + .milliseconds(250))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else {
                    throw RequestDeadline()
                }
                return answer
            }
        } catch is RequestDeadline {
            if Task.isCancelled { throw CancellationError() }
            throw TransportError(description: "request timed out after \(timeout) (answer not complete)")
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw OversizedAnswer(limit: maximumBody)
        } catch {
            if Task.isCancelled { throw CancellationError() }
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

/// The whole exchange (head and body) outlived the request timeout.
private struct RequestDeadline: Error {}
