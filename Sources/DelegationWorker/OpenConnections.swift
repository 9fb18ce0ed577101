import NIOCore
import NIOHTTP1
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

    /// The child initializer both HTTP servers use: registers the connection, sets up HTTP/1.1 and wraps it
    /// for async use. On the connection's event loop.
    ///
    /// The writer is kept alive until the channel closes: a connection set up after the listener closed (a
    /// client arriving during a stop) is dropped by NIO unserved, and NIO traps when an unfinished writer is
    /// released ("Deinited NIOAsyncWriter without calling finish()") — a connect must not crash a stopping
    /// process. By the time the channel has closed NIO has finished the writer, so the release is harmless.
    package func setUpHTTP(_ channel: any Channel) throws -> NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart> {
        try register(channel)
        do {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            let connection = try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
            let outbound = connection.outbound
            channel.closeFuture.whenComplete { _ in outbound.finish() }
            return connection
        } catch {
            // Registered but never to be served: closed now rather than held open until the stop.
            channel.close(promise: nil)
            throw error
        }
    }
}
