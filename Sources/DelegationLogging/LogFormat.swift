import Logging

/// How the programs log on stderr: `text` (swift-log's stream handler, the default) or `json` (one
/// object per line, `JSONLogHandler`). Chosen with `--log-format` or `LOG_FORMAT`.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json

    /// `--log-format` when given, else `LOG_FORMAT`, else text.
    /// - Throws: `LogFormatError` naming where the unknown value came from.
    public static func resolve(flag: String?, environment: [String: String]) throws(LogFormatError) -> LogFormat {
        if let flag {
            guard let format = LogFormat(rawValue: flag.lowercased()) else { throw LogFormatError(source: "--log-format", value: flag) }
            return format
        }
        if let value = environment["LOG_FORMAT"], !value.isEmpty {
            guard let format = LogFormat(rawValue: value.lowercased()) else { throw LogFormatError(source: "LOG_FORMAT", value: value) }
            return format
        }
        return .text
    }

    /// Installs the process-wide handler (once per process, as swift-log requires).
    public func bootstrap(level: Logger.Level) {
        switch self {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// An unknown log format, with where it came from.
public struct LogFormatError: Error, CustomStringConvertible {
    public let source: String
    public let value: String
    public var description: String { "\(source) must be text or json, not '\(value)'" }
}
