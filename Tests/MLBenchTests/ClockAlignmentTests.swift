import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// The offset of a runner's clock from the host's, estimated from `clock` exchanges
/// whose one-way delays are known here (and unequal), and the rate and gaps a
/// recording reports.
final class ClockAlignmentTests: XCTestCase {
    /// An exchange sent at host time `sent` that took `out` ns to reach the runner and
    /// `back` ns to return, with the runner's clock `offset` ns ahead of the host's.
    func exchange(sent: Int64, out: Int64, back: Int64, offset: Int64) -> ClockExchange {
        ClockExchange(sentNs: sent, runnerNs: sent + out + offset, receivedNs: sent + out + back)
    }

    func testTheShortestRoundTripGivesTheOffsetWithinHalfOfIt() throws {
        let offset: Int64 = 5_000_123_456  // the board booted 5 s before the host
        let delays: [(Int64, Int64)] = [(3_000_000, 200_000), (300_000, 250_000), (10_000_000, 1_000_000), (500_000, 4_000_000), (0, 900_000)]
        var exchanges = delays.enumerated().map { exchange(sent: 1_000_000_000 + Int64($0.offset) * 50_000_000, out: $0.element.0, back: $0.element.1, offset: offset) }
        // An answer "received" before it was sent is a broken exchange, not a short round trip.
        exchanges.append(ClockExchange(sentNs: 2_000_000_000, runnerNs: 0, receivedNs: 1_999_000_000))
        let estimate = try XCTUnwrap(ClockOffset.estimate(exchanges))
        XCTAssertEqual(estimate.roundTripNs, 550_000, "the (0.30 ms, 0.25 ms) exchange")
        XCTAssertEqual(estimate.uncertaintyNs, 275_000)
        XCTAssertEqual(estimate.exchanges, 6)
        // The asymmetry (0.30 − 0.25 ms) / 2 is the error, within the bound.
        XCTAssertEqual(estimate.offsetNs - offset, 25_000)
        XCTAssertLessThanOrEqual(abs(estimate.offsetNs - offset), estimate.uncertaintyNs)
        XCTAssertEqual(estimate.atHostNs, 1_050_000_000 + 275_000)

        // All of the round trip on one side: the error reaches the bound, never beyond it.
        let lopsided = try XCTUnwrap(ClockOffset.estimate([exchange(sent: 0, out: 0, back: 800_000, offset: -7_000)]))
        XCTAssertEqual(abs(lopsided.offsetNs - -7_000), 400_000)
        XCTAssertLessThanOrEqual(abs(lopsided.offsetNs - -7_000), lopsided.uncertaintyNs)
        XCTAssertNil(ClockOffset.estimate([]))
    }

    func testDriftBetweenTwoEstimatesIsInterpolated() throws {
        // 10 ppm: the runner's clock gains 100 µs over the 10 s between the estimates.
        let before = try XCTUnwrap(ClockOffset.estimate([exchange(sent: 1_000_000_000, out: 100_000, back: 100_000, offset: 2_000_000)]))
        let after = try XCTUnwrap(ClockOffset.estimate([exchange(sent: 11_000_000_000, out: 100_000, back: 100_000, offset: 2_100_000)]))
        let alignment = ClockAlignment(before: before, after: after)
        XCTAssertEqual(try XCTUnwrap(alignment.driftPpm), 10, accuracy: 1e-9)
        XCTAssertEqual(alignment.runnerTime(hostNs: before.atHostNs), before.atHostNs + 2_000_000)
        XCTAssertEqual(alignment.runnerTime(hostNs: 6_000_100_000), 6_000_100_000 + 2_050_000, "halfway: half the drift")
        XCTAssertEqual(ClockAlignment(before: before, after: nil).runnerTime(hostNs: 42), 42 + 2_000_000)
        // Each estimate is good to ± 0.1 ms: over 10 s the drift is good to ± 20 ppm.
        XCTAssertEqual(try XCTUnwrap(alignment.driftBoundPpm), 20, accuracy: 1e-9)
        XCTAssertTrue(alignment.note.contains("drift 10.0 ± 20.0 ppm"), alignment.note)
    }

    func record(rateHz: Double, times: [Int64]) -> ProbeRecorder.Record {
        ProbeRecorder.Record(name: "meter", channels: [ProbeChannel(name: "power", unit: "W"), ProbeChannel(name: "current", unit: "A")],
                             rateHz: rateHz, samples: times.flatMap { [ProbeSample(timestampNs: $0, channel: 0, value: 1), ProbeSample(timestampNs: $0, channel: 1, value: 2)] },
                             startedNs: 0, stoppedNs: times.last ?? 0, failure: nil, gap: nil)
    }

    func testAchievedRateAndGapsAreRecordedAndAMissedRateIsSaid() throws {
        // 50 Hz asked for and met, but for one hole of 200 ms.
        var times = (0..<50).map { Int64($0) * 20_000_000 }
        times += (0..<50).map { 1_180_000_000 + Int64($0) * 20_000_000 }
        let met = try XCTUnwrap(ChannelSampling.analyze(record(rateHz: 50, times: times)).first)
        XCTAssertEqual(met.gapCount, 1)
        XCTAssertEqual(met.gaps, [ProbeRecorder.Gap(fromNs: 980_000_000, toNs: 1_180_000_000)])
        XCTAssertEqual(try XCTUnwrap(met.achievedHz), 99 / 2.16, accuracy: 1e-9, "samples over their span")
        XCTAssertFalse(met.requestedRateMissed, "46 of 50 Hz is within 10 %")

        // 50 Hz asked for, 20 Hz achieved: no gap (50 ms < three periods of 20 ms is false: 50 < 60), but the rate was not met.
        let slow = ChannelSampling.analyze(record(rateHz: 50, times: (0..<21).map { Int64($0) * 50_000_000 }))
        XCTAssertEqual(try XCTUnwrap(slow.first?.achievedHz), 20, accuracy: 1e-9)
        XCTAssertEqual(slow.map(\.gapCount), [0, 0])
        XCTAssertEqual(slow.map(\.requestedRateMissed), [true, true], "judged for every channel")
        XCTAssertTrue(slow[0].note.contains("requested 50 Hz: the requested rate could not be met"), slow[0].note)
        XCTAssertEqual(slow[0].verdict, .missed, "the probe could have met the 20 ms goal")
        XCTAssertTrue(slow[1].isWorthNoting, "a missed requested rate is noted even without a goal")
    }
}
