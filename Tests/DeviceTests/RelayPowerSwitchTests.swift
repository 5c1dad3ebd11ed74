import MLBenchCore
import MLBenchDeviceKit
import XCTest

/// The relay logic above a bank of relays: outlet names, read-back checks, cycling.
final class RelayPowerSwitchTests: XCTestCase {
    /// Relays in memory; `stuck` relays ignore commands, as a welded contact does.
    final class Bank: RelayBank {
        var states: [Bool]
        var stuck: Set<Int> = []
        var log: [String] = []
        let label = "test bank"
        init(_ count: Int) { states = Array(repeating: false, count: count) }
        var relayCount: Int { states.count }
        func setRelay(_ index: Int, on: Bool) throws {
            log.append("\(index)=\(on)")
            if !stuck.contains(index) { states[index] = on }
        }
        func relayState(_ index: Int) throws -> Bool { states[index] }
    }

    func testOutletsAreNumberedFromOneOrNamed() throws {
        let bank = Bank(4)
        let power = try RelayPowerSwitch(bank: bank, names: ["2": "jetson"])
        XCTAssertEqual(try power.describe().outlets, ["1", "jetson", "3", "4"])
        try power.set(OutletCommand(outlet: "jetson", on: true))
        XCTAssertEqual(bank.states, [false, true, false, false])
        XCTAssertTrue(try power.state(OutletQuery(outlet: "jetson")).on)
        XCTAssertFalse(try power.state(OutletQuery(outlet: "1")).on)
    }

    func testUnknownOutletsAndBadNamesAreClearErrors() throws {
        let power = try RelayPowerSwitch(bank: Bank(2))
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "5", on: true))) {
            XCTAssertEqual("\($0)", "invalid request: test bank has no outlet '5' (it has: 1, 2)")
        }
        XCTAssertThrowsError(try RelayPowerSwitch(bank: Bank(2), names: ["3": "x"])) {
            XCTAssertTrue("\($0)".contains("'3' is not a relay of test bank (it has 1…2)"), "\($0)")
        }
        XCTAssertThrowsError(try RelayPowerSwitch(bank: Bank(2), names: ["2": "1"])) {
            XCTAssertTrue("\($0)".contains("outlet names must be unique"), "\($0)")
        }
    }

    func testARelayThatDoesNotFollowIsAnError() throws {
        let bank = Bank(2)
        bank.stuck = [1]
        let power = try RelayPowerSwitch(bank: bank)
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "2", on: true))) {
            XCTAssertEqual("\($0)", "device error: test bank outlet '2': switched on but reads back off")
        }
    }

    func testCycleTurnsOffWaitsAndTurnsOn() throws {
        let bank = Bank(1)
        bank.states = [true]
        let power = try RelayPowerSwitch(bank: bank)
        let start = Date()
        try power.cycle("1", offTime: 0.2)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.2)
        XCTAssertEqual(bank.log, ["0=false", "0=true"])
        XCTAssertEqual(bank.states, [true])
    }
}

/// Relays made of independent lines (GPIO lines on a relay HAT): each outlet
/// drives its own line, and the state is what the line drives.
final class LineRelayBankTests: XCTestCase {
    final class Line: RelayLine {
        let label: String
        var level = false
        var failing = false
        init(_ label: String) { self.label = label }
        func drive(_ on: Bool) throws {
            if failing { throw GPIOLikeError(line: label) }
            level = on
        }
        func driven() throws -> Bool { level }
    }

    struct GPIOLikeError: Error, CustomStringConvertible {
        var line: String
        var description: String { "GPIO chip 'gpiochip0' \(line): gpiod_line_set_value failed: Input/output error (errno 5)" }
    }

    func testEachOutletDrivesItsOwnLine() throws {
        let lines = [Line("line 17"), Line("line 27"), Line("line 'RELAY3'")]
        let power = try RelayPowerSwitch(bank: LineRelayBank(label: "GPIO relays on chip 'gpiochip0'", lines: lines), names: ["3": "zcu104"])
        XCTAssertEqual(try power.describe().outlets, ["1", "2", "zcu104"])
        try power.set(OutletCommand(outlet: "zcu104", on: true))
        XCTAssertEqual(lines.map(\.level), [false, false, true])
        try power.cycle("1", offTime: 0)
        XCTAssertEqual(lines.map(\.level), [true, false, true])
        lines[1].failing = true
        XCTAssertThrowsError(try power.set(OutletCommand(outlet: "2", on: true))) {
            XCTAssertEqual("\($0)", "device error: GPIO chip 'gpiochip0' line 27: gpiod_line_set_value failed: Input/output error (errno 5)")
        }
    }
}
