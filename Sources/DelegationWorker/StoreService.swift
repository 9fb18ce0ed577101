import DelegationStore
import ServiceLifecycle

/// Owns a `DelegationStore`'s end in a `ServiceGroup`: closes it (finishing queued writes) when the group
/// shuts down. First in the group's list, so it closes last, after every service that writes.
public struct StoreService: Service {
    public let store: DelegationStore

    public init(_ store: DelegationStore) {
        self.store = store
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}
