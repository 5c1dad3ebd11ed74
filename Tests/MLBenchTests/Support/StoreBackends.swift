import Foundation
@testable import MLBench
import XCTest

/// The two store backends every store behaviour is checked against: SQLite in a
/// temporary file, and PostgreSQL in a fresh database of the server named by
/// `MLBENCH_TEST_POSTGRES` (scripts/test starts one with scripts/postgres).
///
/// Without that variable the PostgreSQL half is skipped with a message, except under
/// CI=true, where a missing server is a failure: CI must test both.
enum StoreBackends {
    static let variable = "MLBENCH_TEST_POSTGRES"

    enum Backend: String, CaseIterable { case sqlite = "SQLite", postgres = "PostgreSQL" }

    /// The server's URL, or nil (after failing the test under CI) when there is none.
    static func postgresURL(file: StaticString = #filePath, line: UInt = #line) -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment[variable], !url.isEmpty { return url }
        if environment["CI"] == "true" {
            XCTFail("\(variable) is not set under CI: scripts/test must start PostgreSQL (scripts/postgres) so that the PostgreSQL store is tested", file: file, line: line)
        }
        return nil
    }

    /// A fresh, empty PostgreSQL database on the test server; dropped by `dropDatabase`.
    static func freshPostgresDatabase(_ url: String) throws -> (url: String, name: String) {
        let base = try PostgresLocation(url: url)
        let name = "mlbench_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try PostgresSQLConnection(base)
        try admin.executeScript("CREATE DATABASE \(name)")
        var fresh = base
        fresh.database = name
        return (fresh.description, name)
    }

    static func dropDatabase(_ name: String, server url: String) {
        guard let base = try? PostgresLocation(url: url), let admin = try? PostgresSQLConnection(base) else { return }
        try? admin.executeScript("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs `body` with a new, empty store of each backend. The PostgreSQL half is
    /// skipped (after the SQLite half ran) when there is no test server.
    static func each(file: StaticString = #filePath, line: UInt = #line,
                     _ body: (_ store: LabStore, _ backend: Backend) throws -> Void) throws {
        try eachLocation(file: file, line: line) { location, backend in try body(LabStore.open(location), backend) }
    }

    /// Runs `body` with the location (a file path or a URL) of a new, empty store of each
    /// backend, for tests that hand it to other processes.
    static func eachLocation(file: StaticString = #filePath, line: UInt = #line,
                             _ body: (_ location: String, _ backend: Backend) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try run(.sqlite, file: file, line: line) { try body(folder.appendingPathComponent("lab.sqlite").path, .sqlite) }
        guard let server = postgresURL(file: file, line: line) else {
            throw XCTSkip("PostgreSQL half skipped: \(variable) is not set (scripts/test starts a server with scripts/postgres); the SQLite half passed")
        }
        let database = try freshPostgresDatabase(server)
        defer { dropDatabase(database.name, server: server) }
        try run(.postgres, file: file, line: line) { try body(database.url, .postgres) }
    }

    /// Names the backend in an error that escapes the body.
    private static func run(_ backend: Backend, file: StaticString, line: UInt, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as XCTSkip {
            throw error
        } catch {
            XCTFail("[\(backend.rawValue)] \(error)", file: file, line: line)
        }
    }
}

extension ExperimentResult {
    /// A small stored result: a measured run with its raw timings, or a failure.
    static func sample(id: String, status: Status = .succeeded, finishedAt: Date = Date(timeIntervalSince1970: 1_800_000_000)) -> ExperimentResult {
        let durations: [Int64] = [100, 110, 105, 98, 120]
        let measurement = status == .failed ? nil : MeasurementRecord(
            startsNs: durations.indices.map { Int64($0) * 1000 }, durationsNs: durations,
            summary: Statistics.summarize(durations.map(Double.init), resamples: 50),
            peakMemoryBytes: 1 << 20, stoppedBecause: "maximum iterations", stoppingRule: .maximumIterations,
            outliers: nil, filteredSummary: nil, filter: nil, canary: nil)
        return ExperimentResult(
            id: id, name: "sample-\(id)", status: status,
            failure: status == .failed ? Failure(stage: "build", reason: "the toolchain refused the model", kind: .toolchain) : nil,
            user: "alice", startedAt: finishedAt.addingTimeInterval(-30), finishedAt: finishedAt,
            experimentText: "name: sample\n", experimentPath: "/lab/sample.yaml", checksums: ["experiment": String(repeating: "ab", count: 32)],
            board: nil, toolchain: nil, reference: nil, warmUp: nil, measurement: measurement,
            semanticPreservation: nil, log: [LogEntry(at: finishedAt, stage: "store", message: "stored")], attempts: 1)
    }
}
