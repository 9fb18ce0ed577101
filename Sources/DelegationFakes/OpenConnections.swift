import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The connections a server has open, so that stopping it can close them.
final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) -> ObjectIdentifier {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        return key
    }

    func remove(_ key: ObjectIdentifier) {
        _ = channels.withLock { $0.removeValue(forKey: key) }
    }

    var all: [any Channel] { channels.withLock { Array($0.values) } }
}
