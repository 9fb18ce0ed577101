import CSQLite

/// A prepared statement. Owned by one `Database` and used on that database's thread only.
public final class Statement {
    let handle: OpaquePointer
    public let sql: String
    unowned let database: Database

    init(database: Database, sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw database.lastError(code: code, sql: sql)
        }
        self.handle = statement
        self.sql = sql
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    public lazy var columnNames: [String] = (0..<sqlite3_column_count(handle)).map {
        String(cString: sqlite3_column_name(handle, $0))
    }

    /// Clears the previous run and binds `arguments` to `?1`, `?2`, … in order.
    public func bind(_ arguments: [any SQLiteBindable]) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard arguments.count == expected else {
            throw SQLiteError(
                extendedResultCode: SQLITE_RANGE,
                message: "statement takes \(expected) arguments, \(arguments.count) given", sql: sql)
        }
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch argument.sqliteValue {
            case .null:
                code = sqlite3_bind_null(handle, index)
            case .integer(let value):
                code = sqlite3_bind_int64(handle, index, value)
            case .real(let value):
                code = sqlite3_bind_double(handle, index, value)
            case .text(let value):
                var value = value
                if value.isEmpty {
                    code = sqlite3_bind_text(handle, index, "", 0, csqlite_transient())
                } else {
                    code = value.withUTF8 { bytes in
                        bytes.withMemoryRebound(to: CChar.self) { characters in
                            // The 64-bit form: a length past Int32 (a task of 2 GiB from a client) is SQLite's
                            // SQLITE_TOOBIG to throw, where `Int32(count)` would have trapped.
                            sqlite3_bind_text64(
                                handle, index, characters.baseAddress, sqlite3_uint64(characters.count), csqlite_transient(),
                                UInt8(SQLITE_UTF8))
                        }
                    }
                }
            case .blob(let bytes):
                code = bytes.withUnsafeBytes {
                    sqlite3_bind_blob64(handle, index, $0.baseAddress, sqlite3_uint64($0.count), csqlite_transient())
                }
            }
            guard code == SQLITE_OK else { throw database.lastError(code: code, sql: sql) }
        }
    }

    /// Ends a statement left before its last row, so that it holds nothing (cached statements are reused).
    public func reset() {
        sqlite3_reset(handle)
    }

    /// Advances one row: true while a row is available, false when the statement is done.
    public func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.lastError(code: code, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    public func value(at column: Int32) -> SQLiteValue {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER:
            return .integer(sqlite3_column_int64(handle, column))
        case SQLITE_FLOAT:
            return .real(sqlite3_column_double(handle, column))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(handle, column))
            guard let pointer = sqlite3_column_text(handle, column) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, column))
            guard count > 0, let pointer = sqlite3_column_blob(handle, column) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        default:
            return .null
        }
    }

    /// The current row, copied out (valid after the next `step`).
    public func currentRow() -> Row {
        let names = columnNames
        return Row(columnNames: names, values: (0..<Int32(names.count)).map { value(at: $0) })
    }

    /// Runs to completion and finishes the statement so it holds no read lock.
    func rows() throws(SQLiteError) -> [Row] {
        var rows: [Row] = []
        while try step() { rows.append(currentRow()) }
        sqlite3_reset(handle)
        return rows
    }
}
