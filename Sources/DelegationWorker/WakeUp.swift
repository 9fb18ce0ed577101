import Foundation
import Synchronization

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
