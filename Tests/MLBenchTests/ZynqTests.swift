import Foundation
import MLBench
import MLBenchCore
import LinuxBoardKit
@testable import ZynqBoard
import XCTest

/// The Zynq UltraScale+ plugin: its formats, and an experiment through the whole
/// pipeline on a stand-in ZCU104 (Tests/Fixtures/zynq-zcu104: PetaLinux files,
/// INA226 hwmon, a PMBus regulator, xdputil's query) behind a loopback sshd.
final class ZynqTests: XCTestCase {
    func testINA2xxRailsFromHwmon() throws {
        let rails = try INA2xxRails.parse([
            "/sys/class/hwmon/hwmon0/name": "ina226_u42\n", "/sys/class/hwmon/hwmon0/in1_input": "12062\n",
            "/sys/class/hwmon/hwmon0/curr1_input": "1015\n", "/sys/class/hwmon/hwmon0/power1_input": "12243750\n",
            "/sys/class/hwmon/hwmon1/name": "irps5401\n", "/sys/class/hwmon/hwmon1/in1_input": "850\n",
            "/sys/class/hwmon/hwmon2/name": "ina260_u14\n", "/sys/class/hwmon/hwmon2/in1_input": "5000\n",
        ])
        XCTAssertEqual(rails, [PowerRail(name: "ina226_u42", millivolts: 12062, milliamps: 1015, milliwatts: 12243.75),
                               PowerRail(name: "ina260_u14", millivolts: 5000, milliamps: nil, milliwatts: nil)],
                       "PMBus regulators are not INA2xx rails; power1_input is µW")
        XCTAssertThrowsError(try INA2xxRails.parse(["/sys/class/hwmon/hwmon0/name": "ina226", "/sys/class/hwmon/hwmon0/in1_input": "busy"])) { error in
            XCTAssertTrue("\(error)".contains("/sys/class/hwmon/hwmon0/in1_input"), "\(error)")
        }
    }

    func testXDPUtilQuery() throws {
        let text = try String(contentsOf: MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/zynq-zcu104/bin/xdputil"), encoding: .utf8)
        let json = String(text[text.range(of: "{")!.lowerBound..<text.range(of: "JSON\n  ;;")!.lowerBound])
        let query = try XDPUtilQuery.parse("WARNING: Logging before InitGoogleLogging()\n" + json)
        XCTAssertEqual(query.cores.count, 2)
        XCTAssertEqual(query.cores[0], DPUCore(name: "DPU Core 0", architecture: "DPUCZDX8G_ISA1_B4096", frequencyMHz: 300, fingerprint: "0x101000016010407"))
        XCTAssertEqual(query.targetVersion, "v1.4.1")
        XCTAssertThrowsError(try XDPUtilQuery.parse("xdputil: cannot open /dev/dpu")) { error in
            XCTAssertEqual("\(error)", "xdputil query: no JSON object in 'xdputil: cannot open /dev/dpu'")
        }
    }

    func testExperimentOnAZCU104RecordsAndRestoresConditions() throws {
        let board = try StandInBoard(fixture: "zynq-zcu104")
        defer { board.remove() }
        let (outcome, result) = try board.run(inventory: try board.inventory(plugin: "zynq", board: "zcu104", probe: "zynq-rails"),
                                              experiment: try board.experiment(board: "zcu104", "conditions: {governor: performance}"))
        XCTAssertEqual(result.status, .succeeded, "\(result.failure?.stage ?? ""): \(result.failure?.reason ?? "")\n\(outcome.stderr.suffix(3000))")
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0)
        let description = try XCTUnwrap(result.board?.description)
        XCTAssertEqual(description.name, "ZynqMP ZCU104 RevC")
        XCTAssertEqual(description.memories, [MemoryRegion(name: "ram", sizeBytes: 2_015_260 * 1024, usedBytes: (2_015_260 - 1_730_944) * 1024)])
        XCTAssertEqual(description.accelerators, ["dpu0 DPUCZDX8G_ISA1_B4096", "dpu1 DPUCZDX8G_ISA1_B4096"])
        XCTAssertEqual(description.conditions, ["governor"])

        let conditions = try XCTUnwrap(result.board?.conditions)
        XCTAssertEqual(conditions.applied, ["governor": "performance"])
        XCTAssertEqual(conditions.before, ["governor": "ondemand"])
        XCTAssertEqual(conditions.observed["governor"], "performance")
        XCTAssertEqual(conditions.observed["os"], "PetaLinux 2022.2_release_S10071807 (honister)")
        XCTAssertEqual(conditions.observed["rail_ina226_u42_mw"], "12243.75")
        XCTAssertEqual(conditions.observed["rail_ina226_u42_mv"], "12062.0")
        XCTAssertNil(conditions.observed["rail_irps5401_mw"])
        XCTAssertEqual(conditions.observed["dpu_cores"], "2")
        XCTAssertEqual(conditions.observed["dpu0_frequency_mhz"], "300")
        XCTAssertEqual(result.board?.restored?.applied, ["governor": "ondemand"])
        for cpu in 0..<4 {
            XCTAssertEqual(try board.state("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_governor"), "ondemand", "put back on the board")
        }
        XCTAssertEqual(board.deploymentsLeft(), [])
        // The INA226 streamed as a probe: power1_input is µW.
        let rails = try XCTUnwrap(result.probes?.first { $0.name == "zcu104-probe" })
        XCTAssertNil(rails.failure, rails.failure ?? "")
        XCTAssertEqual(rails.channels, [ProbeChannel(name: "ina226_u42", unit: "W")])
        XCTAssertGreaterThan(rails.samples.count, 2)
        XCTAssertTrue(rails.samples.allSatisfy { $0.value == 12.24375 }, "\(rails.samples.prefix(3))")
        XCTAssertEqual(rails.clock, "board")
        XCTAssertEqual(rails.rateHz, 50, "20 ms by default")
        XCTAssertNotNil(rails.sampling?.first?.achievedHz)
        let measurement = try XCTUnwrap(result.measurement)
        let window = (measurement.startsNs.min()!, zip(measurement.startsNs, measurement.durationsNs).map { $0 + $1 }.max()!)
        XCTAssertLessThanOrEqual(rails.samples.first!.timestampNs, window.0, "the rails cover the measured iterations")
        XCTAssertGreaterThanOrEqual(rails.samples.last!.timestampNs, window.1)
        let energy = try XCTUnwrap(result.energy?.first { $0.probe == "zcu104-probe" })
        XCTAssertEqual(energy.iterations, measurement.durationsNs.count, "every measured iteration within the samples")
        XCTAssertEqual(try XCTUnwrap(energy.meanPowerW), 12.24375, accuracy: 1e-9)
        let clock = try XCTUnwrap(result.clock)
        XCTAssertLessThanOrEqual(abs(clock.before.offsetNs), clock.before.uncertaintyNs, "one clock on loopback: \(clock)")
    }
}
