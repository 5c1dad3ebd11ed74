import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// Real `mlbench worker` processes acting as bench hosts on one PostgreSQL store: each
/// experiment runs once, on a board of its own host, one at a time per board.
final class TwoHostsQueueTests: XCTestCase {
    func testTwoHostsShareOnePostgreSQLQueueWithoutRunningAnExperimentTwice() throws {
        guard let server = StoreBackends.postgresURL() else {
            throw XCTSkip("needs PostgreSQL: \(StoreBackends.variable) is not set (scripts/test starts a server with scripts/postgres)")
        }
        let database = try StoreBackends.freshPostgresDatabase(server)
        defer { StoreBackends.dropDatabase(database.name, server: server) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-hosts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let store = try LabStore.open(database.url)
        let hostOf = ["a1": "bench-a", "a2": "bench-a", "a3": "bench-a", "b1": "bench-b", "b2": "bench-b", "b3": "bench-b"]
        for (board, host) in hostOf {
            try store.registerBoard(board, host: host)
            try store.setHealth(.good, board: board, note: nil)
        }
        let boards = hostOf.keys.sorted()
        var submitted = [String: String]()
        for index in 0..<60 {
            let board = boards[index % boards.count]
            let experiment = try store.submit(Submission(user: index % 3 == 0 ? "bob" : "alice", name: "e\(index)", board: board,
                                                         definition: "name: e\(index)\n"), at: Date())
            submitted[experiment.id] = board
        }

        // The experiment's process: logs its start and end with the board and host it was given.
        let log = folder.appendingPathComponent("runs.log")
        let script = folder.appendingPathComponent("experiment.sh")
        try """
            #!/bin/sh
            echo "start $MLBENCH_EXPERIMENT_ID $MLBENCH_BOARD $MLBENCH_HOST $MLBENCH_WORKER $(date +%s%N)" >> "\(log.path)"
            sleep 0.05
            echo "end $MLBENCH_EXPERIMENT_ID $MLBENCH_BOARD $MLBENCH_HOST $MLBENCH_WORKER $(date +%s%N)" >> "\(log.path)"
            echo "result-$MLBENCH_EXPERIMENT_ID"
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)

        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_HOME"] = folder.appendingPathComponent("home").path
        environment["MLBENCH_STORE"] = database.url
        // Two hosts, and a second worker on the first host contending for the same boards.
        let workers = try [("bench-a", "a-1"), ("bench-b", "b-1"), ("bench-a", "a-2")].map { host, name in
            try ChildProcess([MLBenchBinary.executable.path, "worker", "--host", host, "--name", name,
                              "--lease", "20", "--heartbeat", "1", "--", script.path], environment: environment)
        }
        defer { for worker in workers { worker.terminate(); _ = try? worker.wait(timeout: 10) } }

        let deadline = Date().addingTimeInterval(120)
        while try store.experiments(state: .succeeded).count < submitted.count {
            for worker in workers {
                if let status = try? worker.wait(timeout: 0) {
                    return XCTFail("a worker exited (status \(status)): \(worker.stderr.suffix(2000))")
                }
            }
            guard Date() < deadline else {
                let states = try store.experiments(state: nil).map { "\($0.name) \($0.state.rawValue) \($0.note ?? "")" }
                return XCTFail("not all experiments finished in 120 s:\n\(states.joined(separator: "\n"))")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }

        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let starts = lines.filter { $0.first == "start" }
        let ends = lines.filter { $0.first == "end" }
        XCTAssertEqual(starts.map { $0[1] }.sorted(), submitted.keys.sorted(), "every experiment ran exactly once")
        XCTAssertEqual(ends.count, submitted.count)
        for start in starts {
            XCTAssertEqual(start[2], submitted[start[1]], "ran on the board it was queued for")
            XCTAssertEqual(start[3], hostOf[start[2]], "a host runs only its own boards")
        }
        // One experiment at a time per board: a board's runs never overlap.
        let endOf = Dictionary(uniqueKeysWithValues: ends.map { ($0[1], Int64($0[5]) ?? 0) })
        for board in boards {
            let runs = starts.filter { $0[2] == board }.map { (start: Int64($0[5]) ?? 0, end: endOf[$0[1]] ?? Int64.max) }.sorted { $0.start < $1.start }
            for (earlier, later) in zip(runs, runs.dropFirst()) {
                XCTAssertLessThanOrEqual(earlier.end, later.start, "two experiments ran at once on \(board)")
            }
        }
        XCTAssertEqual(Set(starts.map { $0[3] }), ["bench-a", "bench-b"], "both hosts worked")
        let perWorker = Dictionary(grouping: starts, by: { $0[4] }).mapValues(\.count)
        print("experiments run per worker: \(perWorker.sorted { $0.key < $1.key })")
        for experiment in try store.experiments(state: nil) {
            XCTAssertEqual(experiment.state, .succeeded)
            XCTAssertEqual(experiment.attempts, 1, "\(experiment.name) was started more than once")
            XCTAssertEqual(experiment.resultID, "result-\(experiment.id)")
        }
        XCTAssertEqual(try store.usage(user: nil).count, submitted.count, "usage logged once per experiment")
    }
}
