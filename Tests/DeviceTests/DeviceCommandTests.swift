import Foundation
import MLBenchCore
import XCTest

/// `mlbench devices power` and `mlbench devices sample`, the real binary, with
/// a command outlet (real processes) and the host's RSS probe.
final class DeviceCommandTests: XCTestCase {
    /// The folder of the last inventory written (the pretend PDU keeps its files there).
    var folder: URL!

    func mlbench(_ arguments: [String], inventory: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let mlbench = PluginStaging.products.appendingPathComponent("mlbench")
        let plugins = try PluginStaging.binaryArguments(["command-outlet", "host-probes"], for: self)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("devices-cli-\(UUID().uuidString)")
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("inventory.yaml")
        try inventory.replacingOccurrences(of: "$FOLDER", with: folder.path).write(to: file, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "MLBENCH_PLUGIN_PATH")
        environment["MLBENCH_HOME"] = folder.appendingPathComponent("home").path
        return try ChildProcess.run([mlbench.path] + arguments + ["--inventory", file.path] + plugins,
                                    environment: environment, timeout: 60)
    }

    static let inventory = """
        boards:
          host: {plugin: host}
        toolchains: {}
        power_switches:
          pdu:
            plugin: command-outlet
            settings:
              outlets:
                jetson: {on: "echo on >> $FOLDER/log; echo on > $FOLDER/state", off: "echo off >> $FOLDER/log; echo off > $FOLDER/state", status: "cat $FOLDER/state"}
        probes:
          memory: {plugin: host-probes, kind: rss, settings: {interval_ms: 20}}
        """

    func testPowerCycleTurnsOffWaitsAndTurnsOn() throws {
        let start = Date()
        let result = try mlbench(["devices", "power", "pdu", "jetson", "cycle", "--off-time", "0.5"], inventory: Self.inventory)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.5)
        XCTAssertEqual(result.stdout.split(separator: "\n"), ["outlet jetson of pdu: off for 0.5 s", "outlet jetson of pdu: on"])
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("log"), encoding: .utf8), "off\non\n", "the off command, then the on command")
        let bad = try mlbench(["devices", "power", "pdu", "jetson", "toggle"], inventory: Self.inventory)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("'toggle' is not an action: use on, off, state or cycle"), bad.stderr)
        let missing = try mlbench(["devices", "power", "relays", "1", "on"], inventory: Self.inventory)
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("no power switch named 'relays'"), missing.stderr)
    }

    func testSampleSummarisesEachChannel() throws {
        let result = try mlbench(["devices", "sample", "memory", "--seconds", "0.5"], inventory: Self.inventory)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.hasPrefix("memory: 2 channel(s), native rate 50.0 Hz, ") == true, result.stdout)
        let peak = try XCTUnwrap(lines.first { $0.hasPrefix("peak_rss") }, result.stdout).split(separator: " ", omittingEmptySubsequences: true)
        XCTAssertEqual(peak[1], "B")
        XCTAssertGreaterThanOrEqual(Int(peak[2]) ?? 0, 10, "about 25 readings in 0.5 s at 50 Hz")
        XCTAssertGreaterThan(Double(peak[5]) ?? 0, 1e6, "the process has more than 1 MB resident")
    }
}
