import Foundation
import MLBench
import MLBenchCore
import XCTest

/// `mlbench devices scan`, the real binary: what it says on this machine
/// (nothing connected), and what it lists from emulated sysfs records
/// (Tests/USBEmulation/fnb58-and-usbrelay.umockdev: an FNB58 with a serial
/// number and a USBRelay2 without one, descriptors from HARDWARE.md).
final class DeviceScanTests: XCTestCase {
    func scan(under umockdev: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let mlbench = PluginStaging.products.appendingPathComponent("mlbench")
        guard FileManager.default.isExecutableFile(atPath: mlbench.path) else {
            XCTFail("\(mlbench.path) is not built")
            throw XCTSkip("not built")
        }
        var command = [mlbench.path, "devices", "scan"] + (try PluginStaging.binaryArguments(PluginStaging.plugins.map(\.0), for: self))
        if let umockdev {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/umockdev-run") else {
                XCTFail("umockdev-run is missing: install the Debian package umockdev (scripts/setup does)")
                throw XCTSkip("no umockdev")
            }
            command = ["/usr/bin/umockdev-run", "-d", umockdev, "--"] + command
        }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "MLBENCH_PLUGIN_PATH")
        environment["MLBENCH_HOME"] = FileManager.default.temporaryDirectory.appendingPathComponent("scan-\(UUID().uuidString)").path
        return try ChildProcess.run(command, environment: environment, timeout: 60)
    }

    func testOnThisMachineNothingIsFound() throws {
        let result = try scan()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.trimmingCharacters(in: .newlines), "nothing was found: no supported USB device (looked for 0403:6001, 0403:6014, 0483:003a, 0483:003b, 04d8:f0cd, 04d8:f11b, 04d8:f2f7, 16c0:05df, 2e3c:0049, 2e3c:5558) and no GPIO chip (/dev/gpiochip*)")
    }

    func testListsEmulatedDevicesWithInventoryEntriesThatLoad() throws {
        let fixture = PluginStaging.repository.appendingPathComponent("Tests/USBEmulation/fnb58-and-usbrelay.umockdev").path
        let result = try scan(under: fixture)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(3)), [
            "USB devices:",
            "  2e3c:5558  FNIRSI FNB58  serial 0123456789AB  bus 1 address 1  → plugin fnirsi (probe 'fnirsi')",
            "  16c0:05df  USB HID relay board (dcttech)  (no USB serial number)  bus 2 address 1  → plugin usbrelay (power_switch 'usbrelay')",
        ], result.stdout)
        // The entries, pasted into an inventory, pass its schema.
        let marker = try XCTUnwrap(lines.firstIndex(of: "inventory entries (add them to your inventory, rename at will):"), result.stdout)
        let snippet = lines[(marker + 1)...].joined(separator: "\n")
        XCTAssertTrue(snippet.contains("probes:\n  fnirsi-0123456789ab:\n    plugin: fnirsi\n    settings: {serial: 0123456789AB}"), snippet)
        XCTAssertTrue(snippet.contains("power_switches:\n  usbrelay-2-1:\n    plugin: usbrelay\n"), snippet)
        let inventory = FileManager.default.temporaryDirectory.appendingPathComponent("scan-inventory-\(UUID().uuidString).yaml")
        addTeardownBlock { try? FileManager.default.removeItem(at: inventory) }
        try ("boards:\n  host: {plugin: host}\ntoolchains: {}\n" + snippet + "\n").write(to: inventory, atomically: true, encoding: .utf8)
        let loaded = try InventoryFile.load(inventory.path)
        XCTAssertEqual(loaded.inventory.probes?["fnirsi-0123456789ab"]?.plugin, "fnirsi")
        XCTAssertEqual(loaded.inventory.powerSwitches?["usbrelay-2-1"]?.plugin, "usbrelay")
    }
}
