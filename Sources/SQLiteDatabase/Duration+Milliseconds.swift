extension Duration {
    /// Whole milliseconds, clamped to `range`: a negative, zero or enormous duration (from a flag, a
    /// configuration file) becomes the nearest value the caller can use instead of overflowing.
    public func milliseconds(clampedTo range: ClosedRange<Int64>) -> Int64 {
        let (seconds, attoseconds) = components
        let limit = Int64.max / 1000 - 1
        let whole = min(max(seconds, -limit), limit) * 1000 + attoseconds / 1_000_000_000_000_000
        return min(max(whole, range.lowerBound), range.upperBound)
    }
}
