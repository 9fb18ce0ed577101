/// The six statuses of the schema's `CHECK`. The legal moves between them live in
/// `migrations/0001_delegations.sql`; `Transitions.swift` holds every move the Swift side makes.
public enum DelegationStatus: String, Sendable, Codable, CaseIterable, Comparable {
    case pending
    case inProgress = "in_progress"
    case queued
    case completed
    case failed
    case cancelled

    /// Finished rows are the history that eviction may remove; the others are live work.
    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }

    /// The transitions the database accepts, for tests and documentation (the triggers are the truth).
    public static let legalTransitions: Set<[DelegationStatus]> = [
        [.pending, .inProgress], [.pending, .cancelled],
        [.inProgress, .pending], [.inProgress, .queued], [.inProgress, .completed],
        [.inProgress, .failed], [.inProgress, .cancelled],
        [.queued, .completed], [.queued, .failed], [.queued, .cancelled],
        [.failed, .pending],
    ]

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
