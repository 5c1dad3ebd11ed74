import Foundation
import SQLiteDriver

/// A value bound to or read from a statement, whatever the database.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public var integer: Int64? {
        switch self {
        case .integer(let v): return v
        case .real(let v): return Int64(exactly: v.rounded()) // PostgreSQL sums and aggregates may come back as numeric
        default: return nil
        }
    }
    public var real: Double? {
        switch self {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: return nil
        }
    }
    public var text: String? { if case .text(let v) = self { return v }; return nil }
    public var date: Date? { real.map(Date.init(timeIntervalSince1970:)) }

    /// A moment, stored as seconds since 1970 (UTC), so both databases compare them as numbers.
    static func time(_ date: Date?) -> SQLValue { date.map { .real($0.timeIntervalSince1970) } ?? .null }
    static func optional(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
}

/// The SQL spoken by a backend, where the two differ.
enum SQLDialect: Sendable {
    case sqlite, postgres

    /// An auto-numbered primary key, in insertion order.
    var serialKey: String { self == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY" }
    /// Appended to a SELECT that picks rows to change, so that concurrent claimers on
    /// other connections skip what another holds instead of waiting or taking it twice.
    /// SQLite needs none: BEGIN IMMEDIATE already serialises writers.
    var lockSkippingLocked: String { self == .sqlite ? "" : "FOR UPDATE SKIP LOCKED" }
}

/// What the store needs of a database connection. One connection is used by one
/// thread at a time; statements use `?` placeholders on both backends.
protocol SQLConnection: AnyObject {
    var dialect: SQLDialect { get }
    /// Where the database is, for messages (a path or a URL without password).
    var location: String { get }
    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]]
    /// Runs a statement and returns the number of rows it changed.
    @discardableResult func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs statements separated by semicolons, without arguments (schema changes).
    func executeScript(_ sql: String) throws
    /// Runs `body` in one transaction: all of it is stored, or none.
    func transaction<T>(_ body: () throws -> T) throws -> T
}

extension SQLConnection {
    func query(_ sql: String) throws -> [[SQLValue]] { try query(sql, []) }
}

/// The embedded backend, over the project's own SQLite driver (Drivers/SQLite):
/// one file, WAL mode, writers serialised by BEGIN IMMEDIATE.
final class SQLiteConnection: SQLConnection {
    let database: SQLiteDatabase
    var dialect: SQLDialect { .sqlite }
    var location: String { database.path }

    init(path: String) throws {
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        database = try SQLiteDatabase(path: path)
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]] {
        try database.query(sql, arguments.map(Self.value)).map { $0.map(Self.value) }
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try database.execute(sql, arguments.map(Self.value))
        return database.changes
    }

    func executeScript(_ sql: String) throws { try database.execute(sql) }

    func transaction<T>(_ body: () throws -> T) throws -> T { try database.transaction(body) }

    /// A prepared statement, reused for many rows (raw timings).
    func prepare(_ sql: String) throws -> SQLiteStatement { try database.prepare(sql) }

    static func value(_ value: SQLValue) -> SQLiteValue {
        switch value {
        case .null: return .null
        case .integer(let v): return .integer(v)
        case .real(let v): return .real(v)
        case .text(let v): return .text(v)
        }
    }

    static func value(_ value: SQLiteValue) -> SQLValue {
        switch value {
        case .null: return .null
        case .integer(let v): return .integer(v)
        case .real(let v): return .real(v)
        case .text(let v): return .text(v)
        case .blob(let v): return .text(String(decoding: v, as: UTF8.self))
        }
    }
}
