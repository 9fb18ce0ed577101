import DelegationStore
import Synchronization

/// Which A2A generation each peer URL speaks: learned from answers, kept in `a2a_peers`
/// so that a restart does not ask a 1.0-only peer in 0.3 first again.
final class PeerDirectory: Sendable {
    private let store: DelegationStore
    private let known = Mutex<[String: A2AVersion]>([:])

    init(store: DelegationStore) {
        self.store = store
    }

    func load() async throws {
        let stored = try await store.read("loading peer protocols") { try PeerProtocols.all($0) }
        known.withLock { known in
            for (url, version) in stored { known[url] = A2AVersion(rawValue: version) }
        }
    }

    func version(for url: String) -> A2AVersion? {
        known.withLock { $0[url] }
    }

    func remember(_ version: A2AVersion, for url: String) async {
        let changed = known.withLock { known -> Bool in
            defer { known[url] = version }
            return known[url] != version
        }
        guard changed else { return }
        _ = try? await store.write("remembering the protocol of \(url)") { database in
            try PeerProtocols.remember(database, url: url, protocol: version.rawValue)
        }
    }
}
