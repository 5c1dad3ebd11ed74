import Foundation
import MLBench
import MLBenchCore
import XCTest

/// An experiment on the Jetson board plugin through the whole pipeline (`mlbench
/// run`), over a real SSH connection to a stand-in board: this machine behind a
/// loopback sshd, whose sysfs and tools (nvpmodel, jetson_clocks, tegrastats) are
/// the recorded AGX Orin of Tests/Fixtures/jetson-agx-orin.
final class JetsonEndToEndTests: XCTestCase {
    var home: URL!
    var boardRoot: URL!
    var sshd: LoopbackSSHD!

    override func setUpWithError() throws {
        home = try MLBenchBinary.temporaryHome()
        // A private copy: conditions write into the recorded sysfs and tool state.
        boardRoot = home.appendingPathComponent("board")
        try FileManager.default.copyItem(at: MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/jetson-agx-orin"), to: boardRoot)
        sshd = try LoopbackSSHD(in: home, pathPrefix: boardRoot.appendingPathComponent("bin").path)
    }

    override func tearDownWithError() throws {
        sshd?.stop()
        try? FileManager.default.removeItem(at: home)
    }

    func state(_ relative: String) throws -> String {
        try String(contentsOf: boardRoot.appendingPathComponent(relative), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func inventory(port: Int) throws -> String {
        let file = home.appendingPathComponent("lab.yaml")
        try """
            boards:
              orin:
                plugin: jetson
                reset_timeout_s: 5
                settings:
                  name: orin
                  host: 127.0.0.1
                  port: \(port)
                  user: \(sshd.user)
                  identity_file: \(sshd.identityFile)
                  known_hosts_file: \(sshd.knownHostsFile)
                  connect_timeout_s: 5
                  retry_delay_s: 0.1
                  work_root: \(home.appendingPathComponent("on-board").path)
                  files_root: \(boardRoot.path)
              host: {plugin: host}
            toolchains:
              onnxruntime: {plugin: onnxruntime}
            """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func experiment(_ extra: String = "") throws -> String {
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample").path
        let file = home.appendingPathComponent("jetson.yaml")
        try """
            name: onnxruntime-on-orin
            model: \(sample)/model.onnx
            inputs: {image: \(sample)/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: orin
            measurement: {min_iterations: 50, min_time_s: 0.2, max_time_s: 2, max_retries: 1, retry_backoff_s: 0.1}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            \(extra)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func testExperimentOnJetsonRecordsAppliesAndRestoresConditions() throws {
        let path = try experiment(#"conditions: {nvpmodel: "2", jetson_clocks: "true", governor: performance}"#)
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", "--inventory", try inventory(port: sshd.port), path], home: home)
        let result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        XCTAssertEqual(result.status, .succeeded, "\(result.failure?.stage ?? ""): \(result.failure?.reason ?? "")\n\(outcome.stderr.suffix(3000))")
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0)
        XCTAssertGreaterThanOrEqual(result.measurement?.durationsNs.count ?? 0, 50)

        // The descriptor, from the board's files.
        let description = try XCTUnwrap(result.board?.description)
        XCTAssertEqual(description.name, "NVIDIA Jetson AGX Orin Developer Kit")
        XCTAssertEqual(description.memories.first?.name, "ram")
        XCTAssertEqual(description.memories.first?.sizeBytes, 31_268_700 * 1024)
        XCTAssertEqual(description.accelerators, ["gpu", "dla0", "dla1"])
        XCTAssertEqual(description.conditions, ["nvpmodel", "jetson_clocks", "governor"])
        XCTAssertEqual(description.runners?.contains("onnxruntime"), true)

        // Applied, with the state before; observed from sysfs, the rails and tegrastats.
        let conditions = try XCTUnwrap(result.board?.conditions)
        XCTAssertEqual(conditions.applied["nvpmodel"], "2 (MODE_30W)")
        XCTAssertEqual(conditions.applied["jetson_clocks"], "true")
        XCTAssertEqual(conditions.applied["governor"], "performance")
        XCTAssertEqual(conditions.before?["nvpmodel"], "0")
        XCTAssertEqual(conditions.before?["governor"], "schedutil")
        XCTAssertEqual(conditions.observed["nvpmodel"], "2 (MODE_30W)", "observed after applying")
        XCTAssertEqual(conditions.observed["governor"], "performance")
        XCTAssertEqual(conditions.observed["l4t_release"], "35.4.1")
        XCTAssertEqual(conditions.observed["jetpack"], "5")
        XCTAssertEqual(conditions.observed["temperature_tj-therm_c"], "46.781")
        XCTAssertEqual(Double(conditions.observed["rail_VDD_GPU_SOC_mw"] ?? ""), 19936.0 * 139 / 1000)
        XCTAssertNil(conditions.observed["rail_NC_mw"], "unconnected channels are skipped")
        XCTAssertNotNil(conditions.observed["tegrastats_VDD_GPU_SOC_mw"])
        XCTAssertEqual(conditions.observed["tegrastats_ram_used_mb"], "1634")

        // Put back when the experiment ended: on the board's state, not only in the record.
        let restored = try XCTUnwrap(result.board?.restored)
        XCTAssertEqual(restored.applied["nvpmodel"], "0")
        XCTAssertEqual(restored.applied["governor"], "schedutil")
        XCTAssertNotNil(restored.applied["jetson_clocks"])
        XCTAssertEqual(try state("state/nvpmodel"), "0")
        XCTAssertEqual(try state("state/clocks"), "default")
        for cpu in 0..<12 {
            XCTAssertEqual(try state("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_governor"), "schedutil")
        }
        // The user's files left the board.
        let left = (try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("on-board").path)) ?? []
        XCTAssertTrue(left.filter { $0.hasPrefix("run-") }.isEmpty, "deployments left on the board: \(left)")
        XCTAssertTrue(result.log.contains { $0.stage == "reset" && $0.message.contains("ssh") }, "readiness over SSH is logged")
    }

    /// A board whose SSH refuses: bounded retries, then a stored failure that names the board and the step.
    func testRefusedSSHIsAStoredTransientFailureNamingBoardAndStep() throws {
        let port = sshd.port
        sshd.stop()
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", "--inventory", try inventory(port: port), try experiment()], home: home)
        XCTAssertEqual(outcome.status, 1)
        let result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.kind, .transient)
        XCTAssertEqual(result.attempts, 2, "the lab retried the experiment once (max_retries: 1)")
        let reason = result.failure?.reason ?? ""
        XCTAssertTrue(reason.contains("board 'orin'") && reason.contains("connection refused"), reason)
        XCTAssertTrue(["setup", "reset"].contains(result.failure?.stage ?? ""), result.failure?.stage ?? "")
    }
}
