import CSQLite
import Foundation

/// An error reported by SQLite, with the call that failed and the database it concerns.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The SQLite result code (SQLITE_BUSY, SQLITE_CONSTRAINT, ...).
    public var code: Int32
    public var message: String
    /// The C function that reported it.
    public var call: String
    public var path: String
    /// The statement, when one was being prepared or run.
    public var sql: String?

    public var description: String {
        var text = "SQLite \(call) on \(path) failed (code \(code)): \(message)"
        if let sql { text += " — in: \(sql.prefix(200))" }
        return text
    }
}

/// A value bound to or read from a statement.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    public var integer: Int64? { if case .integer(let v) = self { return v }; return nil }
    public var real: Double? {
        switch self {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: return nil
        }
    }
    public var text: String? { if case .text(let v) = self { return v }; return nil }
    public var blob: Data? { if case .blob(let v) = self { return v }; return nil }
}

/// A connection to one SQLite database file. It owns the handle and closes it.
///
/// Not shared between threads: each user opens its own connection (SQLite's
/// WAL mode lets them read and write side by side).
public final class SQLiteDatabase {
    public let path: String
    private var handle: OpaquePointer?

    /// Opens (creating if needed) the database at `path`, in WAL mode with a busy timeout.
    public init(path: String, readOnly: Bool = false, busyTimeoutMs: Int32 = 10_000) throws {
        self.path = path
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(handle)
            handle = nil
            throw SQLiteError(code: code, message: message, call: "sqlite3_open_v2", path: path)
        }
        sqlite3_busy_timeout(handle, busyTimeoutMs)
        sqlite3_extended_result_codes(handle, 1)
        if !readOnly {
            try execute("PRAGMA journal_mode = WAL")
            try execute("PRAGMA synchronous = NORMAL")
        }
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(errorMessage)
            throw SQLiteError(code: code, message: message, call: "sqlite3_exec", path: path, sql: sql)
        }
    }

    /// Runs one statement with `arguments` bound to its `?` parameters.
    public func execute(_ sql: String, _ arguments: [SQLiteValue]) throws {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        while try statement.step() {}
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ arguments: [SQLiteValue] = []) throws -> [[SQLiteValue]] {
        let statement = try prepare(sql)
        try statement.bind(arguments)
        var rows = [[SQLiteValue]]()
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw SQLiteError(code: code, message: lastMessage, call: "sqlite3_prepare_v2", path: path, sql: sql)
        }
        return SQLiteStatement(statement, database: self, sql: sql)
    }

    /// Runs `body` in an immediate transaction: all of it is stored, or none.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The rowid of the last row inserted through this connection.
    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// The number of rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    var lastMessage: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection" }

    /// The version of the SQLite library linked.
    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }
}

/// A prepared statement; finalized when released.
public final class SQLiteStatement {
    private let statement: OpaquePointer
    private let database: SQLiteDatabase
    public let sql: String

    init(_ statement: OpaquePointer, database: SQLiteDatabase, sql: String) {
        self.statement = statement
        self.database = database
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(statement)
    }

    public func bind(_ arguments: [SQLiteValue]) throws {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard expected == arguments.count else {
            throw SQLiteError(code: SQLITE_RANGE, message: "\(arguments.count) arguments for \(expected) parameters",
                              call: "sqlite3_bind", path: database.path, sql: sql)
        }
        // SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (offset, argument) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch argument {
            case .null: code = sqlite3_bind_null(statement, index)
            case .integer(let value): code = sqlite3_bind_int64(statement, index, value)
            case .real(let value): code = sqlite3_bind_double(statement, index, value)
            case .text(let value): code = sqlite3_bind_text(statement, index, value, -1, transient)
            case .blob(let value):
                code = value.withUnsafeBytes { sqlite3_bind_blob64(statement, index, $0.baseAddress, sqlite3_uint64($0.count), transient) }
            }
            guard code == SQLITE_OK else {
                throw SQLiteError(code: code, message: database.lastMessage, call: "sqlite3_bind", path: database.path, sql: sql)
            }
        }
    }

    /// Advances to the next row; false when there is none.
    public func step() throws -> Bool {
        let code = sqlite3_step(statement)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError(code: code, message: database.lastMessage, call: "sqlite3_step", path: database.path, sql: sql)
        }
    }

    /// The current row's values.
    public func row() -> [SQLiteValue] {
        (0..<sqlite3_column_count(statement)).map { column in
            switch sqlite3_column_type(statement, column) {
            case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, column))
            case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, column))
            case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, column)))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(statement, column))
                guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return .blob(Data()) }
                return .blob(Data(bytes: bytes, count: count))
            default: return .null
            }
        }
    }
}
