import DelegationStore
import DelegationTool
import Foundation
import Synchronization

/// The platform's HTTP API as the worker meets it (`shared/reference/platform-api.md`).
struct PlatformClient: Sendable {
    let transport: HTTPTransport
    let baseURL: String
    let workspaceID: String
    let token: String?
    let timeout: Duration
    /// Recent discoveries, shared by every delegation to the same workspace.
    let discoveries = DiscoveryCache(lifetime: .seconds(10))

    enum Discovery: Equatable {
        case found(url: String)
        /// A definitive no: the delegation fails with this text.
        case failed(String)
        /// The platform could not answer now: try again later.
        case retry(String, retryAfter: Duration?)
    }

    private var headers: [(String, String)] {
        var headers = [("X-Workspace-ID", workspaceID), ("Accept", "application/json")]
        if let token, !token.isEmpty { headers.append(("Authorization", "Bearer \(token)")) }
        return headers
    }

    private func url(_ path: String) -> String {
        (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + path
    }

    static func pathComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }

    /// `GET /registry/discover/{ws}`, remembered for a few seconds when it found a URL, and asked once
    /// for all the delegations that want the same workspace at the same time (10,000 delegations to one
    /// peer made 10,000 identical calls, and the platform's answers were the slowest part of claim-to-send).
    func discover(_ target: String) async throws -> Discovery {
        if let url = discoveries.url(for: target) { return .found(url: url) }
        return try await valueUnlessCancelled(discoveries.ask(target) { try await discoverUncached(target) })
    }

    /// Forgets what discovery said for `target` (its peer could not be reached there).
    func forget(_ target: String) {
        discoveries.forget(target)
    }

    /// The seed's texts: "Discovery failed: HTTP 404", "No URL for workspace".
    private func discoverUncached(_ target: String) async throws -> Discovery {
        let answer: HTTPAnswer
        do {
            answer = try await transport.send(
                .GET, url("/registry/discover/\(Self.pathComponent(target))"), headers: headers, timeout: timeout)
        } catch let error as TransportError {
            WorkerMetrics.platformRequest("discover", status: nil)
            return .retry("Discovery failed: \(error.description)", retryAfter: nil)
        } catch let error as OversizedAnswer {
            WorkerMetrics.platformRequest("discover", status: nil)
            return .failed("Discovery failed: \(error.description)")
        }
        WorkerMetrics.platformRequest("discover", status: answer.status)
        return Self.discovery(from: answer, target: target)
    }

    /// What a discovery answer means. Pure, and total over any status and any bytes.
    static func discovery(from answer: HTTPAnswer, target: String) -> Discovery {
        let target = TextLimit.capped(target, maximumBytes: 256)
        switch answer.status {
        case 200:
            guard let body = try? JSONValue.parse(answer.body), body.isObject else {
                return .failed("Discovery failed: invalid JSON response")
            }
            guard let url = body["url"]?.stringValue?.trimmingCharacters(in: .whitespaces), !url.isEmpty else {
                return .failed("No URL for workspace \(target)")
            }
            guard url.utf8.count <= 2048, let parsed = URL(string: url),
                ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host?.isEmpty == false
            else {
                return .failed("No URL for workspace \(target): '\(TextLimit.capped(url, maximumBytes: 300))' is not an http or https URL")
            }
            return .found(url: url)
        case 400, 403, 404:
            return .failed("Discovery failed: HTTP \(answer.status)")
        case 401, 408, 425, 429, 500...599:
            return .retry("Discovery failed: HTTP \(answer.status)", retryAfter: RetryAfter.of(answer))
        default:
            return .failed("Discovery failed: HTTP \(answer.status)")
        }
    }

    /// Posts one outbox item to its endpoint.
    func deliver(_ item: OutboxItem) async throws -> HTTPAnswer {
        let path: String
        switch item.kind {
        case .record: path = "/workspaces/\(Self.pathComponent(workspaceID))/delegations/record"
        case .update: path = "/workspaces/\(Self.pathComponent(workspaceID))/delegations/\(Self.pathComponent(item.delegationID))/update"
        case .notify: path = "/workspaces/\(Self.pathComponent(workspaceID))/notify"
        }
        do {
            let answer = try await transport.send(.POST, url(path), headers: headers, body: Array(item.body.utf8), timeout: timeout)
            WorkerMetrics.platformRequest(item.kind.rawValue, status: answer.status)
            return answer
        } catch {
            if !(error is CancellationError) { WorkerMetrics.platformRequest(item.kind.rawValue, status: nil) }
            throw error
        }
    }

    struct ListedDelegation: Equatable {
        var delegationID: String
        var status: String
        var responsePreview: String?
        var error: String?
    }

    enum ListError: Error, CustomStringConvertible {
        case http(Int, String)
        case malformed(String)
        var description: String {
            switch self {
            case .http(let status, let body): "HTTP \(status): \(body)"
            case .malformed(let reason): "malformed delegation list: \(reason)"
            }
        }
    }

    /// `GET /workspaces/{self}/delegations`: a bare array, newest first. Rows without a
    /// `delegation_id` or a `status` are skipped; an answer that is not an array is an error.
    func listDelegations() async throws -> [ListedDelegation] {
        let answer: HTTPAnswer
        do {
            answer = try await transport.send(
                .GET, url("/workspaces/\(Self.pathComponent(workspaceID))/delegations"), headers: headers, timeout: timeout)
        } catch {
            if !(error is CancellationError) { WorkerMetrics.platformRequest("list", status: nil) }
            throw error
        }
        WorkerMetrics.platformRequest("list", status: answer.status)
        return try Self.listed(from: answer)
    }

    /// The rows of a list answer. Pure: any other status, or a body that is not an array, is a `ListError`.
    static func listed(from answer: HTTPAnswer) throws(ListError) -> [ListedDelegation] {
        guard answer.status == 200 else { throw ListError.http(answer.status, answer.excerpt) }
        guard let document = try? JSONValue.parse(answer.body) else { throw ListError.malformed("invalid JSON") }
        guard let rows = document.arrayValue else { throw ListError.malformed("expected an array, got \(answer.excerpt)") }
        return rows.compactMap { row in
            guard let id = row["delegation_id"]?.stringValue, let status = row["status"]?.stringValue else { return nil }
            return ListedDelegation(
                delegationID: id, status: status,
                responsePreview: row["response_preview"]?.stringValue.map { TextLimit.capped($0, maximumBytes: TextLimit.result) },
                error: row["error"]?.stringValue.map { TextLimit.capped($0, maximumBytes: TextLimit.error) })
        }
    }
}
