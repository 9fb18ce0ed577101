import DelegationStore
import DelegationTool
import Foundation
import Synchronization

/// Discovery answers by workspace: found URLs kept for `lifetime`, and the request in flight shared.
final class DiscoveryCache: Sendable {
    private struct State {
        var found: [String: (url: String, until: ContinuousClock.Instant)] = [:]
        var inFlight: [String: Task<PlatformClient.Discovery, any Error>] = [:]
    }

    private let lifetime: Duration
    private let state = Mutex(State())

    init(lifetime: Duration) { self.lifetime = lifetime }

    func url(for target: String) -> String? {
        state.withLock { state in
            guard let entry = state.found[target], entry.until > .now else { return nil }
            return entry.url
        }
    }

    /// The request already asking about `target`, or a new one made with `start`. The request records its
    /// own answer, so a caller that gives up waiting never leaves it stuck in flight.
    func ask(
        _ target: String, start: @escaping @Sendable () async throws -> PlatformClient.Discovery
    ) -> Task<PlatformClient.Discovery, any Error> {
        state.withLock { state in
            if let task = state.inFlight[target] { return task }
            let lifetime = self.lifetime
            let task = Task {
                do {
                    let result = try await start()
                    self.state.withLock { state in
                        state.inFlight[target] = nil
                        if case .found(let url) = result { state.found[target] = (url, .now + lifetime) }
                    }
                    return result
                } catch {
                    self.state.withLock { $0.inFlight[target] = nil }
                    throw error
                }
            }
            state.inFlight[target] = task
            return task
        }
    }

    func forget(_ target: String) {
        _ = state.withLock { $0.found.removeValue(forKey: target) }
    }
}
