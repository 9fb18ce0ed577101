import Foundation
import ArgumentParser
import DelegationStore

/// The filters `list` and `export` share. Every value is a bound parameter; the SQL text is fixed.
struct ListFilter: ParsableArguments {
    @Option(name: .customLong("status"), help: "Only this status (repeatable): pending, in_progress, queued, completed, failed, cancelled.")
    var statuses: [DelegationStatus] = []

    @Option(help: "Only delegations to this target workspace.")
    var workspace: String?

    @Option(help: "Created at or after this time (ISO 8601 UTC, or relative: 2h, 7d).")
    var since: TimeArgument?

    @Option(help: "Created before this time (ISO 8601 UTC, or relative: 2h, 7d).")
    var until: TimeArgument?

    @Option(help: "Only rows whose task, result or error contains this text (case-insensitive for ASCII; % and _ are literal).")
    var search: String?

    @Option(help: "newest or oldest first.")
    var order: SortOrder = .newest

    enum SortOrder: String, ExpressibleByArgument, CaseIterable {
        case newest, oldest
    }

    /// `WHERE …` (or empty) and its arguments.
    var whereClause: (sql: String, arguments: [any SQLiteBindable]) {
        var conditions: [String] = []
        var arguments: [any SQLiteBindable] = []
        if !statuses.isEmpty {
            conditions.append("status IN (SELECT value FROM json_each(?))")
            arguments.append(JSONValue.array(statuses.map { .string($0.rawValue) }).serialized)
        }
        if let workspace {
            // Stored trimmed, as `delegate` trims it.
            conditions.append("workspace_id = ?")
            arguments.append(workspace.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let since {
            conditions.append("created_at >= ?")
            arguments.append(since.timestamp)
        }
        if let until {
            conditions.append("created_at < ?")
            arguments.append(until.timestamp)
        }
        if let search {
            conditions.append(
                "(task LIKE ?1 ESCAPE '\\' OR result LIKE ?1 ESCAPE '\\' OR error LIKE ?1 ESCAPE '\\')"
                    .replacingOccurrences(of: "?1", with: "?\(arguments.count + 1)"))
            arguments.append("%" + Self.escapeLike(search) + "%")
        }
        return (conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    var orderClause: String {
        // rowid breaks ties: it rides along in every index on created_at, so no sort is needed.
        order == .newest ? "ORDER BY created_at DESC, rowid DESC" : "ORDER BY created_at, rowid"
    }

    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

extension DelegationStatus: ExpressibleByArgument {}
