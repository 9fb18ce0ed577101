import ArgumentParser
import DelegationStore
import Foundation

/// The filters `list` and `export` share, turned into the store's `DelegationQuery`.
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

    @Option(help: "newest or oldest first (by creation; with a --search of 3 or more characters, by enqueue order).")
    var order: SortOrder = .newest

    enum SortOrder: String, ExpressibleByArgument, CaseIterable {
        case newest, oldest
    }

    /// The query, at most `limit` rows (nil: all).
    func query(limit: Int?) -> DelegationQuery {
        DelegationQuery(
            statuses: statuses, workspaceID: workspace, createdSince: since?.timestamp, createdBefore: until?.timestamp,
            search: search, newestFirst: order == .newest, limit: limit)
    }
}

extension DelegationStatus: ExpressibleByArgument {}
