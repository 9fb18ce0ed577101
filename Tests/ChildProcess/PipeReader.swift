import Foundation

/// A pipe whose two ends are close-on-exec: children started concurrently by other tests must not
/// inherit them, or an EOF would wait for those children's exit. Nil when the process is out of descriptors.
public func closeOnExecPipe() -> (read: Int32, write: Int32)? {
    var descriptors: [Int32] = [0, 0]
    guard pipe(&descriptors) == 0 else { return nil }
    for descriptor in descriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    return (descriptors[0], descriptors[1])
}

/// Reads `descriptor` to its end on a thread of its own (blocking reads), hands each chunk to `deliver`,
/// then closes it and delivers nil.
///
/// Not `FileHandle.readabilityHandler`: that is a dispatch source, and a handle released (closing its
/// descriptor) while the source was still registered crashed libdispatch's event loop once in CI
/// (`_dispatch_event_loop_drain`, a null dereference) when the number was reused. Here the descriptor
/// belongs to the thread alone and is closed only after its last read.
public func readToEnd(_ descriptor: Int32, _ deliver: @escaping @Sendable (Data?) -> Void) {
    Thread.detachNewThread {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 {
                deliver(Data(buffer[0..<count]))
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(descriptor)
        deliver(nil)
    }
}
