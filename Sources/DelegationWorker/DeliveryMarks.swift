import DelegationStore

/// Marks mirror calls delivered, combined: while one batch of marks is being written the next ones gather
/// behind it, so calls that finish together share one statement and one writer operation instead of one
/// each (issue 13). A caller writes at most one batch, its own mark and those waiting, then hands the pen
/// to the first mark that arrived meanwhile: nobody writes for others indefinitely, and a lone mark is
/// written at once.
actor DeliveryMarks {
    /// What a waiting mark hears: its result, or that it writes the next batch.
    private enum Turn {
        case marked(Bool)
        case write
    }

    private typealias Waiting = (item: OutboxItem, status: Int, continuation: CheckedContinuation<Turn, any Error>)

    private let store: DelegationStore
    private let worker: String
    private var waiting: [Waiting] = []
    private var writing = false

    init(store: DelegationStore, worker: String) {
        self.store = store
        self.worker = worker
    }

    /// Marks waiting behind the batch being written (for tests).
    var waitingCount: Int { waiting.count }

    /// Returns once `item` is marked (true) or found no longer held by this worker (false).
    /// - Throws: what writing its batch threw (every mark of that batch gets the same error).
    func mark(_ item: OutboxItem, status: Int) async throws -> Bool {
        if writing {
            switch try await withCheckedThrowingContinuation({ waiting.append((item, status, $0)) }) {
            case .marked(let held): return held
            case .write: return try await writeBatch(item, status: status)
            }
        }
        writing = true
        return try await writeBatch(item, status: status)
    }

    /// Writes `item`'s mark and every waiting one in one operation, answers them, and passes `writing` on.
    private func writeBatch(_ item: OutboxItem, status: Int) async throws -> Bool {
        let others = waiting
        waiting.removeAll()
        let result: Result<[Bool], any Error>
        do {
            result = .success(try await store.outboxDelivered([(item, status)] + others.map { ($0.item, $0.status) }, worker: worker))
        } catch {
            result = .failure(error)
        }
        if waiting.isEmpty {
            writing = false
        } else {
            waiting.removeFirst().continuation.resume(returning: .write)
        }
        switch result {
        case .success(let held):
            // One answer per mark, in order (a short answer would be a store bug: those count as not held).
            for (index, entry) in others.enumerated() {
                entry.continuation.resume(returning: .marked(index + 1 < held.count && held[index + 1]))
            }
            return held.first ?? false
        case .failure(let error):
            for entry in others { entry.continuation.resume(throwing: error) }
            throw error
        }
    }
}
