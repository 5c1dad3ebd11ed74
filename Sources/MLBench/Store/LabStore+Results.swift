import Foundation

/// Deleting and exporting results.
extension LabStore {
    /// Notes which blobs a result names (its checksums), in the insert's transaction.
    func recordBlobs(of result: ExperimentResult) throws {
        for (name, sha256) in result.checksums.sorted(by: { $0.key < $1.key }) {
            try connection.execute("INSERT INTO result_blobs (result_id, name, sha256) VALUES (?, ?, ?)",
                                   [.text(result.id), .text(name), .text(sha256)])
        }
    }

    /// Migration to schema 3: the blobs of results stored before it, read from their bundles.
    func indexBlobsOfStoredResults() throws {
        for row in try connection.query("SELECT bundle FROM results") {
            guard let text = row[0].text,
                  let result = try? ResultCoding.decoder.decode(ExperimentResult.self, from: Data(text.utf8)) else { continue }
            try recordBlobs(of: result)
        }
    }

    /// Deletes a result — its row, raw timings and blob list — and then the blobs no other
    /// stored result names. Returns the deleted result and the hashes of the blobs removed.
    @discardableResult
    public func delete(id: String, blobs: BlobStore) throws -> (result: ExperimentResult, removedBlobs: [String]) {
        guard let result = try result(id: id) else { throw LabError.usage("no result with id '\(id)' in \(location)") }
        let unreferenced = try connection.transaction { () -> [String] in
            try connection.execute("DELETE FROM timings WHERE result_id = ?", [.text(result.id)])
            try connection.execute("DELETE FROM result_blobs WHERE result_id = ?", [.text(result.id)])
            try connection.execute("DELETE FROM results WHERE id = ?", [.text(result.id)])
            let hashes = Array(Set(result.checksums.values)).sorted()
            guard !hashes.isEmpty else { return [] }
            let stillUsed = Set(try connection.query("SELECT DISTINCT sha256 FROM result_blobs WHERE sha256 IN (\(Self.placeholders(hashes.count)))",
                                                     hashes.map(SQLValue.text)).compactMap { $0.first?.text })
            return hashes.filter { !stillUsed.contains($0) }
        }
        // After the commit: a crash here leaves an unreferenced blob, never a result without its files.
        for hash in unreferenced { try? FileManager.default.removeItem(at: blobs.path(of: hash)) }
        return (result, unreferenced)
    }

    /// Full bundles of the results `ids` (all when empty), as stored, newest first.
    public func bundles(ids: [String]) throws -> [ExperimentResult] {
        if ids.isEmpty {
            return try list(limit: Int(Int32.max)).compactMap { try result(id: $0.id) }
        }
        return try ids.map { id in
            guard let result = try result(id: id) else { throw LabError.usage("no result with id '\(id)' in \(location)") }
            return result
        }
    }
}

/// Results written for other tools.
public enum ResultExport {
    /// The results' bundles as one JSON array (the stored form: raw timings included).
    public static func json(_ results: [ExperimentResult]) throws -> String {
        String(decoding: try ResultCoding.encoder.encode(results), as: UTF8.self)
    }

    /// One CSV line per result with its headline figures (RFC 4180 quoting).
    public static func csv(_ results: [ExperimentResult]) -> String {
        var lines = [["id", "name", "status", "user", "board", "toolchain", "toolchain_version", "started_at", "finished_at",
                      "iterations", "median_ns", "mean_ns", "median_ci_low_ns", "median_ci_high_ns", "preservation_ratio", "failure"]]
        for result in results {
            let summary = result.measurement?.summary
            lines.append([
                result.id, result.name, result.status.rawValue, result.user, result.board?.name ?? "", result.toolchain?.name ?? "",
                result.toolchain?.version ?? "", ResultCoding.timestamp(result.startedAt), ResultCoding.timestamp(result.finishedAt),
                summary.map { "\($0.count)" } ?? "", summary.map { "\($0.median)" } ?? "", summary.map { "\($0.mean)" } ?? "",
                summary.map { "\($0.medianInterval.lower)" } ?? "", summary.map { "\($0.medianInterval.upper)" } ?? "",
                result.semanticPreservation.map { "\($0.ratio)" } ?? "",
                result.failure.map { "\($0.stage): \($0.reason)" } ?? "",
            ])
        }
        return lines.map { $0.map(field).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    private static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
