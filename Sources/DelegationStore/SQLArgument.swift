/// Values bound as one parameter where a statement takes a list: a JSON array that the statement reads
/// with `json_each(?)`, so the SQL text stays fixed however many values there are.
enum SQLArgument {
    /// `["a","b"]`, every string escaped as JSON requires.
    static func jsonArray(_ strings: some Sequence<String>) -> String {
        var text = "["
        var first = true
        for string in strings {
            if !first { text += "," }
            first = false
            text += "\""
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: text.unicodeScalars.append(scalar)
                }
            }
            text += "\""
        }
        return text + "]"
    }

    /// `[1,2,3]`.
    static func jsonArray(_ numbers: some Sequence<Int>) -> String {
        "[" + numbers.map(String.init).joined(separator: ",") + "]"
    }
}
