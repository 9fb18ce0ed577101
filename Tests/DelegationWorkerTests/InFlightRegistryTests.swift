@testable import DelegationWorker
import Foundation
import Synchronization
import Testing

/// A row can be claimed again (its retry fell due) before the task that handled its previous claim has
/// finished winding down. That old task must not end the new claim's work: this once stranded a row
/// in_progress under a live worker until shutdown.
@Suite struct InFlightRegistryTests {
    @Test func aWindingDownClaimCannotRevokeOrRemoveTheNextClaimOfTheSameRow() async throws {
        let registry = InFlightRegistry()
        let first = registry.add("row")
        let oldWaiter = Task { await registry.waitUntilRevoked("row", token: first) }
        try await Task.sleep(for: .milliseconds(20))

        let second = registry.add("row")  // claimed again while the first task is still around
        await oldWaiter.value  // the superseded claim's waiter is resumed, not leaked

        let revoked = Atomic<Bool>(false)
        let newWaiter = Task {
            await registry.waitUntilRevoked("row", token: second)
            revoked.store(true, ordering: .sequentiallyConsistent)
        }
        registry.remove("row", token: first)  // the old task finishes last
        try await Task.sleep(for: .milliseconds(50))
        #expect(registry.count == 1, "the new claim is still registered")
        let revokedEarly = revoked.load(ordering: .sequentiallyConsistent)
        #expect(!revokedEarly, "and its work goes on")

        #expect(registry.revoke("row"))
        await newWaiter.value
        let revokedNow = revoked.load(ordering: .sequentiallyConsistent)
        #expect(revokedNow)
        registry.remove("row", token: second)
        #expect(registry.count == 0)
    }
}
