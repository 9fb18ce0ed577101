import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The connections a server has open, so that stopping it can close them.
final class OpenConnections: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closing = false
    }

    private let state = Mutex(State())

    /// Registers a connection; nil once the server is stopping (the caller closes it at once).
    func add(_ channel: any Channel) -> ObjectIdentifier? {
        let key = ObjectIdentifier(channel)
        return state.withLock { state in
            guard !state.closing else { return nil }
            state.channels[key] = channel
            return key
        }
    }

    func remove(_ key: ObjectIdentifier) {
        _ = state.withLock { $0.channels.removeValue(forKey: key) }
    }

    /// From now on `add` refuses; returns the connections open until now.
    func closeAll() -> [any Channel] {
        state.withLock { state in
            state.closing = true
            return Array(state.channels.values)
        }
    }
}
