import Foundation
import HostSensors
import XCTest

/// The sysfs and procfs formats, from trees written in the kernel's formats.
final class HostSensorsTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("sysfs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func write(_ path: String, _ text: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    func testThermalZonesInMilliCelsius() throws {
        try write("thermal/thermal_zone0/type", "acpitz\n")
        try write("thermal/thermal_zone0/temp", "27800\n")
        try write("thermal/thermal_zone10/type", "x86_pkg_temp\n")
        try write("thermal/thermal_zone10/temp", "45000\n")
        try write("thermal/thermal_zone2/type", "iwlwifi_1\n")
        try write("thermal/cooling_device0/type", "Processor\n")
        let zones = ThermalZones.discover(root: root.appendingPathComponent("thermal").path)
        XCTAssertEqual(zones.map(\.name), ["thermal_zone0 acpitz", "thermal_zone10 x86_pkg_temp"], "zones without temp are left out, in natural order")
        XCTAssertEqual(zones[0].read() ?? 0, 27.8, accuracy: 1e-9)
        XCTAssertEqual(zones[1].unit, "°C")
    }

    func testHwmonChannelsWithLabelsAndUnits() throws {
        // An INA226 as the ina2xx driver publishes it, and a CPU sensor with labels.
        try write("hwmon/hwmon0/name", "ina226_u76\n")
        try write("hwmon/hwmon0/in1_input", "12008\n")
        try write("hwmon/hwmon0/curr1_input", "1520\n")
        try write("hwmon/hwmon0/power1_input", "18250000\n")
        try write("hwmon/hwmon0/update_interval", "35\n")
        try write("hwmon/hwmon1/name", "coretemp\n")
        try write("hwmon/hwmon1/temp1_input", "51000\n")
        try write("hwmon/hwmon1/temp1_label", "Package id 0\n")
        try write("hwmon/hwmon1/temp1_max", "100000\n")
        let sensors = Hwmon.discover(root: root.appendingPathComponent("hwmon").path)
        XCTAssertEqual(sensors.map(\.name), ["hwmon0 ina226_u76 curr1", "hwmon0 ina226_u76 in1", "hwmon0 ina226_u76 power1",
                                             "hwmon1 coretemp Package id 0"])
        XCTAssertEqual(sensors.map(\.unit), ["A", "V", "W", "°C"])
        for (sensor, expected) in zip(sensors, [1.52, 12.008, 18.25, 51.0]) {
            XCTAssertEqual(sensor.read() ?? .nan, expected, accuracy: 1e-9, "\(sensor.name) scaled to SI")
        }
    }

    func testRAPLDomainsAndTheirWrappingCounter() throws {
        try write("powercap/intel-rapl:0/name", "package-0\n")
        try write("powercap/intel-rapl:0/energy_uj", "262142000000\n")
        try write("powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n")
        try write("powercap/intel-rapl:0:0/name", "core\n")
        try write("powercap/intel-rapl:0:0/energy_uj", "1000\n")
        try write("powercap/intel-rapl-mmio:0/name", "package-0\n")
        let domains = RAPLDomain.discover(root: root.appendingPathComponent("powercap").path)
        XCTAssertEqual(domains.map(\.name), ["intel-rapl:0 package-0", "intel-rapl:0:0 core"])
        XCTAssertEqual(try domains[0].read(), 262142000000)
        var energy = EnergyAccumulator(rangeMicrojoules: domains[0].rangeMicrojoules)
        energy.add(262142000000)
        energy.add(262143000000)   // +1 J
        energy.add(671150)         // wrapped: +0.32885 J to the top, +0.67115 J after
        XCTAssertEqual(energy.joules, 2.0, accuracy: 1e-9)
    }

    func testPeakRSSOfAProcessFromItsStatus() throws {
        try write("proc/42/status", "Name:\trunner\nVmPeak:\t  300000 kB\nVmHWM:\t  190200 kB\nVmRSS:\t  150000 kB\n")
        let memory = try ProcessMemory.read(pid: 42, proc: root.appendingPathComponent("proc").path)
        XCTAssertEqual(memory.peak, 190200 * 1024)
        XCTAssertEqual(memory.current, 150000 * 1024)
        XCTAssertThrowsError(try ProcessMemory.read(pid: 43, proc: root.appendingPathComponent("proc").path)) {
            XCTAssertTrue("\($0)".hasSuffix("/proc/43/status: cannot be read (has process 43 ended?)"), "\($0)")
        }
    }
}
