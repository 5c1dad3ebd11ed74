import INA2xxProtocol
import XCTest

/// INA226/INA219 registers and MPSSE I2C bytes, from the datasheet facts in HARDWARE.md.
final class INA2xxProtocolTests: XCTestCase {
    func testCalibrationAndConfiguration() throws {
        let ina226 = try INAConfiguration(model: .ina226, shuntOhms: 0.1, currentLSB: 0.0001, conversionTimeUs: 588, averaging: 4)
        XCTAssertEqual(ina226.calibration, 512, "0.00512 / (0.0001 A · 0.1 Ω)")
        XCTAssertEqual(ina226.configuration, 0x42df, "averaging code 1, both conversion times code 3, continuous shunt and bus")
        XCTAssertEqual(ina226.conversionPeriod, 2 * 588e-6 * 4, accuracy: 1e-12)
        let ina219 = try INAConfiguration(model: .ina219, shuntOhms: 0.1, currentLSB: 0.0001)
        XCTAssertEqual(ina219.calibration, 4096, "0.04096 / (0.0001 A · 0.1 Ω)")
        XCTAssertEqual(ina219.configuration, 0x399f)
        let fromMax = try INAConfiguration(model: .ina226, shuntOhms: 0.01, maxCurrent: 2)
        XCTAssertEqual(fromMax.currentLSB, 2.0 / 32768, accuracy: 1e-15)
        XCTAssertEqual(fromMax.calibration, UInt16(0.00512 / (2.0 / 32768 * 0.01)))
    }

    func testScaling() throws {
        let ina226 = try INAConfiguration(model: .ina226, shuntOhms: 0.1, currentLSB: 0.0001)
        XCTAssertEqual(ina226.shuntVolts(1000), 2.5e-3, accuracy: 1e-12)
        XCTAssertEqual(ina226.shuntVolts(0xfc18), -2.5e-3, accuracy: 1e-12, "signed: -1000")
        XCTAssertEqual(ina226.busVolts(9600), 12.0, accuracy: 1e-12, "1.25 mV per bit")
        XCTAssertEqual(ina226.amperes(250), 0.025, accuracy: 1e-12)
        XCTAssertEqual(ina226.amperes(0xff06), -0.025, accuracy: 1e-12)
        XCTAssertEqual(ina226.watts(120), 0.3, accuracy: 1e-12, "power LSB is 25 · current LSB")
        let ina219 = try INAConfiguration(model: .ina219, shuntOhms: 0.1, currentLSB: 0.0001)
        XCTAssertEqual(ina219.shuntVolts(250), 2.5e-3, accuracy: 1e-12, "10 µV per bit")
        XCTAssertEqual(ina219.busVolts(3000 << 3 | 0b010), 12.0, accuracy: 1e-12, "bits 3–15, 4 mV; the flag bits ignored")
        XCTAssertEqual(ina219.watts(150), 0.3, accuracy: 1e-12, "power LSB is 20 · current LSB")
    }

    func testBadSettingsAreNamed() {
        let cases: [(() throws -> INAConfiguration, String)] = [
            ({ try INAConfiguration(model: .ina226, address: 0x30, shuntOhms: 0.1, currentLSB: 1e-4) }, "setting 'address': 0x30 is not an INA2xx address (0x40…0x4f)"),
            ({ try INAConfiguration(model: .ina226, shuntOhms: 0, currentLSB: 1e-4) }, "setting 'shunt_ohms': must be above 0, got 0.0"),
            ({ try INAConfiguration(model: .ina226, shuntOhms: 0.1, currentLSB: 1e-4, conversionTimeUs: 1000) }, "setting 'conversion_time_us': 1000 is not one of [140, 204, 332, 588, 1100, 2116, 4156, 8244]"),
            ({ try INAConfiguration(model: .ina226, shuntOhms: 0.1, currentLSB: 1e-4, averaging: 3) }, "setting 'averaging': 3 is not one of [1, 4, 16, 64, 128, 256, 512, 1024]"),
            ({ try INAConfiguration(model: .ina226, shuntOhms: 0.1) }, "setting 'current_lsb': give current_lsb or max_current"),
            ({ try INAConfiguration(model: .ina226, shuntOhms: 0.1, currentLSB: 1) }, "setting 'current_lsb': 1.0 A with a 0.1 Ω shunt gives calibration 0.0512, outside 1…32767"),
        ]
        for (make, message) in cases {
            XCTAssertThrowsError(try make()) { XCTAssertEqual("\($0)", message) }
        }
    }

    func testMPSSESetupFor400kHz() {
        XCTAssertEqual(MPSSEI2C.setup(clockHz: 400_000),
                       [0x8a, 0x97, 0x8c, 0x86, 49, 0x00, 0x85, 0x9e, 0x07, 0x00, 0x80, 0x03, 0x03])
    }

    func testRegisterWriteIsOneQueuedTransaction() {
        let (command, length) = MPSSEI2C.writeRegister(address: 0x40, register: 0x05, value: 0x0200)
        let start: [UInt8] = [0x80, 0x03, 0x03, 0x80, 0x01, 0x03, 0x80, 0x00, 0x03]
        func byte(_ value: UInt8) -> [UInt8] { [0x11, 0x00, 0x00, value, 0x80, 0x00, 0x01, 0x22, 0x00, 0x80, 0x00, 0x03] }
        let stop: [UInt8] = [0x80, 0x00, 0x03, 0x80, 0x01, 0x03, 0x80, 0x03, 0x03]
        XCTAssertEqual(command, start + byte(0x80) + byte(0x05) + byte(0x02) + byte(0x00) + stop + [0x87])
        XCTAssertEqual(length, 4, "one ACK bit per byte")
    }

    func testRegisterReadResponse() throws {
        let (command, length) = MPSSEI2C.readRegister(address: 0x41, register: 0xfe)
        XCTAssertEqual(length, 5)
        XCTAssertEqual(command.filter { $0 == 0x20 }.count, 2, "two bytes clocked in")
        XCTAssertTrue(command.contains(0x83), "address 0x41 with the read bit")
        XCTAssertEqual(command.last, 0x87, "send immediate")
        XCTAssertEqual(try MPSSEI2C.registerValue([0x00, 0x00, 0x00, 0x54, 0x49]), 0x5449)
        XCTAssertThrowsError(try MPSSEI2C.registerValue([0x01, 0x01, 0x01, 0xff, 0xff])) {
            XCTAssertEqual($0 as? MPSSEI2C.Failure, .noAcknowledge(index: 0))
            XCTAssertEqual("\($0)", "no device answered at this address (no ACK)")
        }
        XCTAssertThrowsError(try MPSSEI2C.registerValue([0x00, 0x00])) { XCTAssertEqual($0 as? MPSSEI2C.Failure, .shortResponse(2)) }
    }
}
