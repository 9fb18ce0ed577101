/// What the platform's list says about a delegation its proxy queued.
public enum QueuedOutcome: Sendable, Equatable {
    case completed(result: String)
    case failed(error: String)
}
