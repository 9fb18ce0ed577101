import DelegationStore

/// Marks mirror calls delivered, combined: while one batch of marks is being written the next ones gather
/// behind it, so calls that finish together share one statement and one writer operation instead of one
/// each (issue 13). The first caller with nothing being written writes; the others wait for its batch.
/// Nothing waits for company: a lone mark is written at once.
actor DeliveryMarks {
    private let store: DelegationStore
    private let worker: String
    private var waiting: [(item: OutboxItem, status: Int, continuation: CheckedContinuation<Bool, any Error>)] = []
    private var writing = false

    init(store: DelegationStore, worker: String) {
        self.store = store
        self.worker = worker
    }

    /// Returns once `item` is marked (true) or found no longer held by this worker (false).
    /// - Throws: what writing its batch threw (every mark of that batch gets the same error).
    func mark(_ item: OutboxItem, status: Int) async throws -> Bool {
        if writing {
            return try await withCheckedThrowingContinuation { waiting.append((item, status, $0)) }
        }
        writing = true
        defer { writing = false }
        // Ours first, then whatever gathered meanwhile, until nobody waits.
        var own: Result<Bool, any Error>?
        var batch: [(item: OutboxItem, status: Int, continuation: CheckedContinuation<Bool, any Error>?)] = [(item, status, nil)]
        while !batch.isEmpty {
            do {
                let marked = try await store.outboxDelivered(batch.map { ($0.item, $0.status) }, worker: worker)
                for entry in batch {
                    let held = marked.contains(entry.item.id)
                    if let continuation = entry.continuation { continuation.resume(returning: held) } else { own = .success(held) }
                }
            } catch {
                for entry in batch {
                    if let continuation = entry.continuation { continuation.resume(throwing: error) } else { own = .failure(error) }
                }
            }
            batch = waiting.map { ($0.item, $0.status, $0.continuation) }
            waiting.removeAll()
        }
        return try (own ?? .success(false)).get()  // always set: our entry is in the first batch
    }
}
