import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Where a PostgreSQL store is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or
/// `postgres://USER@/DATABASE?host=/socket/folder` for a unix socket (libpq's form).
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var database: String
    /// A TCP host and port, or nil for the unix socket.
    public var host: String?
    public var port: Int
    /// The folder holding the server's socket (`.s.PGSQL.PORT`).
    public var socketFolder: String?

    /// True for the URLs this type reads (postgres:// or postgresql://).
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(url text: String) throws {
        guard Self.isPostgresURL(text), let components = URLComponents(string: text) else {
            throw LabError.store("'\(text)' is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE or postgres://USER@/DATABASE?host=/socket/folder)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw LabError.store("the PostgreSQL URL '\(Self.redacted(text))' names no user (postgres://USER@...)")
        }
        self.user = user
        password = components.password
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw LabError.store("the PostgreSQL URL '\(Self.redacted(text))' names no database (…/DATABASE)")
        }
        self.database = database
        port = components.port ?? 5432
        let socket = components.queryItems?.first(where: { $0.name == "host" })?.value
        if let socket, socket.hasPrefix("/") {
            socketFolder = socket
            host = nil
        } else if let tcpHost = components.host, !tcpHost.isEmpty {
            host = tcpHost
            socketFolder = nil
        } else {
            throw LabError.store("the PostgreSQL URL '\(Self.redacted(text))' names neither a host nor a socket folder (?host=/folder)")
        }
    }

    /// The URL without its password.
    public var description: String {
        if let socketFolder { return "postgres://\(user)@/\(database)?host=\(socketFolder)" }
        return "postgres://\(user)@\(host ?? ""):\(port)/\(database)"
    }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }

    var configuration: PostgresConnection.Configuration {
        if let socketFolder {
            return .init(unixSocketPath: socketFolder + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        return .init(host: host ?? "localhost", port: port, username: user, password: password, database: database, tls: .disable)
    }
}

/// The shared backend of several bench hosts, over PostgresNIO. The store's API is
/// synchronous (as the SQLite one): each call waits for its future on the calling
/// thread, which must not be one of NIO's event loops.
final class PostgresSQLConnection: SQLConnection {
    private let connection: PostgresConnection
    private let logger = Logger(label: "mlbench.store.postgres")
    let target: PostgresLocation
    var dialect: SQLDialect { .postgres }
    var location: String { target.description }

    init(_ location: PostgresLocation) throws {
        target = location
        let eventLoop = PostgresConnection.defaultEventLoopGroup.any()
        do {
            connection = try PostgresConnection.connect(on: eventLoop, configuration: location.configuration, id: 1, logger: logger).wait()
        } catch {
            throw LabError.store("cannot connect to PostgreSQL at \(location): \(Self.message(error))")
        }
    }

    deinit {
        try? connection.close().wait()
    }

    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [[SQLValue]] {
        try run(sql, arguments).rows.map { row in row.map(Self.value) }
    }

    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    func executeScript(_ sql: String) throws {
        // The extended protocol takes one statement at a time; schema scripts hold no ';' in literals.
        for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
            _ = try run(String(statement), [])
        }
    }

    func transaction<T>(_ body: () throws -> T) throws -> T {
        _ = try run("BEGIN", [])
        do {
            let value = try body()
            _ = try run("COMMIT", [])
            return value
        } catch {
            _ = try? run("ROLLBACK", [])
            throw error
        }
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .integer(let v): bindings.append(v)
            case .real(let v): bindings.append(v)
            case .text(let v): bindings.append(v)
            }
        }
        do {
            return try connection.query(PostgresQuery(unsafeSQL: Self.numbered(sql), binds: bindings), logger: logger).wait()
        } catch {
            throw LabError.store("PostgreSQL at \(location): \(Self.message(error)) — in: \(sql.prefix(200))")
        }
    }

    /// `?` placeholders become `$1, $2, …` (the store's SQL has no `?` in literals).
    static func numbered(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.count + 16)
        var index = 0
        for character in sql {
            if character == "?" {
                index += 1
                result += "$\(index)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// The server's own message and SQLSTATE when there is one; PSQLError's description hides them.
    static func message(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                return "\(message) (SQLSTATE \(info[.sqlState] ?? "?"))"
            }
            return String(reflecting: error)
        }
        return "\(error)"
    }

    static func value(_ cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return (try? cell.decode(Int64.self)).map(SQLValue.integer) ?? .null
        case .bool: return (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null
        case .float4, .float8: return (try? cell.decode(Double.self)).map(SQLValue.real) ?? .null
        case .numeric:
            if let text = try? cell.decode(String.self), let number = Double(text) { return .real(number) }
            return (try? cell.decode(Double.self)).map(SQLValue.real) ?? .null
        default: return (try? cell.decode(String.self)).map(SQLValue.text) ?? .null
        }
    }
}
