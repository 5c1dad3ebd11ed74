import HIDRelayProtocol
import XCTest

/// The dcttech relay reports from the facts in HARDWARE.md.
final class HIDRelayProtocolTests: XCTestCase {
    func testSwitchReports() {
        XCTAssertEqual(HIDRelayProtocol.switchReport(relay: 1, on: true), [0xff, 0x01, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(HIDRelayProtocol.switchReport(relay: 8, on: false), [0xfd, 0x08, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(HIDRelayProtocol.switchAllReport(on: true), [0xfe, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(HIDRelayProtocol.switchAllReport(on: false), [0xfc, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(HIDRelayProtocol.setReportRequestType, 0x21)
        XCTAssertEqual(HIDRelayProtocol.setReport, 0x09)
        XCTAssertEqual(HIDRelayProtocol.getReport, 0x01)
        XCTAssertEqual(HIDRelayProtocol.featureReport, 0x0300)
    }

    func testRelayCountFromTheProductString() {
        XCTAssertEqual(HIDRelayProtocol.relayCount(product: "USBRelay2"), 2)
        XCTAssertEqual(HIDRelayProtocol.relayCount(product: "USBRelay8"), 8)
        XCTAssertNil(HIDRelayProtocol.relayCount(product: "USBRelay9"))
        XCTAssertNil(HIDRelayProtocol.relayCount(product: "USBasp"), "another V-USB gadget on the shared id")
    }

    func testStatusReport() throws {
        // Serial "QAAMZ", relays 1 and 3 on.
        let status = try HIDRelayProtocol.decodeStatus([0x51, 0x41, 0x41, 0x4d, 0x5a, 0x00, 0x00, 0x05])
        XCTAssertEqual(status.serial, "QAAMZ")
        XCTAssertTrue(status.isOn(1))
        XCTAssertFalse(status.isOn(2))
        XCTAssertTrue(status.isOn(3))
        XCTAssertEqual(HIDRelayProtocol.encodeStatus(status), [0x51, 0x41, 0x41, 0x4d, 0x5a, 0x00, 0x00, 0x05])
        XCTAssertThrowsError(try HIDRelayProtocol.decodeStatus([0x51, 0x41])) { XCTAssertEqual($0 as? HIDRelayError, .shortReport(2)) }
        XCTAssertThrowsError(try HIDRelayProtocol.decodeStatus([0x01, 0x41, 0x41, 0x4d, 0x5a, 0, 0, 0]))
    }
}
