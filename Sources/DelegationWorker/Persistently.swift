import DelegationStore
import Logging

/// Runs `write` (one store write) until it commits. A transient failure — the file locked by another
/// process past the busy timeout, a full disk, an I/O error — is waited out with backoff (50 ms doubling
/// to 5 s); an answer (a lost lease, a refused transition) or cancellation ends it. What a peer or the
/// platform answered is never dropped for a transient reason.
/// - Throws: the write's non-transient `DelegationStoreError`, or `CancellationError`.
func persistently(_ what: String, logger: Logger, _ write: () async throws -> Void) async throws {
    var delay = Duration.milliseconds(50)
    var tries = 0
    while true {
        do {
            try await write()
            return
        } catch let error as DelegationStoreError where !error.isTransient {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            tries += 1
            logger.warning("could not write \(what) (try \(tries)); trying again in \(delay): \(error)")
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}
