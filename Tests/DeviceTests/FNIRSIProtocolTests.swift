import FNIRSIProtocol
import XCTest

/// The FNIRSI protocol from the facts in HARDWARE.md, with bytes alone.
final class FNIRSIProtocolTests: XCTestCase {
    /// A data report written byte by byte from the documented layout (the CRC
    /// computed independently): 5.12345 V 1.5 A D+ 0.600 V D− 0.601 V 25.3 °C;
    /// 5 V 0 A; 20 V 3.25 A D+ 3.3 V 100 °C; the smallest step of each field.
    static let report: [UInt8] = [
        0xaa, 0x04, 0x59, 0xd1, 0x07, 0x00, 0xf0, 0x49, 0x02, 0x00, 0x58, 0x02, 0x59, 0x02, 0x5a, 0xfd,
        0x00, 0x20, 0xa1, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5a, 0x00, 0x00,
        0x80, 0x84, 0x1e, 0x00, 0x88, 0xf5, 0x04, 0x00, 0xe4, 0x0c, 0x00, 0x00, 0x5a, 0xe8, 0x03, 0x01,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x5a, 0x01, 0x00, 0x00, 0x0c,
    ]

    func testCommandTrailersAreTheDocumentedCRCs() {
        XCTAssertEqual(FNIRSIProtocol.command(0x81).last, 0x8e)
        XCTAssertEqual(FNIRSIProtocol.command(0x82).last, 0x96)
        XCTAssertEqual(FNIRSIProtocol.command(0x83).last, 0x9e)
        let packet = FNIRSIProtocol.command(0x81)
        XCTAssertEqual(packet.count, 64)
        XCTAssertEqual(Array(packet[0...1]), [0xaa, 0x81])
        XCTAssertTrue(packet[2...62].allSatisfy { $0 == 0 })
    }

    func testStartSequenceDependsOnTheModel() {
        XCTAssertEqual(FNIRSIModel.fnb58.startSequence.map { $0[1] }, [0x81, 0x82, 0x82])
        XCTAssertEqual(FNIRSIModel.fnb48s.startSequence.map { $0[1] }, [0x81, 0x82, 0x82])
        XCTAssertEqual(FNIRSIModel.fnb48.startSequence.map { $0[1] }, [0x81, 0x82, 0x83])
        XCTAssertEqual(FNIRSIModel.c1.startSequence.map { $0[1] }, [0x81, 0x82, 0x83])
        XCTAssertEqual(FNIRSIModel.fnb58.keepAliveInterval, 1.0)
        XCTAssertLessThan(FNIRSIModel.fnb48.keepAliveInterval, 0.04, "older models need a keep-alive at least once per report")
        XCTAssertEqual(FNIRSIProtocol.keepAlive[1], 0x83)
    }

    func testModelsByUSBID() {
        XCTAssertEqual(FNIRSIModel(vendorID: 0x2e3c, productID: 0x5558), .fnb58)
        XCTAssertEqual(FNIRSIModel(vendorID: 0x2e3c, productID: 0x0049), .fnb48s)
        XCTAssertEqual(FNIRSIModel(vendorID: 0x0483, productID: 0x003a), .fnb48)
        XCTAssertEqual(FNIRSIModel(vendorID: 0x0483, productID: 0x003b), .c1)
        XCTAssertNil(FNIRSIModel(vendorID: 0x0483, productID: 0x5740))
    }

    func testDecodesTheFourSamplesWithTheirScaling() throws {
        guard case .data(let readings) = try FNIRSIProtocol.decode(Self.report) else { return XCTFail("not a data report") }
        XCTAssertEqual(readings.count, 4)
        XCTAssertEqual(readings[0].volts, 5.12345, accuracy: 1e-9)
        XCTAssertEqual(readings[0].amperes, 1.5, accuracy: 1e-9)
        XCTAssertEqual(readings[0].watts, 5.12345 * 1.5, accuracy: 1e-9)
        XCTAssertEqual(readings[0].dPlusVolts, 0.600, accuracy: 1e-9)
        XCTAssertEqual(readings[0].dMinusVolts, 0.601, accuracy: 1e-9)
        XCTAssertEqual(readings[0].celsius, 25.3, accuracy: 1e-9)
        XCTAssertEqual(readings[1], FNIRSIReading(volts: 5, amperes: 0, dPlusVolts: 0, dMinusVolts: 0, celsius: 0))
        XCTAssertEqual(readings[2].volts, 20, accuracy: 1e-9)
        XCTAssertEqual(readings[2].amperes, 3.25, accuracy: 1e-9)
        XCTAssertEqual(readings[2].celsius, 100, accuracy: 1e-9)
        XCTAssertEqual(readings[3].volts, 1e-5, accuracy: 1e-12)
        XCTAssertEqual(readings[3].amperes, 1e-5, accuracy: 1e-12)
        XCTAssertEqual(readings[3].dPlusVolts, 1e-3, accuracy: 1e-12)
        XCTAssertEqual(readings[3].celsius, 0.1, accuracy: 1e-12)
    }

    func testAReportFailingItsCRCIsRejected() {
        var corrupted = Self.report
        corrupted[10] ^= 0x01
        XCTAssertThrowsError(try FNIRSIProtocol.decode(corrupted)) {
            XCTAssertEqual($0 as? FNIRSIReportError, .crcMismatch(expected: FNIRSIProtocol.crc8(corrupted[1...62]), found: 0x0c))
        }
        var badStart = Self.report
        badStart[0] = 0x55
        XCTAssertThrowsError(try FNIRSIProtocol.decode(badStart)) { XCTAssertEqual($0 as? FNIRSIReportError, .badStart(0x55)) }
        XCTAssertThrowsError(try FNIRSIProtocol.decode(Array(Self.report.prefix(63)))) {
            XCTAssertEqual($0 as? FNIRSIReportError, .wrongLength(63))
        }
    }

    func testOtherReportTypesAreNotSamples() throws {
        var other = FNIRSIProtocol.command(0x03)
        other[63] = FNIRSIProtocol.crc8(other[1...62])
        XCTAssertEqual(try FNIRSIProtocol.decode(other), .other(type: 0x03))
    }

    func testEncodeIsTheInverseOfDecode() throws {
        guard case .data(let readings) = try FNIRSIProtocol.decode(Self.report) else { return XCTFail("not a data report") }
        let encoded = FNIRSIProtocol.encode(readings)
        let kept = { (bytes: [UInt8]) in bytes.prefix(63).enumerated().filter { ![14, 29, 44, 59].contains($0.offset) }.map(\.element) }
        XCTAssertEqual(kept(encoded), kept(Self.report), "every field round-trips (the unknown bytes are left 0)")
        XCTAssertEqual(try FNIRSIProtocol.decode(encoded), .data(readings), "the encoder writes a valid CRC")
    }

    func testStreamDecoderTimestampsSamples10msApartAndCountsRejects() {
        var decoder = FNIRSIStreamDecoder()
        var emitted: [(Int64, UInt32, Double)] = []
        Self.report.withUnsafeBufferPointer { decoder.consume($0, arrivalNs: 1_000_000_000) { emitted.append(($0, $1, $2)) } }
        XCTAssertEqual(emitted.count, 4 * 6)
        let voltage = emitted.filter { $0.1 == FNIRSIChannel.voltage.rawValue }
        XCTAssertEqual(voltage.map(\.0), [970_000_000, 980_000_000, 990_000_000, 1_000_000_000])
        XCTAssertEqual(voltage[0].2, 5.12345, accuracy: 1e-9)
        XCTAssertEqual(emitted.first { $0.1 == FNIRSIChannel.power.rawValue }!.2, 5.12345 * 1.5, accuracy: 1e-9)

        // The next report handed over only 5 ms later: its samples follow the previous ones, 10 ms apart.
        emitted.removeAll()
        Self.report.withUnsafeBufferPointer { decoder.consume($0, arrivalNs: 1_005_000_000) { emitted.append(($0, $1, $2)) } }
        XCTAssertEqual(emitted.filter { $0.1 == FNIRSIChannel.voltage.rawValue }.map(\.0),
                       [1_010_000_000, 1_020_000_000, 1_030_000_000, 1_040_000_000])

                var corrupted = Self.report
        corrupted[63] ^= 0xff
        emitted.removeAll()
        corrupted.withUnsafeBufferPointer { decoder.consume($0, arrivalNs: 2_000_000_000) { emitted.append(($0, $1, $2)) } }
        corrupted.withUnsafeBufferPointer { decoder.consume($0, arrivalNs: 2_040_000_000) { emitted.append(($0, $1, $2)) } }
        XCTAssertEqual(emitted.map(\.1), [FNIRSIChannel.rejectedReports.rawValue, FNIRSIChannel.rejectedReports.rawValue],
                       "a rejected report gives no measurement, only the running count")
        XCTAssertEqual(emitted.map(\.2), [1, 2])
        XCTAssertEqual(decoder.rejectedReports, 2)
        XCTAssertEqual(decoder.dataReports, 2)
    }
}
