import Synchronization

/// Ends a running session's input from outside, as EOF on stdin would: the server answers the requests
/// it already received and `run` returns. For SIGTERM/SIGINT, which would otherwise kill the process
/// with answers owed and the store open.
public final class InputEnd: Sendable {
    private struct State {
        var transport: AnsweringTransport?
        var triggered = false
    }

    private let state = Mutex(State())

    public init() {}

    /// Ends the input now, or as soon as a session starts if none runs yet.
    public func trigger() {
        let transport = state.withLock { state -> AnsweringTransport? in
            state.triggered = true
            return state.transport
        }
        if let transport { Task { await transport.endInput() } }
    }

    func attach(_ transport: AnsweringTransport) {
        let triggered = state.withLock { state -> Bool in
            state.transport = transport
            return state.triggered
        }
        if triggered { Task { await transport.endInput() } }
    }
}
