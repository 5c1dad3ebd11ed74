import Foundation
import OpenSSLDriver

/// What a user of the service may do. Each role includes the ones before it.
public enum ServiceRole: String, Codable, Sendable, CaseIterable, Comparable {
    /// Submits, follows and controls their own experiments; reads their own results and
    /// those shared with them.
    case user
    /// Also sees the whole queue and every board, enables and disables boards, controls
    /// anyone's experiments and posts messages to users.
    case `operator`
    /// Also manages users and their tokens, and reads every result.
    case admin

    var rank: Int { ServiceRole.allCases.firstIndex(of: self)! }
    public static func < (a: ServiceRole, b: ServiceRole) -> Bool { a.rank < b.rank }
}

/// A registered user of the service.
public struct ServiceUser: Codable, Sendable, Equatable {
    public var name: String
    public var role: ServiceRole
    public var createdAt: Date
}

/// An API token as the store knows it: never the token itself, only its SHA-256.
public struct APITokenInfo: Codable, Sendable, Equatable {
    /// The first 12 hex digits of the token's SHA-256: enough to name it for revoking.
    public var id: String
    public var user: String
    public var label: String?
    public var createdAt: Date
}

/// What an owner can share with another user: a queued experiment (its definition, its
/// state and its result) or one result.
public enum ShareKind: String, Codable, Sendable, CaseIterable {
    case experiment, result
}

public struct Share: Codable, Sendable, Equatable {
    public var kind: ShareKind
    public var objectID: String
    /// Whom it is shared with.
    public var user: String
    public var grantedBy: String
    public var createdAt: Date
}

/// A message from an operator to one user or to everyone (e.g. a maintenance notice).
public struct ServiceMessage: Codable, Sendable, Equatable {
    public var id: Int64
    public var author: String
    /// Nil: every user.
    public var recipient: String?
    public var text: String
    public var createdAt: Date
}

/// A file a user uploaded to the service, kept in the blob store by its SHA-256.
public struct UploadRecord: Codable, Sendable, Equatable {
    public var sha256: String
    public var user: String
    /// What the format check found it to be: onnx, npy.
    public var kind: String
    public var size: Int64
    public var createdAt: Date

    public init(sha256: String, user: String, kind: String, size: Int64, createdAt: Date) {
        self.sha256 = sha256
        self.user = user
        self.kind = kind
        self.size = size
        self.createdAt = createdAt
    }
}

/// One line of a queued experiment's step log (its process's progress output).
public struct ExperimentLogLine: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var at: Date
    public var line: String
}

/// The service's users, API tokens, shares, messages and uploads, and the step log of
/// queued experiments (schema version 4).
extension LabStore {
    static func serviceMigration(_ dialect: SQLDialect) -> String {
        let time = "DOUBLE PRECISION"
        let roles = ServiceRole.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let kinds = ShareKind.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        return """
            CREATE TABLE service_users (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL CHECK (role IN (\(roles))),
                created_at \(time) NOT NULL
            );
            CREATE TABLE api_tokens (
                token_sha256 TEXT PRIMARY KEY,
                user_name TEXT NOT NULL REFERENCES service_users (name) ON DELETE CASCADE,
                label TEXT,
                created_at \(time) NOT NULL
            );
            CREATE INDEX api_tokens_user ON api_tokens (user_name);
            CREATE TABLE shares (
                kind TEXT NOT NULL CHECK (kind IN (\(kinds))),
                object_id TEXT NOT NULL,
                user_name TEXT NOT NULL,
                granted_by TEXT NOT NULL,
                created_at \(time) NOT NULL,
                PRIMARY KEY (kind, object_id, user_name)
            );
            CREATE INDEX shares_user ON shares (user_name, kind);
            CREATE TABLE messages (
                seq \(dialect.serialKey),
                author TEXT NOT NULL,
                recipient TEXT,
                body TEXT NOT NULL,
                created_at \(time) NOT NULL
            );
            CREATE INDEX messages_recipient ON messages (recipient, seq);
            CREATE TABLE uploads (
                sha256 TEXT NOT NULL,
                user_name TEXT NOT NULL,
                kind TEXT NOT NULL,
                size BIGINT NOT NULL,
                created_at \(time) NOT NULL,
                PRIMARY KEY (sha256, user_name)
            );
            CREATE TABLE experiment_log (
                experiment_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                at \(time) NOT NULL,
                line TEXT NOT NULL,
                PRIMARY KEY (experiment_id, seq)
            )
            """
    }

    // MARK: Users

    public func addUser(_ name: String, role: ServiceRole, at now: Date = Date()) throws -> ServiceUser {
        guard Self.isValidUserName(name) else {
            throw LabError.usage("'\(name)' is not a user name (letters, digits, '.', '_', '-'; 1 to 64 characters)")
        }
        return try connection.transaction {
            guard try connection.query("SELECT 1 FROM service_users WHERE name = ?", [.text(name)]).isEmpty else {
                throw LabError.usage("user '\(name)' already exists")
            }
            try connection.execute("INSERT INTO service_users (name, role, created_at) VALUES (?, ?, ?)",
                                   [.text(name), .text(role.rawValue), .time(now)])
            return ServiceUser(name: name, role: role, createdAt: now)
        }
    }

    public static func isValidUserName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    public func users() throws -> [ServiceUser] {
        try connection.query("SELECT name, role, created_at FROM service_users ORDER BY name").map(Self.serviceUser)
    }

    public func user(named name: String) throws -> ServiceUser? {
        try connection.query("SELECT name, role, created_at FROM service_users WHERE name = ?", [.text(name)]).first.map(Self.serviceUser)
    }

    public func setRole(_ role: ServiceRole, user name: String) throws {
        if try connection.execute("UPDATE service_users SET role = ? WHERE name = ?", [.text(role.rawValue), .text(name)]) == 0 {
            throw LabError.usage("no user named '\(name)'")
        }
    }

    /// Removes a user with their tokens and what was shared with them (their experiments
    /// and results stay).
    public func removeUser(_ name: String) throws {
        try connection.transaction {
            try connection.execute("DELETE FROM api_tokens WHERE user_name = ?", [.text(name)])
            try connection.execute("DELETE FROM shares WHERE user_name = ?", [.text(name)])
            if try connection.execute("DELETE FROM service_users WHERE name = ?", [.text(name)]) == 0 {
                throw LabError.usage("no user named '\(name)'")
            }
        }
    }

    static func serviceUser(_ row: [SQLValue]) -> ServiceUser {
        ServiceUser(name: row[0].text ?? "", role: row[1].text.flatMap(ServiceRole.init(rawValue:)) ?? .user,
                    createdAt: row[2].date ?? .distantPast)
    }

    // MARK: Tokens

    /// Makes a new API token for `user` and returns it: the only time it is seen. The
    /// store keeps its SHA-256.
    public func issueToken(user: String, label: String?, at now: Date = Date()) throws -> String {
        guard try self.user(named: user) != nil else { throw LabError.usage("no user named '\(user)'") }
        let token = "mlb_" + (try Self.randomHex(bytes: 32))
        try connection.execute("INSERT INTO api_tokens (token_sha256, user_name, label, created_at) VALUES (?, ?, ?, ?)",
                               [.text(try Self.tokenHash(token)), .text(user), .optional(label), .time(now)])
        return token
    }

    /// The user a token belongs to, or nil for an unknown (or revoked) token.
    public func authenticate(token: String) throws -> ServiceUser? {
        guard token.hasPrefix("mlb_"), token.count < 200 else { return nil }
        return try connection.query("""
            SELECT u.name, u.role, u.created_at FROM api_tokens t JOIN service_users u ON u.name = t.user_name
            WHERE t.token_sha256 = ?
            """, [.text(try Self.tokenHash(token))]).first.map(Self.serviceUser)
    }

    public func tokens(user: String?) throws -> [APITokenInfo] {
        let filter = user == nil ? "" : "WHERE user_name = ?"
        return try connection.query("SELECT token_sha256, user_name, label, created_at FROM api_tokens \(filter) ORDER BY created_at",
                                    user.map { [.text($0)] } ?? []).map { row in
            APITokenInfo(id: String((row[0].text ?? "").prefix(12)), user: row[1].text ?? "", label: row[2].text,
                         createdAt: row[3].date ?? .distantPast)
        }
    }

    /// Revokes the token whose id (a prefix of its SHA-256, at least 8 digits) is given.
    public func revokeToken(id: String) throws {
        guard id.count >= 8, id.allSatisfy(\.isHexDigit) else { throw LabError.usage("'\(id)' is not a token id (8 or more hex digits)") }
        let changed = try connection.execute("DELETE FROM api_tokens WHERE token_sha256 LIKE ?", [.text(id.lowercased() + "%")])
        if changed == 0 { throw LabError.usage("no token with id '\(id)'") }
    }

    /// The SHA-256 of a token, in hex: what the store keeps.
    public static func tokenHash(_ token: String) throws -> String { try SHA256Digest.hex(of: Data(token.utf8)) }

    static func randomHex(bytes count: Int) throws -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    // MARK: Sharing and visibility

    public func share(_ kind: ShareKind, _ objectID: String, with user: String, by owner: String, at now: Date = Date()) throws {
        guard try self.user(named: user) != nil else { throw LabError.usage("no user named '\(user)'") }
        try connection.transaction {
            try connection.execute("DELETE FROM shares WHERE kind = ? AND object_id = ? AND user_name = ?",
                                   [.text(kind.rawValue), .text(objectID), .text(user)])
            try connection.execute("INSERT INTO shares (kind, object_id, user_name, granted_by, created_at) VALUES (?, ?, ?, ?, ?)",
                                   [.text(kind.rawValue), .text(objectID), .text(user), .text(owner), .time(now)])
        }
    }

    public func unshare(_ kind: ShareKind, _ objectID: String, with user: String) throws {
        if try connection.execute("DELETE FROM shares WHERE kind = ? AND object_id = ? AND user_name = ?",
                                  [.text(kind.rawValue), .text(objectID), .text(user)]) == 0 {
            throw LabError.usage("\(kind.rawValue) \(objectID) is not shared with '\(user)'")
        }
    }

    public func shares(_ kind: ShareKind, _ objectID: String) throws -> [Share] {
        try connection.query("""
            SELECT kind, object_id, user_name, granted_by, created_at FROM shares WHERE kind = ? AND object_id = ? ORDER BY user_name
            """, [.text(kind.rawValue), .text(objectID)]).map { row in
            Share(kind: ShareKind(rawValue: row[0].text ?? "") ?? kind, objectID: row[1].text ?? "", user: row[2].text ?? "",
                  grantedBy: row[3].text ?? "", createdAt: row[4].date ?? .distantPast)
        }
    }

    /// Whether `user` may see the queued experiment: theirs, shared with them, or an operator's view.
    public func canSee(experiment: QueuedExperiment, as user: ServiceUser) throws -> Bool {
        if user.role >= .operator || experiment.user == user.name { return true }
        return try !connection.query("SELECT 1 FROM shares WHERE kind = 'experiment' AND object_id = ? AND user_name = ?",
                                     [.text(experiment.id), .text(user.name)]).isEmpty
    }

    /// Whether `user` may read the result: theirs, shared with them (itself, or the queued
    /// experiment that made it), or an admin's.
    public func canSee(result: ExperimentResult, as user: ServiceUser) throws -> Bool {
        if user.role >= .admin || result.user == user.name { return true }
        return try !connection.query(Self.sharedResultsSQL + " AND r.id = ?", [.text(user.name), .text(user.name), .text(result.id)]).isEmpty
    }

    /// `SELECT r.id FROM results r WHERE (shared with ?)`; arguments: the user twice.
    static let sharedResultsSQL = """
        SELECT r.id FROM results r WHERE (
            r.id IN (SELECT object_id FROM shares WHERE kind = 'result' AND user_name = ?)
            OR r.id IN (SELECT q.result_id FROM queue q JOIN shares s ON s.kind = 'experiment' AND s.object_id = q.id AND s.user_name = ?
                        WHERE q.result_id IS NOT NULL))
        """

    /// The newest results `user` may read.
    public func list(limit: Int, visibleTo user: ServiceUser) throws -> [ResultHeadline] {
        if user.role >= .admin { return try list(limit: limit) }
        return try list(limit: limit, filter: "WHERE \"user\" = ? OR id IN (\(Self.sharedResultsSQL))",
                        [.text(user.name), .text(user.name), .text(user.name)])
    }

    /// The queued experiments `user` may see, in submission order.
    public func experiments(state: QueueState?, visibleTo user: ServiceUser) throws -> [QueuedExperiment] {
        let all = try experiments(state: state)
        if user.role >= .operator { return all }
        let shared = Set(try connection.query("SELECT object_id FROM shares WHERE kind = 'experiment' AND user_name = ?", [.text(user.name)])
            .compactMap { $0.first?.text })
        return all.filter { $0.user == user.name || shared.contains($0.id) }
    }

    // MARK: Messages

    @discardableResult
    public func postMessage(author: String, recipient: String?, text: String, at now: Date = Date()) throws -> ServiceMessage {
        if let recipient, try user(named: recipient) == nil { throw LabError.usage("no user named '\(recipient)'") }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw LabError.usage("a message needs some text") }
        let seq = try connection.query("INSERT INTO messages (author, recipient, body, created_at) VALUES (?, ?, ?, ?) RETURNING seq",
                                       [.text(author), .optional(recipient), .text(text), .time(now)]).first?.first?.integer ?? 0
        return ServiceMessage(id: seq, author: author, recipient: recipient, text: text, createdAt: now)
    }

    /// Messages for `user` (to them or to everyone), the newest first; all of them when nil.
    public func messages(for user: String?, limit: Int = 100) throws -> [ServiceMessage] {
        let filter = user == nil ? "" : "WHERE recipient IS NULL OR recipient = ?"
        return try connection.query("SELECT seq, author, recipient, body, created_at FROM messages \(filter) ORDER BY seq DESC LIMIT ?",
                                    (user.map { [SQLValue.text($0)] } ?? []) + [.integer(Int64(limit))]).map { row in
            ServiceMessage(id: row[0].integer ?? 0, author: row[1].text ?? "", recipient: row[2].text, text: row[3].text ?? "",
                           createdAt: row[4].date ?? .distantPast)
        }
    }

    // MARK: Uploads

    public func recordUpload(_ upload: UploadRecord) throws {
        try connection.transaction {
            try connection.execute("DELETE FROM uploads WHERE sha256 = ? AND user_name = ?", [.text(upload.sha256), .text(upload.user)])
            try connection.execute("INSERT INTO uploads (sha256, user_name, kind, size, created_at) VALUES (?, ?, ?, ?, ?)",
                                   [.text(upload.sha256), .text(upload.user), .text(upload.kind), .integer(upload.size), .time(upload.createdAt)])
        }
    }

    /// The file `user` uploaded with this SHA-256, or nil.
    public func upload(sha256: String, user: String) throws -> UploadRecord? {
        try connection.query("SELECT sha256, user_name, kind, size, created_at FROM uploads WHERE sha256 = ? AND user_name = ?",
                             [.text(sha256), .text(user)]).first.map { row in
            UploadRecord(sha256: row[0].text ?? "", user: row[1].text ?? "", kind: row[2].text ?? "", size: row[3].integer ?? 0,
                         createdAt: row[4].date ?? .distantPast)
        }
    }

    // MARK: Step log

    /// Appends lines to an experiment's step log.
    public func appendLog(experiment id: String, lines: [String], at now: Date) throws {
        guard !lines.isEmpty else { return }
        try connection.transaction {
            var next = (try connection.query("SELECT max(seq) FROM experiment_log WHERE experiment_id = ?", [.text(id)]).first?.first?.integer ?? 0) + 1
            for line in lines {
                try connection.execute("INSERT INTO experiment_log (experiment_id, seq, at, line) VALUES (?, ?, ?, ?)",
                                       [.text(id), .integer(next), .time(now), .text(line)])
                next += 1
            }
        }
    }

    /// The step log of an experiment after line `after` (0: from the start).
    public func log(experiment id: String, after: Int64 = 0) throws -> [ExperimentLogLine] {
        try connection.query("SELECT seq, at, line FROM experiment_log WHERE experiment_id = ? AND seq > ? ORDER BY seq",
                             [.text(id), .integer(after)]).map { row in
            ExperimentLogLine(sequence: row[0].integer ?? 0, at: row[1].date ?? .distantPast, line: row[2].text ?? "")
        }
    }
}
