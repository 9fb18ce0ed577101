/// What one poll of a followed task found, when the task goes on.
public enum PollOutcome: Sendable, Equatable {
    /// The peer answered: its task is in `state` (unchanged or not).
    case answered(state: String)
    /// The peer could not be asked (network, 5xx): `error` is kept on the row, failures counted.
    case unreachable(error: String)
}
