import AsyncHTTPClient
import ServiceLifecycle

/// Owns an `HTTPClient`'s end in a `ServiceGroup`: it runs until the group shuts down (gracefully, or
/// because another service threw), then shuts the client down — so no path leaves a client unclosed.
/// Put it before the services that use the client: the group stops services in reverse order.
public struct HTTPClientService: Service {
    public let client: HTTPClient

    public init(_ client: HTTPClient) {
        self.client = client
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
