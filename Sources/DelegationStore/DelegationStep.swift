/// A step worth keeping in a delegation's history (`delegation_events` kind and detail), written in the
/// same transaction as the transition it led to, so a step is never recorded for a change that did not happen.
public struct DelegationStep: Sendable, Equatable {
    public var kind: String
    public var detail: String
    public init(_ kind: String, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }
}
