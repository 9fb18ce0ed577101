import Foundation

/// Who an operator action is attributed to in the event log.
enum Operator {
    static var name: String {
        let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown user"
        return "delegation-admin (\(user))"
    }
}
