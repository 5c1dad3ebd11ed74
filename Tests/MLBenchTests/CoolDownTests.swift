import Foundation
import MLBench
import XCTest

/// The cool-down's waiting rule, on temperature sequences with a simulated clock.
final class CoolDownTests: XCTestCase {
    func testTemperaturesAreReadFromObservedConditions() {
        let observed = ["temperature_cpu-thermal_c": "61.5", "temperature_gpu_c": "58", "temperature_bad_c": "n/a",
                        "governor": "performance", "temperature_reading": "70"]
        XCTAssertEqual(CoolDown.temperatures(observed), ["cpu-thermal": 61.5, "gpu": 58])
        XCTAssertEqual(CoolDown.hottest(observed), 61.5)
        XCTAssertNil(CoolDown.hottest(["kernel": "6.1"]))
    }

    /// A simulated board: each reading happens at the simulated time of the clock.
    final class Board {
        var clock = Date(timeIntervalSince1970: 0)
        let temperature: (Double) -> Double?
        init(_ temperature: @escaping (Double) -> Double?) { self.temperature = temperature }
        func read() -> Double? { temperature(clock.timeIntervalSince1970) }
        func sleep(_ seconds: Double) { clock += seconds }
    }

    func testWaitsUntilBackWithinTheBand() {
        // Newton cooling from 75 °C towards 40 °C with a 30 s time constant.
        let board = Board { 40 + 35 * exp(-$0 / 30) }
        let record = CoolDown.wait(baselineC: 41, bandC: 2, timeoutS: 300, pollS: 5, read: board.read,
                                   sleep: board.sleep, now: { board.clock })
        XCTAssertTrue(record.reached)
        // 40 + 35 e^(-t/30) <= 43 first holds at t = 30 ln(35/3) ≈ 73.7 s: the first poll after is at 75 s.
        XCTAssertEqual(record.waitedS, 75, accuracy: 1e-9)
        XCTAssertEqual(record.trace.count, 16)
        XCTAssertLessThanOrEqual(record.trace.last!.celsius, 43)
        XCTAssertGreaterThan(record.trace[record.trace.count - 2].celsius, 43, "it stopped at the first reading within the band")
    }

    func testAlreadyCoolEndsAtOnce() {
        let board = Board { _ in 40.5 }
        let record = CoolDown.wait(baselineC: 40, bandC: 2, timeoutS: 300, pollS: 5, read: board.read, sleep: board.sleep, now: { board.clock })
        XCTAssertTrue(record.reached)
        XCTAssertEqual(record.waitedS, 0)
        XCTAssertEqual(record.trace.count, 1)
    }

    func testGivesUpAtTheTimeoutAndSaysSo() {
        let board = Board { _ in 70 }
        let record = CoolDown.wait(baselineC: 40, bandC: 2, timeoutS: 12, pollS: 5, read: board.read, sleep: board.sleep, now: { board.clock })
        XCTAssertFalse(record.reached)
        XCTAssertEqual(record.waitedS, 12, accuracy: 1e-9, "the last wait is cut to the timeout")
        XCTAssertEqual(record.trace.map(\.atS), [0, 5, 10, 12])
        XCTAssertTrue(record.note.contains("may start warm"), record.note)
    }

    func testMissingReadingsAreWaitedThrough() {
        let board = Board { $0 < 10 ? nil : 41 }
        let record = CoolDown.wait(baselineC: 40, bandC: 2, timeoutS: 60, pollS: 5, read: board.read, sleep: board.sleep, now: { board.clock })
        XCTAssertTrue(record.reached)
        XCTAssertEqual(record.waitedS, 10, accuracy: 1e-9)
        XCTAssertEqual(record.trace.count, 1, "only real readings are traced")
    }
}
