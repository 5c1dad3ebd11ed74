import Foundation
import MLBenchCore

/// The lab's store: results, the experiment queue and the board registry, in one
/// database. SQLite (one file, WAL) is the embedded default for one bench host;
/// PostgreSQL is shared by several bench hosts. Both run the same code and SQL —
/// only `SQLDialect` says where they differ — so they behave the same, and one test
/// suite checks both.
///
/// SQLite is reached through the project's own driver (Drivers/SQLite), not GRDB: the
/// store needs statements, transactions and WAL, which the driver already gives
/// with typed errors, and a second SQLite layer would be a second way to do one thing.
///
/// A store is used by one thread at a time; each process (or thread) opens its own.
public final class LabStore: ResultStore, ExperimentQueue {
    let connection: any SQLConnection
    /// Where it is: a file path or a PostgreSQL URL (without password).
    public var location: String { connection.location }

    /// The schema version this code writes. Older databases are migrated (their results
    /// stay readable); newer ones are refused.
    /// 1: results and raw timings. 2: queue, boards, reservations, usage. 3: bundle signatures
    /// and the blobs each result names (so that deleting one knows what no other needs).
    /// 4: the service's users, API tokens (hashed), shares, messages, uploads, and the step
    /// log of queued experiments.
    static let schemaVersion: Int64 = 4

    /// Signs each inserted bundle when set (the CLI sets the lab's key); results stored
    /// without one are reported unsigned by `verify`.
    public var signer: BundleSigner?

    /// Opens (creating and migrating if needed) the SQLite store at `path`.
    public convenience init(sqlitePath path: String) throws {
        try self.init(connection: SQLiteConnection(path: path))
    }

    /// Connects to (and migrates if needed) the PostgreSQL store at `location`.
    public convenience init(postgres location: PostgresLocation) throws {
        try self.init(connection: PostgresSQLConnection(location))
    }

    /// Opens the store `location` names: a postgres:// URL, else an SQLite file path.
    public static func open(_ location: String) throws -> LabStore {
        if PostgresLocation.isPostgresURL(location) { return try LabStore(postgres: PostgresLocation(url: location)) }
        return try LabStore(sqlitePath: location)
    }

    init(connection: any SQLConnection) throws {
        self.connection = connection
        try migrate()
    }

    // MARK: Schema

    private func migrate() throws {
        try connection.transaction {
            var version: Int64
            switch connection.dialect {
            case .sqlite:
                version = try connection.query("PRAGMA user_version").first?.first?.integer ?? 0
            case .postgres:
                // Several hosts may start at once: one migrates, the others wait and see it done.
                try connection.execute("SELECT pg_advisory_xact_lock(7231917)", [])
                try connection.executeScript("CREATE TABLE IF NOT EXISTS mlbench_schema (version BIGINT NOT NULL)")
                version = try connection.query("SELECT max(version) FROM mlbench_schema").first?.first?.integer ?? 0
            }
            if version > LabStore.schemaVersion {
                throw LabError.store("\(location) has schema version \(version), newer than this mlbench (\(LabStore.schemaVersion)); use a newer mlbench")
            }
            while version < LabStore.schemaVersion {
                version += 1
                try connection.executeScript(Self.migration(to: version, connection.dialect))
                if version == 3 { try indexBlobsOfStoredResults() }
                switch connection.dialect {
                case .sqlite: try connection.executeScript("PRAGMA user_version = \(version)")
                case .postgres: try connection.execute("INSERT INTO mlbench_schema (version) VALUES (?)", [.integer(version)])
                }
            }
        }
    }

    /// The statements that bring a database from `version - 1` to `version`.
    static func migration(to version: Int64, _ dialect: SQLDialect) -> String {
        let time = "DOUBLE PRECISION"
        switch version {
        case 1:
            // Exactly the schema SQLite files of version 1 have, so that they stay readable.
            return """
                CREATE TABLE results (
                    \(dialect == .postgres ? "seq BIGSERIAL," : "")
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
                    failure_stage TEXT,
                    failure_reason TEXT,
                    "user" TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    finished_at TEXT NOT NULL,
                    board TEXT,
                    toolchain TEXT,
                    toolchain_version TEXT,
                    median_ns DOUBLE PRECISION,
                    preservation_ratio DOUBLE PRECISION,
                    experiment_sha256 TEXT NOT NULL,
                    bundle TEXT NOT NULL
                );
                CREATE INDEX results_finished ON results (finished_at);
                CREATE TABLE timings (
                    result_id TEXT NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                    phase TEXT NOT NULL CHECK (phase IN ('warm_up', 'measure')),
                    iteration INTEGER NOT NULL,
                    start_ns BIGINT,
                    duration_ns BIGINT NOT NULL,
                    PRIMARY KEY (result_id, phase, iteration)
                ) \(dialect == .sqlite ? "WITHOUT ROWID" : "");
                """
        case 2:
            let healths = BoardHealth.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            let states = QueueState.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            return """
                CREATE TABLE boards (
                    name TEXT PRIMARY KEY,
                    host TEXT NOT NULL,
                    health TEXT NOT NULL CHECK (health IN (\(healths))),
                    enabled BIGINT NOT NULL DEFAULT 1,
                    note TEXT,
                    changed_at \(time) NOT NULL
                );
                CREATE INDEX boards_host ON boards (host);
                CREATE TABLE queue (
                    seq \(dialect.serialKey),
                    id TEXT NOT NULL UNIQUE,
                    user_name TEXT NOT NULL,
                    name TEXT NOT NULL,
                    board TEXT NOT NULL REFERENCES boards (name),
                    series TEXT,
                    definition TEXT NOT NULL,
                    directory TEXT,
                    notify_email TEXT,
                    notify_webhook TEXT,
                    state TEXT NOT NULL CHECK (state IN (\(states))),
                    submitted_at \(time) NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0,
                    lease_owner TEXT,
                    lease_expires_at \(time),
                    started_at \(time),
                    finished_at \(time),
                    result_id TEXT,
                    note TEXT
                );
                CREATE INDEX queue_waiting ON queue (state, board, user_name, seq);
                CREATE INDEX queue_series ON queue (series);
                CREATE TABLE reservations (
                    id TEXT PRIMARY KEY,
                    board TEXT NOT NULL REFERENCES boards (name),
                    user_name TEXT NOT NULL,
                    starts_at \(time) NOT NULL,
                    ends_at \(time) NOT NULL,
                    CHECK (ends_at > starts_at)
                );
                CREATE INDEX reservations_board ON reservations (board, ends_at);
                CREATE TABLE usage_log (
                    experiment_id TEXT PRIMARY KEY,
                    user_name TEXT NOT NULL,
                    board TEXT NOT NULL,
                    seconds \(time) NOT NULL,
                    finished_at \(time) NOT NULL
                );
                CREATE INDEX usage_log_user ON usage_log (user_name, finished_at);
                CREATE TABLE user_usage (
                    user_name TEXT PRIMARY KEY,
                    decayed_seconds \(time) NOT NULL,
                    as_of \(time) NOT NULL
                );
                """
        case 3:
            // Results stored before signatures exist stay readable; `verify` reports them unsigned.
            return """
                ALTER TABLE results ADD COLUMN signature TEXT;
                ALTER TABLE results ADD COLUMN signing_key TEXT;
                CREATE TABLE result_blobs (
                    result_id TEXT NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    sha256 TEXT NOT NULL,
                    PRIMARY KEY (result_id, name)
                );
                CREATE INDEX result_blobs_sha256 ON result_blobs (sha256)
                """
        case 4:
            return Self.serviceMigration(dialect)
        default:
            preconditionFailure("no migration to schema version \(version)")
        }
    }

    // MARK: Results

    public func insert(_ result: ExperimentResult) throws {
        let bundle = try String(decoding: ResultCoding.encoder.encode(result), as: UTF8.self)
        let experimentHash = result.checksums["experiment"] ?? ""
        let signature = try signer?.sign(bundle)
        try connection.transaction {
            let existing = try connection.query("SELECT 1 FROM results WHERE id = ?", [.text(result.id)])
            guard existing.isEmpty else { throw LabError.store("a result with id \(result.id) is already stored; results are never overwritten") }
            try connection.execute("""
                INSERT INTO results (id, name, status, failure_stage, failure_reason, "user", started_at, finished_at,
                                     board, toolchain, toolchain_version, median_ns, preservation_ratio, experiment_sha256, bundle,
                                     signature, signing_key)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [
                    .text(result.id), .text(result.name), .text(result.status.rawValue),
                    .optional(result.failure?.stage), .optional(result.failure?.reason),
                    .text(result.user), .text(ResultCoding.timestamp(result.startedAt)), .text(ResultCoding.timestamp(result.finishedAt)),
                    .optional(result.board?.name), .optional(result.toolchain?.name), .optional(result.toolchain?.version),
                    result.measurement.map { .real($0.summary.median) } ?? .null,
                    result.semanticPreservation.map { .real($0.ratio) } ?? .null,
                    .text(experimentHash), .text(bundle), .optional(signature), .optional(signer?.publicKey),
                ])
            var rows = [[SQLValue]]()
            for (index, duration) in (result.warmUp?.durationsNs ?? []).enumerated() {
                rows.append([.text(result.id), .text("warm_up"), .integer(Int64(index)), .null, .integer(duration)])
            }
            if let measurement = result.measurement {
                for (index, duration) in measurement.durationsNs.enumerated() {
                    let start: SQLValue = index < measurement.startsNs.count ? .integer(measurement.startsNs[index]) : .null
                    rows.append([.text(result.id), .text("measure"), .integer(Int64(index)), start, .integer(duration)])
                }
            }
            try recordBlobs(of: result)
            // Many rows per statement: one round trip per 500 timings, not per timing.
            for start in stride(from: 0, to: rows.count, by: 500) {
                let chunk = rows[start..<min(start + 500, rows.count)]
                let values = Array(repeating: "(?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                try connection.execute("INSERT INTO timings (result_id, phase, iteration, start_ns, duration_ns) VALUES \(values)",
                                       chunk.flatMap { $0 })
            }
        }
    }

    public func result(id: String) throws -> ExperimentResult? {
        // A unique prefix of the id is enough, as with git.
        let rows = try connection.query("SELECT bundle FROM results WHERE id = ? OR id LIKE ? LIMIT 2", [.text(id), .text(id + "%")])
        if rows.count > 1 { throw LabError.usage("the id prefix '\(id)' matches several results; give more of it") }
        guard let text = rows.first?.first?.text else { return nil }
        do {
            return try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(text.utf8))
        } catch {
            throw LabError.store("the stored bundle of result \(id) in \(location) cannot be read: \(error)")
        }
    }

    public func list(limit: Int) throws -> [ResultHeadline] { try list(limit: limit, filter: "", []) }

    /// The newest results that pass `filter` (a WHERE clause, or empty) with its `arguments`.
    func list(limit: Int, filter: String, _ arguments: [SQLValue]) throws -> [ResultHeadline] {
        let insertionOrder = connection.dialect == .sqlite ? "rowid" : "seq"
        return try connection.query("""
            SELECT id, name, status, board, toolchain, toolchain_version, median_ns, preservation_ratio, finished_at, failure_reason, "user"
            FROM results \(filter) ORDER BY finished_at DESC, \(insertionOrder) DESC LIMIT ?
            """, arguments + [.integer(Int64(limit))]).map { row in
            ResultHeadline(id: row[0].text ?? "", name: row[1].text ?? "",
                           status: ExperimentResult.Status(rawValue: row[2].text ?? "") ?? .failed,
                           board: row[3].text, toolchain: row[4].text, toolchainVersion: row[5].text,
                           medianNs: row[6].real, preservationRatio: row[7].real,
                           finishedAt: ResultCoding.date(row[8].text ?? "") ?? Date(timeIntervalSince1970: 0),
                           failureReason: row[9].text, user: row[10].text)
        }
    }

    /// The raw timings of a result's phase, in iteration order.
    public func timings(id: String, phase: String) throws -> [Int64] {
        try connection.query("SELECT duration_ns FROM timings WHERE result_id = ? AND phase = ? ORDER BY iteration",
                             [.text(id), .text(phase)]).compactMap { $0.first?.integer }
    }
}

/// The JSON form of stored results (snake_case, ISO 8601 dates with fractions).
public enum ResultCoding {
    public static var encoder: JSONEncoder {
        let encoder = JSONCoding.encoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONCoding.decoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = date(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a timestamp: \(text)"))
            }
            return date
        }
        return decoder
    }

    public static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    public static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
