import Foundation
import Synchronization

/// The delegations this process is working on, and a way to stop the work on one of them
/// (its lease was lost) or on all (the shutdown grace period is over).
final class InFlightRegistry: Sendable {
    /// One claim of a row. A row can be claimed again (its retry fell due) while the task that handled
    /// the previous claim is still winding down; the token keeps that task from touching the new entry.
    private struct Entry {
        var token: UInt64
        var revoked = false
        var settled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var nextToken: UInt64 = 0
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.entries.count } }
    var ids: [String] { state.withLock { Array($0.entries.keys) } }
    /// Every claim in flight, with its token: what a revocation must name, so that a row claimed again
    /// after the snapshot is not stopped for its previous claim's sake.
    var claims: [(id: String, token: UInt64)] { state.withLock { $0.entries.map { ($0.key, $0.value.token) } } }

    /// Registers a fresh claim of `id`; the token names this claim in `remove` and `waitUntilRevoked`.
    func add(_ id: String) -> UInt64 {
        let (token, previous) = state.withLock { state -> (UInt64, CheckedContinuation<Void, Never>?) in
            state.nextToken += 1
            let previous = state.entries[id]?.waiter
            state.entries[id] = Entry(token: state.nextToken)
            return (state.nextToken, previous)
        }
        // A previous claim's work is over (or must stop: this process holds the row anew).
        previous?.resume()
        return token
    }

    /// Forgets claim `token` of `id`; a newer claim of the same row is left alone.
    func remove(_ id: String, token: UInt64) {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let entry = state.entries[id], entry.token == token else { return nil }
            state.entries.removeValue(forKey: id)
            return entry.waiter
        }?.resume()
    }

    /// The delegation's outcome is written: losing its lease from now on is expected, not news.
    func settle(_ id: String) {
        state.withLock { $0.entries[id]?.settled = true }
    }

    /// Stops the work on `id` (only claim `token` of it, when given); false when it was already settled,
    /// gone, or claimed anew.
    @discardableResult
    func revoke(_ id: String, token: UInt64? = nil) -> Bool {
        let (waiter, wasLive) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
            guard var entry = state.entries[id], token == nil || entry.token == token else { return (nil, false) }
            let wasLive = !entry.settled && !entry.revoked
            entry.revoked = true
            let waiter = entry.waiter
            entry.waiter = nil
            state.entries[id] = entry
            return (waiter, wasLive)
        }
        waiter?.resume()
        return wasLive
    }

    func revokeAll() {
        for id in ids { revoke(id) }
    }

    /// Returns when claim `token` of `id` is revoked or superseded (or the waiting task is cancelled).
    func waitUntilRevoked(_ id: String, token: UInt64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard var entry = state.entries[id], entry.token == token, !entry.revoked, !Task.isCancelled
                    else { return true }
                    entry.waiter = continuation
                    state.entries[id] = entry
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let entry = state.entries[id], entry.token == token else { return nil }
                state.entries[id]?.waiter = nil
                return entry.waiter
            }?.resume()
        }
    }

    /// Waits until nothing is in flight, or `timeout`; true when it emptied.
    func waitUntilEmpty(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while count > 0 {
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
