import Foundation
import Synchronization

/// Stdout in 64 KiB writes: one write per row would dominate a large export. The store calls the export's
/// closure on its reader thread, one row at a time; the lock only makes that hand-over explicit.
final class BufferedOutput: Sendable {
    private struct State {
        var buffer: [UInt8] = []
        var rows = 0
    }

    private let state = Mutex(State())

    init() { state.withLock { $0.buffer.reserveCapacity(1 << 16) } }

    /// Rows written so far (the caller counts).
    var rows: Int {
        get { state.withLock { $0.rows } }
        set { state.withLock { $0.rows = newValue } }
    }

    func append(_ text: String) {
        let full = state.withLock { state -> Bool in
            state.buffer.append(contentsOf: text.utf8)
            return state.buffer.count >= 1 << 16
        }
        if full { flush() }
    }

    func flush() {
        let bytes = state.withLock { state -> [UInt8] in
            defer { state.buffer.removeAll(keepingCapacity: true) }
            return state.buffer
        }
        guard !bytes.isEmpty else { return }
        Output.write(bytes)
    }
}
