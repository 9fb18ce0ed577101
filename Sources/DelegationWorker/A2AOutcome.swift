import DelegationStore
import DelegationTool
import Foundation

/// What a peer's answer means for the delegation.
enum A2AOutcome: Sendable, Equatable {
    /// A terminal answer with text: the delegation is done.
    case completed(String)
    /// A terminal refusal or failure: retrying would not help. `peerState` is the state of the peer's
    /// task when the answer was one (a task that failed at the peer needs no cancel).
    case failed(String, peerState: String? = nil)
    /// The peer accepted a task that is still running (`submitted`, `working`): follow it with tasks/get.
    case working(taskID: String, state: String)
    /// The platform's proxy queued it: never resend; the platform's list resolves it.
    case queued(String)
    /// Worth trying again later (5xx, 429, a network failure…).
    case retry(String, retryAfter: Duration?)
    /// The peer speaks the other generation (-32601 method not found, -32009 version not supported).
    case wrongGeneration(String)

    /// The outcome label of `delegation_a2a_request_duration_seconds`.
    var metricName: String {
        switch self {
        case .completed: "completed"
        case .failed: "failed"
        case .working: "working"
        case .queued: "queued"
        case .retry: "retry"
        case .wrongGeneration: "wrong_generation"
        }
    }
}
