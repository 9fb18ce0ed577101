import Foundation
import Synchronization

/// Where a log handler writes whole lines: stderr (the default; stdout belongs to a program's output, and
/// to the protocol in the MCP server), or a buffer for tests.
public final class TextOutputStreamTarget: Sendable {
    private let sink: @Sendable (String) -> Void

    public init(_ sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// One `write(2)` per line, so lines from several threads never interleave.
    public static let standardError = TextOutputStreamTarget { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    func write(_ line: String) { sink(line) }
}
