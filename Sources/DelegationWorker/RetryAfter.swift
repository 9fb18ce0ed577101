import DelegationStore
import DelegationTool
import Foundation

/// How long a server asks to be left alone, read from what it sent — never trusted to be sane.
///
/// RFC 9110 §10.2.3: `Retry-After` is either delay-seconds (one or more digits, nothing else) or an
/// HTTP-date; anything else is ignored. The platform's proxy also puts `retry_after` in its JSON body,
/// read the same way. Every value saturates at `ceiling` (100 years): a 30-digit number or a date in
/// the year 9999 is a long wait, never an overflow. The caller clamps it to its own maximum delay.
enum RetryAfter {
    static let ceiling: Duration = .seconds(100 * 365 * 86_400)

    /// The header when it is usable, else the body's `retry_after`.
    static func of(_ answer: HTTPAnswer, now: Date = Date()) -> Duration? {
        if let header = answer.headers.first(name: "Retry-After"), let delay = parse(header: header, now: now) {
            return delay
        }
        guard answer.body.count <= 64 << 10, let body = try? JSONValue.parse(answer.body) else { return nil }
        return parse(json: body["retry_after"], now: now)
    }

    /// delay-seconds or an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms a
    /// recipient must accept). A date in the past means "now".
    static func parse(header value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        if text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
            return seconds(digits: text.utf8)
        }
        return date(text).map { until($0, from: now) }
    }

    /// A JSON `retry_after`: a non-negative number of seconds (integer or not), or a header-style string.
    static func parse(json value: JSONValue?, now: Date = Date()) -> Duration? {
        switch value {
        case .int(let seconds)?:
            return seconds >= 0 ? min(Duration.seconds(seconds), ceiling) : nil
        case .double(let seconds)? where seconds.isFinite && seconds >= 0:
            return saturated(seconds)
        case .string(let text)?:
            return parse(header: text, now: now)
        default:
            return nil
        }
    }

    /// Seconds from a run of ASCII digits, saturating instead of overflowing.
    private static func seconds(digits: String.UTF8View) -> Duration {
        var value: Int64 = 0
        let limit = ceiling.components.seconds
        for digit in digits {
            value = value * 10 + Int64(digit - 0x30)
            if value >= limit { return ceiling }
        }
        return .seconds(value)
    }

    private static func saturated(_ seconds: Double) -> Duration {
        let limit = Double(ceiling.components.seconds)
        guard seconds < limit else { return ceiling }
        return .milliseconds(Int64((max(0, seconds) * 1000).rounded()))
    }

    private static func until(_ date: Date, from now: Date) -> Duration {
        saturated(max(0, date.timeIntervalSince(now)))
    }

    private static let formats = [
        "EEE, dd MMM yyyy HH:mm:ss 'GMT'",  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        "EEEE, dd-MMM-yy HH:mm:ss 'GMT'",  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        "EEE MMM d HH:mm:ss yyyy",  // asctime: Sun Nov  6 08:49:37 1994
    ]

    private static func date(_ text: String) -> Date? {
        let collapsed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: collapsed) { return date }
        }
        return nil
    }
}
