#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing to a standard stream with `write(2)`, whole, and never trapping.
///
/// Why not `FileHandle.write(_: Data)`: on Linux it is `try!` around the throwing write, so a full disk
/// under a redirected stream, or a log shipper that went away from the other end of a pipe (`EPIPE`
/// once SIGPIPE is ignored), crashed the process at its next line — every in-flight delegation with it.
public enum FileDescriptorOutput {
    /// Writes all of `text` to `descriptor`, going on after `EINTR` and short writes. A stream that is
    /// non-blocking (the MCP server's stdout is, and a terminal's stderr shares it) and full is waited for
    /// until it drains, up to `patience` in all.
    /// - Returns: nil when everything was written, else the `errno` that stopped it (`EAGAIN` when the
    ///   stream stayed full past `patience`).
    @discardableResult
    public static func write(_ text: String, to descriptor: Int32, patience: Duration = .seconds(1)) -> Int32? {
        write(Array(text.utf8), to: descriptor, patience: patience)
    }

    /// Writes all of `bytes` to `descriptor`, as `write(_:to:patience:)` does a string's.
    @discardableResult
    public static func write(_ bytes: [UInt8], to descriptor: Int32, patience: Duration = .seconds(1)) -> Int32? {
        let deadline = ContinuousClock.now + patience
        return bytes.withUnsafeBytes { buffer -> Int32? in
            guard let start = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, start + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                    continue
                }
                let failure = written == 0 ? EIO : errno
                if failure == EINTR { continue }
                guard failure == EAGAIN || failure == EWOULDBLOCK else { return failure }
                let left = deadline - ContinuousClock.now
                guard left > .zero else { return failure }
                var waiting = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                let milliseconds = Int32(clamping: min(left.components.seconds, 1_000_000) * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
                // An error on the stream (and no room) would otherwise spin until the deadline.
                if poll(&waiting, 1, milliseconds) > 0, waiting.revents & Int16(POLLOUT) == 0,
                    waiting.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0
                {
                    return EIO
                }
            }
            return nil
        }
    }

    private static func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, bytes, count)
        #elseif canImport(Musl)
        Musl.write(descriptor, bytes, count)
        #else
        Darwin.write(descriptor, bytes, count)
        #endif
    }

    /// `strerror` of `code`, for messages.
    public static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
