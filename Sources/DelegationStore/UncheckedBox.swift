/// Hands a non-Sendable value to exactly one other thread.
final class UncheckedBox<Value>: @unchecked Sendable {
    private var value: Value?
    init(_ value: sending Value) { self.value = value }
    func take() -> Value {
        defer { value = nil }
        return value!
    }
}
