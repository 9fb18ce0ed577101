import Foundation
import Synchronization

/// Fires once; everyone waiting (now or later) resumes. Cancelling a waiter resumes it too.
final class OneShotSignal: Sendable {
    private struct State {
        var fired = false
        var firedAt: ContinuousClock.Instant?
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextKey: UInt64 = 0
    }

    private let state = Mutex(State())

    var hasFired: Bool { state.withLock { $0.fired } }

    /// When it fired (nil until then).
    var firedAt: ContinuousClock.Instant? { state.withLock { $0.firedAt } }

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.fired else { return [] }
            state.fired = true
            state.firedAt = .now
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
