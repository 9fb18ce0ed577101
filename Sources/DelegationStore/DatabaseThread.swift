import Foundation
internal import SQLiteDatabase
import Synchronization

/// One connection on its own thread, so blocking SQLite calls never occupy Swift's cooperative pool.
///
/// Jobs queue up while the thread works; the thread then takes every waiting job at once and hands
/// them to `runBatch`. A reader runs them one by one; the writer commits a whole batch together.
final class DatabaseThread<Job: Sendable>: Sendable {
    private struct State {
        var jobs: [Job] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)

    /// `onIdle` runs on the thread each time `idle` passes with no job (housekeeping that must not wait for
    /// the next job).
    init(
        name: String,
        database: sending Database,
        idle: Duration? = nil,
        onIdle: (@Sendable (Database) -> Void)? = nil,
        runBatch: @escaping @Sendable (Database, [Job]) -> Void
    ) {
        let box = UncheckedBox(database)
        // Between a millisecond and a day: a zero timeout would spin, a huge one overflow.
        let idleTimeout = idle.map { DispatchTimeInterval.milliseconds(Int($0.milliseconds(clampedTo: 1...86_400_000))) }
        let thread = Thread { [self] in
            let database = box.take()
            while true {
                if let idleTimeout, let onIdle {
                    if wakeUp.wait(timeout: .now() + idleTimeout) == .timedOut {
                        onIdle(database)
                        continue
                    }
                } else {
                    wakeUp.wait()
                }
                let (jobs, stopping) = state.withLock { state in
                    defer { state.jobs.removeAll(keepingCapacity: true) }
                    return (state.jobs, state.stopping)
                }
                if !jobs.isEmpty { runBatch(database, jobs) }
                if stopping && state.withLock({ $0.jobs.isEmpty }) { break }
            }
            _ = consume database  // closes the connection before anyone hears "stopped"
            stopped.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Queues `job`; false when the thread is stopping and will not run it.
    func submit(_ job: Job) -> Bool {
        let accepted = state.withLock { state in
            guard !state.stopping else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { wakeUp.signal() }
        return accepted
    }

    /// Runs what is already queued, then closes the connection and ends the thread.
    func stop() async {
        let first = state.withLock { state in
            defer { state.stopping = true }
            return !state.stopping
        }
        guard first else { return }
        wakeUp.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.stopped.wait()
                continuation.resume()
            }
        }
    }
}

typealias ReadJob = @Sendable (Database) -> Void

extension DatabaseThread where Job == ReadJob {
    convenience init(readerNamed name: String, database: sending Database) {
        self.init(name: name, database: database) { database, jobs in
            for job in jobs { job(database) }
        }
    }

    /// Runs `body` on the thread and returns its value.
    func run<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { database in
                continuation.resume(with: Result { try body(database) })
            }
            if !accepted { continuation.resume(throwing: DelegationStoreError.closed) }
        }
    }
}
