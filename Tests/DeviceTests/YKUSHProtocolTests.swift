import XCTest
import YKUSHProtocol

/// YKUSH reports from the facts in HARDWARE.md (status byte layout from Yepkit's ykushcmd).
final class YKUSHProtocolTests: XCTestCase {
    func testCommandReports() {
        XCTAssertEqual(Array(YKUSHProtocol.switchReport(port: 1, on: true).prefix(2)), [0x11, 0x00])
        XCTAssertEqual(YKUSHProtocol.switchReport(port: 3, on: false)[0], 0x03)
        XCTAssertEqual(YKUSHProtocol.switchAllReport(on: true)[0], 0x1a)
        XCTAssertEqual(YKUSHProtocol.switchAllReport(on: false)[0], 0x0a)
        XCTAssertEqual(YKUSHProtocol.statusReport(port: 2)[0], 0x22)
        XCTAssertEqual(YKUSHProtocol.statusReport(port: 2).count, 64)
        XCTAssertEqual(YKUSHModel(productID: 0xf11b), .ykush3)
        XCTAssertEqual(YKUSHModel.ykushXS.portCount, 1)
    }

    func testReplies() throws {
        XCTAssertNoThrow(try YKUSHProtocol.checkSwitchReply([0x01] + Array(repeating: 0, count: 63), command: 0x11))
        XCTAssertThrowsError(try YKUSHProtocol.checkSwitchReply([0xff], command: 0x11)) {
            XCTAssertEqual("\($0)", "the hub refused command 0x11 (reply status 0xff, 0x1 means done)")
        }
        XCTAssertTrue(try YKUSHProtocol.decodeStatusReply([0x01, 0x12], port: 2))
        XCTAssertFalse(try YKUSHProtocol.decodeStatusReply([0x01, 0x02], port: 2))
        XCTAssertThrowsError(try YKUSHProtocol.decodeStatusReply([0x01, 0x13], port: 2)) {
            XCTAssertEqual($0 as? YKUSHError, .wrongPort(expected: 2, found: 3))
        }
        XCTAssertThrowsError(try YKUSHProtocol.decodeStatusReply([0x01], port: 2)) { XCTAssertEqual($0 as? YKUSHError, .shortReply(1)) }
    }
}
