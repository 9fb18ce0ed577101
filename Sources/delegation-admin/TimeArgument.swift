import ArgumentParser
import DelegationStore
import Foundation

/// A point in time on the command line: ISO 8601 in UTC, or an age relative to now (`2h` = two hours ago).
/// Stored as the schema's timestamp text, so it compares directly with the columns.
struct TimeArgument: ExpressibleByArgument, Sendable {
    let timestamp: String

    init?(argument: String) {
        if let age = AgeArgument(argument: argument) {
            timestamp = Timestamp.string(from: Date().addingTimeInterval(-age.seconds))
        } else if let date = Timestamp.date(from: argument) {
            timestamp = Timestamp.string(from: date)
        } else {
            return nil
        }
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
