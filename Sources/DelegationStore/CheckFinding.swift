/// One verdict of `DelegationStore.check`: a named invariant, whether it holds, and examples when not.
public struct CheckFinding: Sendable, Equatable {
    public var name: String
    public var ok: Bool
    public var detail: String
    public var examples: [String] = []

    public init(name: String, ok: Bool, detail: String, examples: [String] = []) {
        self.name = name
        self.ok = ok
        self.detail = detail
        self.examples = examples
    }
}
