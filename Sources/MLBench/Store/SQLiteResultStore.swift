import Foundation
import MLBenchCore
import SQLiteDriver

/// The embedded result store: one SQLite file. Each result is written in one
/// transaction, as a row of searchable columns plus the full bundle (JSON);
/// raw timings also go to their own table, so they can be queried.
public final class SQLiteResultStore: ResultStore {
    public let path: String
    private let database: SQLiteDatabase

    /// The schema version this code writes. Older files are migrated; newer ones refused.
    static let schemaVersion: Int64 = 1

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                withIntermediateDirectories: true)
        database = try SQLiteDatabase(path: path)
        try migrate()
    }

    private func migrate() throws {
        let version = try database.query("PRAGMA user_version").first?.first?.integer ?? 0
        if version > SQLiteResultStore.schemaVersion {
            throw LabError.store("\(path) has schema version \(version), newer than this mlbench (\(SQLiteResultStore.schemaVersion)); use a newer mlbench")
        }
        if version < 1 {
            try database.transaction {
                try database.execute("""
                    CREATE TABLE results (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
                        failure_stage TEXT,
                        failure_reason TEXT,
                        user TEXT NOT NULL,
                        started_at TEXT NOT NULL,
                        finished_at TEXT NOT NULL,
                        board TEXT,
                        toolchain TEXT,
                        toolchain_version TEXT,
                        median_ns REAL,
                        preservation_ratio REAL,
                        experiment_sha256 TEXT NOT NULL,
                        bundle TEXT NOT NULL
                    );
                    CREATE INDEX results_finished ON results (finished_at);
                    CREATE TABLE timings (
                        result_id TEXT NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                        phase TEXT NOT NULL CHECK (phase IN ('warm_up', 'measure')),
                        iteration INTEGER NOT NULL,
                        start_ns INTEGER,
                        duration_ns INTEGER NOT NULL,
                        PRIMARY KEY (result_id, phase, iteration)
                    ) WITHOUT ROWID;
                    PRAGMA user_version = 1;
                    """)
            }
        }
    }

    public func insert(_ result: ExperimentResult) throws {
        let bundle = try String(decoding: ResultCoding.encoder.encode(result), as: UTF8.self)
        let experimentHash = result.checksums["experiment"] ?? ""
        try database.transaction {
            let existing = try database.query("SELECT 1 FROM results WHERE id = ?", [.text(result.id)])
            guard existing.isEmpty else { throw LabError.store("a result with id \(result.id) is already stored; results are never overwritten") }
            try database.execute("""
                INSERT INTO results (id, name, status, failure_stage, failure_reason, user, started_at, finished_at,
                                     board, toolchain, toolchain_version, median_ns, preservation_ratio, experiment_sha256, bundle)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [
                    .text(result.id), .text(result.name), .text(result.status.rawValue),
                    result.failure.map { .text($0.stage) } ?? .null, result.failure.map { .text($0.reason) } ?? .null,
                    .text(result.user), .text(ResultCoding.timestamp(result.startedAt)), .text(ResultCoding.timestamp(result.finishedAt)),
                    result.board.map { .text($0.name) } ?? .null,
                    result.toolchain.map { .text($0.name) } ?? .null,
                    result.toolchain.map { .text($0.version) } ?? .null,
                    result.measurement.map { .real($0.summary.median) } ?? .null,
                    result.semanticPreservation.map { .real($0.ratio) } ?? .null,
                    .text(experimentHash), .text(bundle),
                ])
            let statement = try database.prepare("INSERT INTO timings (result_id, phase, iteration, start_ns, duration_ns) VALUES (?, ?, ?, ?, ?)")
            for (index, duration) in (result.warmUp?.durationsNs ?? []).enumerated() {
                try statement.bind([.text(result.id), .text("warm_up"), .integer(Int64(index)), .null, .integer(duration)])
                while try statement.step() {}
            }
            if let measurement = result.measurement {
                for (index, duration) in measurement.durationsNs.enumerated() {
                    let start: SQLiteValue = index < measurement.startsNs.count ? .integer(measurement.startsNs[index]) : .null
                    try statement.bind([.text(result.id), .text("measure"), .integer(Int64(index)), start, .integer(duration)])
                    while try statement.step() {}
                }
            }
        }
    }

    public func result(id: String) throws -> ExperimentResult? {
        // A unique prefix of the id is enough, as with git.
        let rows = try database.query("SELECT bundle FROM results WHERE id = ? OR id LIKE ? LIMIT 2", [.text(id), .text(id + "%")])
        if rows.count > 1 { throw LabError.usage("the id prefix '\(id)' matches several results; give more of it") }
        guard let text = rows.first?.first?.text else { return nil }
        do {
            return try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(text.utf8))
        } catch {
            throw LabError.store("the stored bundle of result \(id) in \(path) cannot be read: \(error)")
        }
    }

    public func list(limit: Int) throws -> [ResultHeadline] {
        try database.query("""
            SELECT id, name, status, board, toolchain, toolchain_version, median_ns, preservation_ratio, finished_at, failure_reason
            FROM results ORDER BY finished_at DESC, rowid DESC LIMIT ?
            """, [.integer(Int64(limit))]).map { row in
            ResultHeadline(id: row[0].text ?? "", name: row[1].text ?? "",
                           status: ExperimentResult.Status(rawValue: row[2].text ?? "") ?? .failed,
                           board: row[3].text, toolchain: row[4].text, toolchainVersion: row[5].text,
                           medianNs: row[6].real, preservationRatio: row[7].real,
                           finishedAt: ResultCoding.date(row[8].text ?? "") ?? Date(timeIntervalSince1970: 0),
                           failureReason: row[9].text)
        }
    }

    /// The raw timings of a result's phase, in iteration order.
    public func timings(id: String, phase: String) throws -> [Int64] {
        try database.query("SELECT duration_ns FROM timings WHERE result_id = ? AND phase = ? ORDER BY iteration",
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
