import Foundation
import MLBenchCore
import XCTest

/// The FNIRSI probe and the USB relay plugins, loaded through the plugin ABI,
/// driving emulated devices through the real libusb: umockdev's testbed
/// answers the usbdevfs ioctls (Tests/USBEmulation/Emulators). The scenario
/// program runs under umockdev-wrapper and reports what it saw as JSON.
final class USBEmulationTests: XCTestCase {
    struct Observation: Decodable {
        var values: [String: JSONValue]
        var errors: [String: String]

        func numbers(_ key: String) -> [Double] {
            guard case .array(let items)? = values[key] else { return [] }
            return items.compactMap { if case .number(let value) = $0 { return value } else { return nil } }
        }

        func number(_ key: String) -> Double? { if case .number(let value)? = values[key] { return value } else { return nil } }
        func bool(_ key: String) -> Bool? { if case .bool(let value)? = values[key] { return value } else { return nil } }
    }

    /// Stages the plugin as an installed plugin folder and runs the scenario.
    func run(_ scenario: String, plugin: String) throws -> Observation {
        let program = PluginStaging.products.appendingPathComponent("mlbench-usb-emulation")
        guard FileManager.default.fileExists(atPath: program.path) else {
            XCTFail("\(program.path) is not built (swift build --build-tests builds it)")
            throw XCTSkip("not built")
        }
        guard let wrapper = ["/usr/bin/umockdev-wrapper", "/usr/local/bin/umockdev-wrapper"].first(where: FileManager.default.isExecutableFile) else {
            XCTFail("umockdev-wrapper is missing: install the Debian package umockdev (scripts/setup does)")
            throw XCTSkip("no umockdev")
        }
        let folder = try PluginStaging.stage([plugin], for: self)
        let result = try ChildProcess.run([wrapper, program.path, scenario, folder.path], timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        guard let line = result.stdout.split(separator: "\n").last else {
            XCTFail("no output; stderr: \(result.stderr)")
            throw XCTSkip("no output")
        }
        return try JSONCoding.decoder().decode(Observation.self, from: Data(line.utf8))
    }

    func testFNB58StreamsThroughLibusbAndItsUnplugEndsTheStreamByName() throws {
        let seen = try run("fnirsi", plugin: "fnirsi")
        XCTAssertNil(seen.errors["catalog"])
        XCTAssertNil(seen.errors["stream"], "\(seen.errors)")

        // The start sequence the facts give for the FNB58, then keep-alives.
        let commands = seen.numbers("commands").map { UInt8($0) }
        XCTAssertEqual(Array(commands.prefix(3)), [0x81, 0x82, 0x82])
        XCTAssertGreaterThanOrEqual(commands.dropFirst(3).count, 1, "2.4 s of streaming needs keep-alives: \(commands)")
        XCTAssertTrue(commands.dropFirst(3).allSatisfy { $0 == 0x83 }, "\(commands)")

        // 60 reports, 6 with a broken CRC: 54 × 4 samples per channel, the 6 counted.
        XCTAssertEqual(seen.number("reports_sent"), 60)
        let voltage = seen.numbers("voltage")
        XCTAssertEqual(voltage.count, 54 * 4)
        XCTAssertEqual(voltage.first ?? 0, 5.0, accuracy: 1e-9)
        XCTAssertEqual(voltage[4], 5.004, accuracy: 1e-9)
        XCTAssertFalse(voltage.contains { abs($0 - (5 + 36 * 0.001)) < 1e-9 }, "report 9 (bad CRC) must not give samples")
        XCTAssertEqual(seen.numbers("current").count, 216)
        XCTAssertEqual(seen.numbers("power").first ?? 0, 2.5, accuracy: 1e-9)
        XCTAssertEqual(seen.numbers("temperature").first ?? 0, 31.5, accuracy: 1e-9)
        XCTAssertEqual(seen.numbers("rejected"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(seen.bool("timestamps_increasing"), true)
        XCTAssertEqual(seen.number("rate_hz"), 100)

        // The meter vanished after its last report: stop says so, naming it.
        let stop = try XCTUnwrap(seen.errors["stop"])
        XCTAssertTrue(stop.contains("FNIRSI FNB58 (2e3c:5558 on bus 1 address 1)"), stop)
        XCTAssertTrue(stop.contains("LIBUSB_ERROR_NO_DEVICE"), stop)
        XCTAssertTrue(stop.contains("no samples after"), stop)
        XCTAssertGreaterThanOrEqual(seen.number("gap_s") ?? 0, 0.4, "the recording keeps the gap from the last sample to its end")

        // Two meters: the serial setting picks one, and a missing one is named.
        XCTAssertEqual(seen.errors["without_serial"],
                       "plugin 'fnirsi' (fnirsi) create: invalid configuration: FNIRSI meter: 2 devices are connected; set 'serial' to choose one of: 2e3c:5558 serial 'OTHER' on bus 2 address 1; 2e3c:5558 serial 'EMU58' on bus 1 address 1")
        XCTAssertEqual(seen.errors["wrong_serial"],
                       "plugin 'fnirsi' (fnirsi) create: device error: FNIRSI meter with serial 'NOPE' not found; the connected ones have serials 'OTHER', 'EMU58'")
    }

    func testUSBRelaySwitchesAndReadsBackThroughLibusb() throws {
        let seen = try run("usbrelay", plugin: "usbrelay")
        XCTAssertNil(seen.errors["catalog"])
        XCTAssertNil(seen.errors["relay"], "\(seen.errors)")
        XCTAssertEqual(seen.values["outlets"], .array([.string("1"), .string("jetson")]))
        XCTAssertEqual(seen.number("mask_after_jetson_on"), 0b10, "relay 2 is the only one on")
        XCTAssertEqual(seen.bool("jetson_state_on"), true)
        XCTAssertEqual(seen.number("mask_after_jetson_off"), 0b01, "relay 1 on, relay 2 off again")
        XCTAssertEqual(seen.bool("jetson_state_off"), false)
        XCTAssertEqual(seen.errors["stuck"],
                       "plugin 'usbrelay' (usbrelay) set: device error: USBRelay2 serial 'QAAMZ' outlet '1': switched off but reads back on")
        XCTAssertEqual(seen.errors["no_such_outlet"],
                       "plugin 'usbrelay' (usbrelay) set: invalid request: USBRelay2 serial 'QAAMZ' has no outlet '3' (it has: 1, jetson)")
        XCTAssertEqual(seen.errors["wrong_serial"],
                       "plugin 'usbrelay' (usbrelay) create: device error: USB HID relay board with serial 'ZZZZZ' not found; the connected ones have serials 'QAAMZ'")
    }

    func testFTDIBitBangRelayThroughLibftdi() throws {
        let seen = try run("ftdi-relay", plugin: "ftdi-relay")
        XCTAssertNil(seen.errors["catalog"])
        XCTAssertNil(seen.errors["relay"], "\(seen.errors)")
        XCTAssertEqual(seen.number("bitmode"), 0x01, "asynchronous bit-bang mode")
        XCTAssertEqual(seen.number("latch_after_open"), 0x80, "opening the switch leaves the relays as they were")
        XCTAssertEqual(seen.values["outlets"], .array([.string("1"), .string("2"), .string("zcu104"), .string("4")]))
        XCTAssertEqual(seen.number("latch_after_on"), 0x84, "relay 3 is data bit 2; bit 7 kept")
        XCTAssertEqual(seen.bool("zcu104_on"), true)
        XCTAssertEqual(seen.number("latch_after_off"), 0x81)
        XCTAssertEqual(seen.bool("zcu104_off"), false)
        XCTAssertEqual(seen.errors["wrong_serial"],
                       "plugin 'ftdi-relay' (ftdi-relay) create: device error: FTDI relay board (FTDI 0403:6001 serial NOPE): ftdi_usb_open_desc failed (-3): device not found; connected with this id: serial 'OTHER001' (FT245R USB FIFO), serial 'A9XK2M1T' (FT245R USB FIFO)")
    }

    func testINA226ThroughMPSSEI2COverLibftdi() throws {
        let seen = try run("ina2xx", plugin: "ina2xx")
        XCTAssertNil(seen.errors["catalog"])
        XCTAssertNil(seen.errors["stream"], "\(seen.errors)")
        // Unplugged mid-stream: at most the reading in flight arrives after, and stop names the device.
        XCTAssertLessThanOrEqual(seen.number("samples_after_unplug") ?? 99, 4)
        let stop = try XCTUnwrap(seen.errors["stop"], "the stream must end with an error")
        XCTAssertTrue(stop.contains("INA226 at 0x41 on FT232H: the stream ended at"), stop)
        XCTAssertTrue(stop.contains("FT232H for INA226 (FTDI 0403:6014): ftdi_"), stop)
        // The chip holds what the probe computed and wrote over I2C.
        XCTAssertEqual(seen.number("calibration"), 512)
        XCTAssertEqual(seen.number("configuration"), 0x42df)
        XCTAssertEqual(seen.number("rate_hz") ?? 0, 1 / (2 * 588e-6 * 4), accuracy: 1e-6)
        // Its registers (shunt 1000, bus 9600, current and power from the calibration) scaled back.
        XCTAssertEqual(seen.numbers("bus_voltage").first ?? 0, 12.0, accuracy: 1e-9)
        XCTAssertEqual(seen.numbers("shunt_voltage").first ?? 0, 0.0025, accuracy: 1e-12)
        XCTAssertEqual(seen.numbers("current").first ?? 0, 0.025, accuracy: 1e-12)
        XCTAssertEqual(seen.numbers("power").first ?? 0, 0.3, accuracy: 1e-12)
        XCTAssertGreaterThan(seen.number("current_count") ?? 0, 10, "read continuously for 0.5 s")
        XCTAssertEqual(seen.errors["wrong_address"],
                       "plugin 'ina2xx' (ina2xx) create: device error: INA226 at 0x40 on FT232H: reading register 0xfe: no device answered at this address (no ACK)")
    }

    func testYKUSHPortsThroughLibusb() throws {
        let seen = try run("ykush", plugin: "ykush")
        XCTAssertNil(seen.errors["catalog"])
        XCTAssertNil(seen.errors["hub"], "\(seen.errors)")
        XCTAssertEqual(seen.values["outlets"], .array([.string("1"), .string("tc375"), .string("3")]))
        XCTAssertEqual(seen.number("ports_after_on"), 0b010, "port 2 up")
        XCTAssertEqual(seen.bool("tc375_on"), true)
        XCTAssertEqual(seen.number("ports_after_off"), 0b100, "port 3 up, port 2 down again")
        XCTAssertEqual(seen.bool("tc375_off"), false)
    }

    func testINA219ThroughMPSSEI2COverLibftdi() throws {
        let seen = try run("ina219", plugin: "ina2xx")
        XCTAssertNil(seen.errors["stream"], "\(seen.errors)")
        XCTAssertEqual(seen.number("calibration"), 4096, "0.04096 / (0.0001 A · 0.1 Ω)")
        XCTAssertEqual(seen.number("configuration"), 0x399f)
        XCTAssertEqual(seen.numbers("bus_voltage").first ?? 0, 12.0, accuracy: 1e-9, "bits 3–15 at 4 mV; the flags ignored")
        XCTAssertEqual(seen.numbers("shunt_voltage").first ?? 0, 0.0025, accuracy: 1e-12)
        XCTAssertEqual(seen.numbers("current").first ?? 0, 0.025, accuracy: 1e-12)
        XCTAssertEqual(seen.numbers("power").first ?? 0, 0.3, accuracy: 1e-12, "power LSB 20 · current LSB")
    }

    func testFNB48StartsWith0x83AndIsKeptAliveAfterEveryReport() throws {
        let seen = try run("fnb48", plugin: "fnirsi")
        XCTAssertNil(seen.errors["stream"], "\(seen.errors)")
        let commands = seen.numbers("commands").map { UInt8($0) }
        XCTAssertEqual(Array(commands.prefix(3)), [0x81, 0x82, 0x83])
        XCTAssertTrue(commands.dropFirst(3).allSatisfy { $0 == 0x83 }, "\(commands)")
        XCTAssertGreaterThanOrEqual(commands.count - 3, 19, "a keep-alive at least once per report (20 reports)")
        XCTAssertEqual(seen.number("voltage_count"), 80)
    }
}
