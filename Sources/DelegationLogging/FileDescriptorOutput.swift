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
    /// Writes all of `text` to `descriptor`, going on after `EINTR` and short writes.
    /// - Returns: nil when everything was written, else the `errno` that stopped it.
    @discardableResult
    public static func write(_ text: String, to descriptor: Int32) -> Int32? {
        write(Array(text.utf8), to: descriptor)
    }

    /// Writes all of `bytes` to `descriptor`, as `write(_:to:)` does a string's.
    @discardableResult
    public static func write(_ bytes: [UInt8], to descriptor: Int32) -> Int32? {
        bytes.withUnsafeBytes { buffer -> Int32? in
            guard let start = buffer.baseAddress else { return nil }
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, start + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
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
