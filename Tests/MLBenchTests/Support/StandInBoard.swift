import Foundation
import MLBench
import MLBenchCore
import XCTest

/// A Linux board for the tests: this machine behind a private loopback sshd,
/// whose board files are a private copy of a recorded fixture folder (reached
/// through the plugin's `files_root`) and whose board tools are the fixture's
/// `bin/` scripts, first on the session's PATH. The plugin under test runs its
/// real code path over a real SSH connection; only the files and tools are recordings.
final class StandInBoard {
    let home: URL
    let root: URL
    let sshd: LoopbackSSHD

    init(fixture: String) throws {
        home = try MLBenchBinary.temporaryHome()
        // A private copy: conditions write into the recorded sysfs and tool state.
        root = home.appendingPathComponent("board")
        try FileManager.default.copyItem(at: MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/\(fixture)"), to: root)
        sshd = try LoopbackSSHD(in: home, pathPrefix: root.appendingPathComponent("bin").path)
    }

    func remove() {
        sshd.stop()
        try? FileManager.default.removeItem(at: home)
    }

    /// Where the plugin deploys (its `work_root`).
    var workRoot: URL { home.appendingPathComponent("on-board") }

    /// A board file or tool state, trimmed.
    func state(_ relative: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The plugin settings that reach this stand-in board.
    func settings(board: String, port: Int? = nil) -> JSONValue {
        .object([
            "name": .string(board), "host": .string("127.0.0.1"), "port": .number(Double(port ?? sshd.port)),
            "user": .string(sshd.user), "identity_file": .string(sshd.identityFile), "known_hosts_file": .string(sshd.knownHostsFile),
            "connect_timeout_s": .number(5), "retry_delay_s": .number(0.1), "work_root": .string(workRoot.path),
            "files_root": .string(root.path),
        ])
    }

    /// An inventory with this board (as `board`, driven by `plugin`), the host and ONNX
    /// Runtime; probe kinds of the plugin record during the run: `probe` as `<board>-probe`,
    /// each of `probes` as `<board>-<kind>`, with the board's settings and their default rates.
    func inventory(plugin: String, board: String, port: Int? = nil, probe: String? = nil, probes: [String] = []) throws -> String {
        let file = home.appendingPathComponent("lab.yaml")
        // JSON is YAML: the settings go in as they are.
        try """
            boards:
              \(board):
                plugin: \(plugin)
                reset_timeout_s: 5
                settings: \(try JSONCoding.encode(settings(board: board, port: port)))
              host: {plugin: host}
            toolchains:
              onnxruntime: {plugin: onnxruntime}
            """.appending(probe == nil && probes.isEmpty ? "" : "\nprobes:\n").appending(try ((probe.map { [("probe", $0)] } ?? []) + probes.map { ($0, $0) }).map { name, kind in
                "  \(board)-\(name): {plugin: \(plugin), kind: \(kind), board: \(board), settings: \(try JSONCoding.encode(settings(board: board, port: port)))}\n"
            }.joined()).write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// The sample model with ONNX Runtime on `board`, short measurement, one retry.
    func experiment(board: String, _ extra: String = "") throws -> String {
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample").path
        let file = home.appendingPathComponent("\(board).yaml")
        try """
            name: onnxruntime-on-\(board)
            model: \(sample)/model.onnx
            inputs: {image: \(sample)/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: \(board)
            measurement: {min_iterations: 50, min_time_s: 0.2, max_time_s: 2, max_retries: 1, retry_backoff_s: 0.1}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            \(extra)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// `mlbench run --json` and the stored result it printed.
    func run(inventory: String, experiment: String, file: StaticString = #filePath, line: UInt = #line) throws -> (MLBenchBinary.Outcome, ExperimentResult) {
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", "--inventory", inventory, experiment], home: home)
        do {
            return (outcome, try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8)))
        } catch {
            XCTFail("mlbench printed no result (status \(outcome.status)):\n\(outcome.output.suffix(3000))", file: file, line: line)
            throw error
        }
    }

    /// No deployment left in the work root: the user's files left the board.
    func deploymentsLeft() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: workRoot.path)) ?? []).filter { $0.hasPrefix("run-") }
    }
}
