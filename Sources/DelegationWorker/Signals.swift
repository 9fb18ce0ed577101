import Foundation
import Synchronization

/// Fires once; everyone waiting (now or later) resumes. Cancelling a waiter resumes it too.
final class OneShotSignal: Sendable {
    private struct State {
        var fired = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextKey: UInt64 = 0
    }

    private let state = Mutex(State())

    var hasFired: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        let key = state.withLock { state -> UInt64 in
            state.nextKey += 1
            return state.nextKey
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[key] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: key) }?.resume()
        }
    }
}

/// An auto-reset event: `notify()` wakes one `wait()` (or the next one, if nobody waits yet).
final class WakeUp: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func notify() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Waits for a `notify()`; one waiter at a time.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume()
        }
    }
}

/// Sleeps for `duration` unless `signal` fires first; true when the signal ended the sleep.
func sleep(for duration: Duration, unless signal: OneShotSignal) async -> Bool {
    if signal.hasFired { return true }
    return await withTaskGroup(of: Bool.self) { group in
        group.addTask {
            try? await Task.sleep(for: duration)
            return false
        }
        group.addTask {
            await signal.wait()
            return true
        }
        let first = await group.next() ?? true
        group.cancelAll()
        return first || signal.hasFired
    }
}

/// Waits for `wakeUp`, `duration`, or `signal`, whichever comes first.
func wait(for wakeUp: WakeUp, atMost duration: Duration, unless signal: OneShotSignal) async {
    if signal.hasFired { return }
    await withTaskGroup(of: Void.self) { group in
        group.addTask { try? await Task.sleep(for: duration) }
        group.addTask { await wakeUp.wait() }
        group.addTask { await signal.wait() }
        _ = await group.next()
        group.cancelAll()
    }
}

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

    /// Stops the work on `id`; false when it was already settled or gone.
    @discardableResult
    func revoke(_ id: String) -> Bool {
        let (waiter, wasLive) = state.withLock { state -> (CheckedContinuation<Void, Never>?, Bool) in
            guard var entry = state.entries[id] else { return (nil, false) }
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
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
