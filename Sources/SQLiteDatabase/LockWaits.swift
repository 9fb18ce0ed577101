import CSQLite

/// A handle on one connection's waits for other connections' locks, usable from any thread: `abandon()`
/// ends the current wait and every later one at once (they fail with SQLITE_BUSY).
///
/// For shutdowns with a deadline: a write queued behind another process's long transaction would
/// otherwise wait out the whole busy timeout. The connection must outlive the handle's use.
public struct LockWaits: @unchecked Sendable {
    let state: UnsafeMutablePointer<csqlite_busy_state>

    public func abandon() {
        csqlite_abandon_waits(state)
    }

    /// Waits for locks again, up to the busy timeout.
    public func restore() {
        csqlite_restore_waits(state)
    }
}
