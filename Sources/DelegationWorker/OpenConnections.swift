import NIOCore
import Synchronization

/// Every connection a server has set up, from the moment NIO hands it to the child initializer until it
/// closes, so that stopping the server can close them all: also those the accept loop never saw (NIO
/// drops a connection set up after the listener closed, and nothing else would ever close it; an idle
/// one would hold a shutdown up). For `MetricsServer` and the fakes' loopback server.
package final class OpenConnections: Sendable {
    /// Thrown from the child initializer once the server is stopping (the connection is closed first: NIO
    /// drops a connection whose initializer failed without closing it).
    package struct Stopping: Error {}

    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closing = false
    }

    private let state = Mutex(State())

    package init() {}

    /// Registers `channel` until it closes; once `closeAll` has run, closes it and throws `Stopping`.
    package func register(_ channel: any Channel) throws {
        let key = ObjectIdentifier(channel)
        let accepted = state.withLock { state in
            guard !state.closing else { return false }
            state.channels[key] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            throw Stopping()
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.channels.removeValue(forKey: key) }
        }
    }

    /// From now on `register` refuses; returns the connections open until now, to close.
    package func closeAll() -> [any Channel] {
        state.withLock { state in
            state.closing = true
            return Array(state.channels.values)
        }
    }
}
