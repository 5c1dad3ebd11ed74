import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// kill -9 of the worker daemon, or of an experiment's process, at random moments, many
/// times over, on both store backends: afterwards every experiment has finished exactly
/// once, none is lost, none ran twice at once on its board, and every success is the
/// outcome of a run that really ended.
final class CrashRecoveryTests: XCTestCase {
    func testKillNineOfTheWorkerOrAnExperimentAtRandomLosesAndDuplicatesNothing() throws {
        try StoreBackends.eachLocation { location, backend in
            try crashAndRecover(location, backend: backend, rounds: 15)
        }
    }

    func crashAndRecover(_ location: String, backend: StoreBackends.Backend, rounds: Int) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LabStore.open(location)
        let boards = ["b1", "b2", "b3"]
        for board in boards {
            try store.registerBoard(board, host: "bench")
            try store.setHealth(.good, board: board, note: nil)
        }
        var boardOf = [String: String]()
        for index in 0..<24 {
            let experiment = try store.submit(Submission(user: index % 2 == 0 ? "alice" : "bob", name: "e\(index)",
                                                         board: boards[index % 3], definition: "name: e\(index)\n"), at: Date())
            boardOf[experiment.id] = experiment.board
        }
        // Each experiment's process says when it starts, that it is alive every 10 ms, and when it ends.
        let log = folder.appendingPathComponent("runs.log")
        let script = folder.appendingPathComponent("experiment.sh")
        try """
            #!/bin/sh
            say() { echo "$1 $MLBENCH_EXPERIMENT_ID $MLBENCH_BOARD $$ $(date +%s%N)" >> "\(log.path)"; }
            say start
            i=0
            while [ $i -lt 8 ]; do sleep 0.01; say tick; i=$((i + 1)); done
            say end
            echo "result-$MLBENCH_EXPERIMENT_ID-$$"
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_HOME"] = folder.appendingPathComponent("home").path
        environment["MLBENCH_STORE"] = location
        let command = [MLBenchBinary.executable.path, "worker", "--host", "bench", "--lease", "2", "--heartbeat", "0.2",
                       "--max-attempts", "1000"]

        var killedExperiments = Set<String>()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<rounds {
            let worker = try ChildProcess(command + ["--", script.path], environment: environment)
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.5, using: &generator))
            if Bool.random(using: &generator), let victim = try runs(log).filter({ $0.end == nil }).randomElement(using: &generator),
               kill(victim.pid, SIGKILL) == 0 {
                // An experiment's process crashes (a plugin's segfault, say): that experiment fails, nothing else.
                killedExperiments.insert(victim.id)
                Thread.sleep(forTimeInterval: Double.random(in: 0...0.2, using: &generator))
            }
            kill(worker.pid, SIGKILL) // the daemon dies at whatever step it is in
            _ = try? worker.wait(timeout: 10)
        }
        // Restart for good and let it finish the queue.
        let outcome = try ChildProcess.run(command + ["--drain", "--", script.path], environment: environment, timeout: 120)
        XCTAssertEqual(outcome.status, 0, "[\(backend)] the last worker failed: \(outcome.stderr.suffix(2000))")

        let finished = try store.experiments(state: nil)
        XCTAssertEqual(finished.count, boardOf.count, "[\(backend)] experiments lost")
        let allRuns = try runs(log)
        for experiment in finished {
            switch experiment.state {
            case .succeeded:
                // The result is that of a run that really ended (not of one killed halfway).
                let ended = allRuns.filter { $0.id == experiment.id && $0.end != nil }.map { "result-\(experiment.id)-\($0.pid)" }
                XCTAssertTrue(ended.contains(experiment.resultID ?? ""), "[\(backend)] \(experiment.name): result \(experiment.resultID ?? "none") is not a finished run's")
            case .failed:
                XCTAssertTrue(killedExperiments.contains(experiment.id), "[\(backend)] \(experiment.name) failed though its process was never killed: \(experiment.note ?? "")")
                XCTAssertTrue(experiment.note?.contains("signal 9") == true, "[\(backend)] \(experiment.note ?? "")")
            default:
                XCTFail("[\(backend)] \(experiment.name) is still \(experiment.state.rawValue) after recovery")
            }
        }
        XCTAssertEqual(try store.usage(user: nil).count, boardOf.count, "[\(backend)] usage counted once per experiment")
        // One experiment at a time per board, orphans of killed workers included: no run starts
        // while another run on its board is still seen alive.
        for board in boards {
            let onBoard = allRuns.filter { $0.board == board }.sorted { $0.start < $1.start }
            for (earlier, later) in zip(onBoard, onBoard.dropFirst()) {
                XCTAssertLessThanOrEqual(earlier.lastSeen, later.start,
                                         "[\(backend)] on \(board), \(later.id) started while \(earlier.id) (pid \(earlier.pid)) still ran")
            }
        }
        for run in allRuns { XCTAssertEqual(run.board, boardOf[run.id], "[\(backend)] ran on the wrong board") }
        print("[\(backend)] \(allRuns.count) runs for \(boardOf.count) experiments, \(killedExperiments.count) experiment processes killed, \(rounds) worker kills")
    }

    struct Run {
        var id: String
        var board: String
        var pid: pid_t
        var start: Int64
        var lastSeen: Int64
        var end: Int64?
    }

    /// The runs the experiment processes logged, one per process.
    func runs(_ log: URL) throws -> [Run] {
        guard let text = try? String(contentsOf: log, encoding: .utf8) else { return [] }
        var byPID = [pid_t: Run]()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 5, let pid = pid_t(fields[3]), let time = Int64(fields[4]) else { continue }
            var run = byPID[pid] ?? Run(id: fields[1], board: fields[2], pid: pid, start: time, lastSeen: time, end: nil)
            run.lastSeen = max(run.lastSeen, time)
            if fields[0] == "end" { run.end = time }
            byPID[pid] = run
        }
        return Array(byPID.values)
    }
}
