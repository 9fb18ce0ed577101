import Foundation
import Synchronization

/// Where a log handler writes whole lines: stderr (the default; stdout belongs to a program's output, and
/// to the protocol in the MCP server), or a buffer for tests.
public final class TextOutputStreamTarget: Sendable {
    private let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// One `write(2)` per line (more only when the kernel takes part of it), so lines from several threads
    /// do not interleave on a pipe up to PIPE_BUF (4 KiB) a line. A line that cannot be written is dropped:
    /// there is nowhere left to say so.
    public static let standardError = TextOutputStreamTarget { line in
        // A non-blocking stderr nobody drains (a paused terminal sharing the MCP server's stdout) is
        // waited for once, up to a second; after that lines are dropped at once until one gets through,
        // rather than holding every logging thread a second a line.
        let patience: Duration = standardErrorStalled.load(ordering: .relaxed) ? .zero : .seconds(1)
        let failure = FileDescriptorOutput.write(line, to: STDERR_FILENO, patience: patience)
        standardErrorStalled.store(failure == EAGAIN, ordering: .relaxed)
    }
    private static let standardErrorStalled = Atomic<Bool>(false)

    func write(_ line: String) { sink(line) }
}
