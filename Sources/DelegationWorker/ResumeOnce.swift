import DelegationStore
import DelegationTool
import Foundation
import Synchronization

/// The value of a task shared by several waiters; a waiter that is cancelled stops waiting at once
/// (the task itself goes on for the others).
func valueUnlessCancelled<T: Sendable>(_ task: Task<T, any Error>) async throws -> T {
    let outcome = ResumeOnce<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            outcome.attach(continuation)
            Task {
                do { outcome.resume(.success(try await task.value)) } catch { outcome.resume(.failure(error)) }
            }
        }
    } onCancel: {
        outcome.resume(.failure(CancellationError()))
    }
}

/// Resumes a continuation exactly once, whichever of a result and a cancellation comes first, even
/// when the cancellation comes before the continuation exists.
final class ResumeOnce<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
    }

    private let state = Mutex(State())

    func attach(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let early = state.early {
                state.done = true
                return early
            }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(_ result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard !state.done else { return nil }
            guard let continuation = state.continuation else {
                if state.early == nil { state.early = result }
                return nil
            }
            state.done = true
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}
