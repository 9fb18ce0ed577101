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
    private struct Entry {
        var revoked = false
        var settled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let entries = Mutex<[String: Entry]>([:])

    var count: Int { entries.withLock { $0.count } }
    var ids: [String] { entries.withLock { Array($0.keys) } }

    func add(_ id: String) {
        entries.withLock { $0[id] = Entry() }
    }

    func remove(_ id: String) {
        entries.withLock { $0.removeValue(forKey: id) }?.waiter?.resume()
    }

    /// The delegation's outcome is written: losing its lease from now on is expected, not news.
    func settle(_ id: String) {
        entries.withLock { $0[id]?.settled = true }
    }

    /// Stops the work on `id`; false when it was already settled or gone.
    @discardableResult
    func revoke(_ id: String) -> Bool {
        let (waiter, wasLive) = entries.withLock { entries -> (CheckedContinuation<Void, Never>?, Bool) in
            guard var entry = entries[id] else { return (nil, false) }
            let wasLive = !entry.settled && !entry.revoked
            entry.revoked = true
            let waiter = entry.waiter
            entry.waiter = nil
            entries[id] = entry
            return (waiter, wasLive)
        }
        waiter?.resume()
        return wasLive
    }

    func revokeAll() {
        for id in ids { revoke(id) }
    }

    /// Returns when `id` is revoked (or the waiting task is cancelled).
    func waitUntilRevoked(_ id: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = entries.withLock { entries -> Bool in
                    guard var entry = entries[id], !entry.revoked, !Task.isCancelled else { return true }
                    entry.waiter = continuation
                    entries[id] = entry
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            entries.withLock { entries -> CheckedContinuation<Void, Never>? in
                defer { entries[id]?.waiter = nil }
                return entries[id]?.waiter
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
