import Foundation
@testable import MLBench
import SQLiteDriver
import XCTest

/// A result store written by an earlier mlbench stays readable after the queue tables are added.
final class StoreMigrationTests: XCTestCase {
    func testAVersion1ResultFileIsMigratedAndItsResultsStayReadable() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("results.sqlite").path
        let result = ExperimentResult.sample(id: "old-1")
        do {
            // The file exactly as schema version 1 (before the queue) created and filled it.
            let old = try SQLiteDatabase(path: path)
            try old.execute("""
                CREATE TABLE results (id TEXT PRIMARY KEY, name TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')), failure_stage TEXT, failure_reason TEXT,
                    user TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, board TEXT, toolchain TEXT,
                    toolchain_version TEXT, median_ns REAL, preservation_ratio REAL, experiment_sha256 TEXT NOT NULL, bundle TEXT NOT NULL);
                CREATE INDEX results_finished ON results (finished_at);
                CREATE TABLE timings (result_id TEXT NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                    phase TEXT NOT NULL CHECK (phase IN ('warm_up', 'measure')), iteration INTEGER NOT NULL, start_ns INTEGER,
                    duration_ns INTEGER NOT NULL, PRIMARY KEY (result_id, phase, iteration)) WITHOUT ROWID;
                PRAGMA user_version = 1;
                """)
            let bundle = String(decoding: try ResultCoding.encoder.encode(result), as: UTF8.self)
            try old.execute("""
                INSERT INTO results (id, name, status, user, started_at, finished_at, median_ns, experiment_sha256, bundle)
                VALUES (?, ?, 'succeeded', 'alice', ?, ?, 104.0, '', ?)
                """, [.text(result.id), .text(result.name), .text(ResultCoding.timestamp(result.startedAt)),
                      .text(ResultCoding.timestamp(result.finishedAt)), .text(bundle)])
            try old.execute("INSERT INTO timings VALUES ('old-1', 'measure', 0, 0, 100)")
        }
        let store = try LabStore(sqlitePath: path)
        XCTAssertEqual(try store.result(id: "old-1"), result)
        XCTAssertEqual(try store.list(limit: 5).map(\.medianNs), [104.0])
        XCTAssertEqual(try store.timings(id: "old-1", phase: "measure"), [100])
        XCTAssertEqual(try SQLiteDatabase(path: path).query("PRAGMA user_version").first?.first?.integer, LabStore.schemaVersion)
        // And the new tables work in the migrated file.
        try store.registerBoard("b1", host: "bench-1")
        XCTAssertEqual(try store.boards().map(\.name), ["b1"])
        try store.insert(ExperimentResult.sample(id: "new-1"))
        XCTAssertEqual(try store.list(limit: 5).count, 2)
        // The old result's files were indexed from its bundle: deleting it knows what it kept.
        XCTAssertEqual(try store.connection.query("SELECT name, sha256 FROM result_blobs WHERE result_id = 'old-1'"),
                       [[.text("experiment"), .text(String(repeating: "ab", count: 32))]])
        XCTAssertEqual(try store.delete(id: "old-1", blobs: BlobStore(root: folder.appendingPathComponent("blobs"))).removedBlobs, [],
                       "its experiment file is still named by the new result")
    }

    func testAStoreFromANewerMlbenchIsRefusedUntouched() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-migration-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("results.sqlite").path
        try SQLiteDatabase(path: path).execute("PRAGMA user_version = 99")
        XCTAssertThrowsError(try LabStore(sqlitePath: path)) { error in
            XCTAssertTrue("\(error)".contains("schema version 99, newer than this mlbench"), "\(error)")
        }
        XCTAssertEqual(try SQLiteDatabase(path: path).query("PRAGMA user_version").first?.first?.integer, 99)
    }
}
