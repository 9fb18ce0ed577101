/// Bounds on the text that arrives from peers and the platform before it is stored, mirrored or logged.
///
/// A peer decides how long its error message is; without a bound, one 16 MiB JSON-RPC error would be
/// copied into the row, its events, the outbox body posted to the platform and the logs.
public enum TextLimit {
    /// Error texts (a JSON-RPC error's message, a failed task's status text, an HTTP body excerpt).
    public static let error = 64 << 10
    /// Results (the peer's answer text).
    public static let result = 1 << 20
    /// Tasks, refused above it when delegated: as large as the largest answer the worker reads (16 MiB).
    /// The whole task goes into the peer's request (up to six times larger once escaped) and into the
    /// platform's `record` call; past this it would not fit either, nor memory.
    public static let task = 16 << 20

    /// `text` cut to at most `maximumBytes` of UTF-8 (at a character boundary), with a note of what was dropped.
    public static func capped(_ text: String, maximumBytes: Int) -> String {
        let total = text.utf8.count
        guard total > maximumBytes else { return text }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            if bytes + size > maximumBytes { break }
            kept.append(scalar)
            bytes += size
        }
        return String(kept) + "\n[truncated: \(bytes) of \(total) bytes kept]"
    }

    /// An error text as it may be stored: at most `error` bytes, never empty.
    public static func errorText(_ text: String) -> String {
        text.isEmpty ? "unknown error" : capped(text, maximumBytes: error)
    }
}
