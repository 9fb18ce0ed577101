/// One result row. Column names are shared by every row of a statement, so a row is two small arrays.
public struct Row: Sendable, CustomStringConvertible {
    public let columnNames: [String]
    public let values: [SQLiteValue]

    public subscript(_ index: Int) -> SQLiteValue { values[index] }

    /// The value of the named column, or `.null` when the statement has no such column.
    public subscript(_ name: String) -> SQLiteValue {
        guard let index = columnNames.firstIndex(of: name) else { return .null }
        return values[index]
    }

    public var description: String {
        zip(columnNames, values).map { "\($0)=\($1.string ?? "NULL")" }.joined(separator: ", ")
    }
}
