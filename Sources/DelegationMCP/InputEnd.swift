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

    /// Ends the input now, or as soon as a session starts if none runs yet. False when it had already
    /// been triggered (a second Ctrl-C: the caller may stop waiting).
    @discardableResult
    public func trigger() -> Bool {
        let (first, transport) = state.withLock { state -> (Bool, AnsweringTransport?) in
            defer { state.triggered = true }
            return (!state.triggered, state.transport)
        }
        if first, let transport { Task { await transport.endInput() } }
        return first
    }

    func attach(_ transport: AnsweringTransport) {
        let triggered = state.withLock { state -> Bool in
            state.transport = transport
            return state.triggered
        }
        if triggered { Task { await transport.endInput() } }
    }
}
