import CSQLite

/// An error reported by SQLite, with everything needed to tell what happened without a debugger.
///
/// `extendedResultCode` distinguishes e.g. `SQLITE_CONSTRAINT_TRIGGER` (a state-machine trigger said no)
/// from `SQLITE_CONSTRAINT_CHECK`; `resultCode` is its primary part (`SQLITE_BUSY`, `SQLITE_FULL`, …).
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    public let extendedResultCode: Int32
    public let message: String
    /// The statement that failed, when there was one.
    public let sql: String?

    public init(extendedResultCode: Int32, message: String, sql: String? = nil) {
        self.extendedResultCode = extendedResultCode
        self.message = message
        self.sql = sql
    }

    /// The primary result code, for matching: `catch let error as SQLiteError where error.code == .busy`,
    /// or `catch ResultCode.busy` (`~=`).
    public var code: ResultCode { ResultCode(rawValue: extendedResultCode & 0xFF) }
    public var resultCode: Int32 { extendedResultCode & 0xFF }

    public var isBusy: Bool { resultCode == SQLITE_BUSY || resultCode == SQLITE_LOCKED }
    public var isFull: Bool { resultCode == SQLITE_FULL }
    public var isReadOnly: Bool { resultCode == SQLITE_READONLY }
    public var isCorrupt: Bool { resultCode == SQLITE_CORRUPT || resultCode == SQLITE_NOTADB }
    public var isConstraint: Bool { resultCode == SQLITE_CONSTRAINT }
    public var isIOError: Bool { resultCode == SQLITE_IOERR }
    /// A `RAISE(ABORT, …)` from one of the schema's triggers.
    public var isTriggerAbort: Bool { extendedResultCode == Self.constraintTrigger }

    /// `SQLITE_CONSTRAINT_TRIGGER` (`SQLITE_CONSTRAINT | 7 << 8`); composite macros do not import into Swift.
    public static let constraintTrigger: Int32 = SQLITE_CONSTRAINT | (7 << 8)
    /// `SQLITE_CONSTRAINT_FOREIGNKEY` (`SQLITE_CONSTRAINT | 3 << 8`).
    public static let constraintForeignKey: Int32 = SQLITE_CONSTRAINT | (3 << 8)

    public var codeName: String {
        switch resultCode {
        case SQLITE_ERROR: "SQLITE_ERROR"
        case SQLITE_PERM: "SQLITE_PERM"
        case SQLITE_ABORT: "SQLITE_ABORT"
        case SQLITE_BUSY: "SQLITE_BUSY"
        case SQLITE_LOCKED: "SQLITE_LOCKED"
        case SQLITE_NOMEM: "SQLITE_NOMEM"
        case SQLITE_READONLY: "SQLITE_READONLY"
        case SQLITE_INTERRUPT: "SQLITE_INTERRUPT"
        case SQLITE_IOERR: "SQLITE_IOERR"
        case SQLITE_CORRUPT: "SQLITE_CORRUPT"
        case SQLITE_FULL: "SQLITE_FULL"
        case SQLITE_CANTOPEN: "SQLITE_CANTOPEN"
        case SQLITE_PROTOCOL: "SQLITE_PROTOCOL"
        case SQLITE_SCHEMA: "SQLITE_SCHEMA"
        case SQLITE_TOOBIG: "SQLITE_TOOBIG"
        case SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT"
        case SQLITE_MISMATCH: "SQLITE_MISMATCH"
        case SQLITE_MISUSE: "SQLITE_MISUSE"
        case SQLITE_AUTH: "SQLITE_AUTH"
        case SQLITE_RANGE: "SQLITE_RANGE"
        case SQLITE_NOTADB: "SQLITE_NOTADB"
        default: "SQLITE code \(resultCode)"
        }
    }

    public var description: String {
        var text = "\(message) (\(codeName), extended code \(extendedResultCode))"
        if let sql { text += " in `\(sql.count > 300 ? String(sql.prefix(300)) + "…" : sql)`" }
        return text
    }
}
