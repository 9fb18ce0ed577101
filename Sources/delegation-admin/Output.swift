import DelegationLogging
import DelegationStore
import DelegationTool
import Foundation

/// Writing to the terminal: JSON documents, aligned tables, and times as people read them.
enum Output {
    static func write(_ text: String) { write(Array(text.utf8)) }

    /// Standard output that cannot be written (a full disk under `> file`, a closed pipe) is said on
    /// stderr, and the command ends with 1 — not `Admin.fail`, whose JSON form would write to standard
    /// output again. A full, non-blocking one (inherited so) is waited for up to 10 minutes: a reader
    /// paging slowly.
    static func write(_ bytes: [UInt8]) {
        if let failure = FileDescriptorOutput.write(bytes, to: STDOUT_FILENO, patience: .seconds(600)) { failedToWrite(failure) }
    }

    private static func failedToWrite(_ code: Int32) -> Never {
        FileDescriptorOutput.write("error: could not write to standard output: \(FileDescriptorOutput.describe(code))\n", to: STDERR_FILENO)
        exit(1)
    }

    static func printJSON(_ value: JSONValue) {
        write(value.serialized + "\n")
    }

    /// Columns padded to their widest cell; cells are single-line and cut at `maximumWidth`.
    static func table(_ header: [String], _ rows: [[String]], maximumWidth: Int = 48) -> String {
        let cells = ([header] + rows).map { $0.map { truncate($0, to: maximumWidth) } }
        var widths = Array(repeating: 0, count: header.count)
        for row in cells { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return cells.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// One line, at most `length` characters, an ellipsis where it was cut.
    static func truncate(_ text: String, to length: Int) -> String {
        let line = text.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\t", with: " ")
        return line.count > length ? String(line.prefix(length - 1)) + "…" : line
    }

    /// "3 min ago", "in 2 h", "just now"; the stored text when it is not a timestamp.
    static func relative(_ timestamp: String?, now: Date = Date()) -> String {
        guard let timestamp, !timestamp.isEmpty else { return "-" }
        guard let date = Timestamp.date(from: timestamp) else { return timestamp }
        let seconds = now.timeIntervalSince(date)
        let magnitude = abs(seconds)
        let amount: String
        switch magnitude {
        case ..<2: return "just now"
        case ..<90: amount = "\(Int(magnitude)) s"
        case ..<(90 * 60): amount = "\(Int(magnitude / 60)) min"
        case ..<(36 * 3600): amount = "\(Int(magnitude / 3600)) h"
        default: amount = "\(Int(magnitude / 86400)) d"
        }
        return seconds >= 0 ? "\(amount) ago" : "in \(amount)"
    }

    /// A duration in seconds as "850 ms", "12.3 s", "4.0 min".
    static func duration(_ seconds: Double?) -> String {
        guard let seconds else { return "-" }
        switch seconds {
        case ..<1: return "\(Int((seconds * 1000).rounded())) ms"
        case ..<120: return String(format: "%.1f s", seconds)
        case ..<7200: return String(format: "%.1f min", seconds / 60)
        default: return String(format: "%.1f h", seconds / 3600)
        }
    }
}

extension Optional where Wrapped == String {
    var orDash: String { self ?? "-" }
}
