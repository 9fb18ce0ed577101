import Foundation

/// The schema's time format: UTC ISO 8601 with milliseconds, `2026-11-24T02:15:07.123Z`.
/// Plain strings that sort in time order, so hand-written SQL compares them directly.
public enum Timestamp {
    public static func string(from date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
    }

    /// Parses the schema's format and its shorter prefixes (`2026-11-24`, `2026-11-24T02:00`,
    /// `2026-11-24 02:00:00`), always as UTC. Nil for anything else.
    public static func date(from text: String) -> Date? {
        let digits = text.unicodeScalars.map { scalar -> Int? in
            (48...57).contains(scalar.value) ? Int(scalar.value - 48) : nil
        }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= digits.count else { return nil }
            var value = 0
            for index in range {
                guard let digit = digits[index] else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        let scalars = Array(text.unicodeScalars)
        func char(_ index: Int) -> Character? { index < scalars.count ? Character(scalars[index]) : nil }
        guard scalars.count >= 10, let year = number(0..<4), char(4) == "-", let month = number(5..<7),
            char(7) == "-", let day = number(8..<10), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour = 0, minute = 0, second = 0, millisecond = 0
        var index = 10
        if scalars.count > 10 {
            guard char(10) == "T" || char(10) == " ", let h = number(11..<13), char(13) == ":",
                let m = number(14..<16), h < 24, m < 60
            else { return nil }
            hour = h
            minute = m
            index = 16
            if char(16) == ":" {
                guard let s = number(17..<19), s < 61 else { return nil }
                second = s
                index = 19
                if char(19) == "." {
                    var end = 20
                    while end < scalars.count, digits[end] != nil { end += 1 }
                    guard end > 20 else { return nil }
                    let fraction = number(20..<min(end, 23)) ?? 0
                    millisecond = fraction * [100, 10, 1][min(end, 23) - 21]
                    index = end
                }
            }
            if char(index) == "Z" { index += 1 }
        }
        guard index == scalars.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Date(timeIntervalSince1970: Double(seconds) + Double(millisecond) / 1000)
    }
}
