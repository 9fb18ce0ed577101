import DelegationStore
import Synchronization

/// Which A2A generation each peer URL speaks: read from its agent card the first time, learned from its
/// answers after that, and kept in `a2a_peers` so that a restart does not ask a 1.0-only peer in 0.3 first.
final class PeerDirectory: Sendable {
    private let store: DelegationStore
    private let transport: HTTPTransport
    private let known = Mutex<[String: A2AVersion]>([:])

    init(store: DelegationStore, transport: HTTPTransport) {
        self.store = store
        self.transport = transport
    }

    func load() async throws {
        let stored = try await store.knownPeerProtocols()
        known.withLock { known in
            for (url, version) in stored { known[url] = A2AVersion(rawValue: version) }
        }
    }

    /// True when a generation is remembered for `url` (from an answer or a card).
    func knows(_ url: String) -> Bool {
        known.withLock { $0[url] != nil }
    }

    /// The generation to speak first: the remembered one, else the agent card's, else 0.3 (the worker
    /// switches on -32601/-32009 and remembers what worked).
    func version(for url: String, timeout: Duration) async -> A2AVersion {
        if let version = known.withLock({ $0[url] }) { return version }
        guard let cardURL = AgentCard.url(forPeer: url),
            let answer = try? await transport.send(.GET, cardURL, headers: [("Accept", "application/json")], timeout: timeout),
            answer.status == 200, let version = AgentCard.version(from: answer.body)
        else { return .v03 }
        await remember(version, for: url)
        return version
    }

    func remember(_ version: A2AVersion, for url: String) async {
        let changed = known.withLock { known -> Bool in
            defer { known[url] = version }
            return known[url] != version
        }
        guard changed else { return }
        try? await store.rememberPeerProtocol(version.rawValue, for: url)
    }
}
