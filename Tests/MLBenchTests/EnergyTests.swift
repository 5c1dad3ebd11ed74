import Foundation
import MLBenchCore
import XCTest
@testable import MLBench

/// Energy per inference from power samples and iteration windows, against integrals
/// worked out by hand.
final class EnergyTests: XCTestCase {
    /// A meter at 100 S/s from t = 0 to 1 s on channel 0 (W) and channel 1 (V), power given by `watts(t)`.
    func record(watts: (Double) -> Double, gap: ProbeRecorder.Gap? = nil) -> ProbeRecorder.Record {
        let times = stride(from: Int64(0), through: 1_000_000_000, by: 10_000_000)
        let samples = times.flatMap { t in
            [ProbeSample(timestampNs: t, channel: 0, value: watts(Double(t) / 1e9)), ProbeSample(timestampNs: t, channel: 1, value: 5)]
        }
        return ProbeRecorder.Record(name: "fnb58", channels: [ProbeChannel(name: "power", unit: "W"), ProbeChannel(name: "vbus", unit: "V")],
                                    rateHz: 100, samples: samples, startedNs: 0, stoppedNs: 1_000_000_000, failure: gap == nil ? nil : "unplugged",
                                    gap: gap)
    }

    func testConstantPowerGivesPowerTimesDuration() throws {
        // 1 ms iterations every 50 ms, from 0.1 s on, at a constant 2 W: 2 mJ each.
        let starts = (0..<10).map { Int64(100_000_000 + $0 * 50_000_000) }
        let durations = [Int64](repeating: 1_000_000, count: 10)
        let records = EnergyPerInference.analyze(record(watts: { _ in 2 }), startsNs: starts, durationsNs: durations)
        XCTAssertEqual(records.count, 1, "only the channel in watts")
        let energy = try XCTUnwrap(records.first)
        XCTAssertEqual(energy.channel, "power")
        XCTAssertEqual(energy.iterations, 10)
        XCTAssertEqual(energy.uncoveredIterations, 0)
        XCTAssertEqual(try XCTUnwrap(energy.medianJ), 0.002, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(energy.meanPowerW), 2, accuracy: 1e-9)
    }

    func testRampIsIntegratedAcrossSamplesAndWithinOne() throws {
        // P(t) = 10·t W. Over [a, b] the energy is 5 (b² − a²) J.
        let samples = record(watts: { 10 * $0 }).samples.filter { $0.channel == 0 }
        // Inside one 10 ms interval: [0.101, 0.104].
        XCTAssertEqual(try XCTUnwrap(EnergyPerInference.integrate(samples, from: 101_000_000, to: 104_000_000)),
                       5 * (0.104 * 0.104 - 0.101 * 0.101), accuracy: 1e-12)
        // Across several samples: [0.205, 0.437].
        XCTAssertEqual(try XCTUnwrap(EnergyPerInference.integrate(samples, from: 205_000_000, to: 437_000_000)),
                       5 * (0.437 * 0.437 - 0.205 * 0.205), accuracy: 1e-9)
        XCTAssertNil(EnergyPerInference.integrate(samples, from: 990_000_000, to: 1_010_000_000), "past the last sample")
    }

    func testIterationsOutsideTheSamplesOrInAGapAreCountedNotGuessed() throws {
        let starts: [Int64] = [200_000_000, 500_000_000, 1_200_000_000]
        let durations: [Int64] = [1_000_000, 1_000_000, 1_000_000]
        let gap = ProbeRecorder.Gap(fromNs: 450_000_000, toNs: 600_000_000)
        let energy = try XCTUnwrap(EnergyPerInference.analyze(record(watts: { _ in 1 }, gap: gap), startsNs: starts, durationsNs: durations).first)
        XCTAssertEqual(energy.iterations, 1)
        XCTAssertEqual(energy.uncoveredIterations, 2)
        XCTAssertEqual(try XCTUnwrap(energy.meanPowerW), 1, accuracy: 1e-9, "the mean power is over the covered iterations only")
    }

    /// A meter that went silent for 200 ms without failing: the iteration inside the
    /// silence is not integrated over a straight line drawn across it.
    func testIterationInASamplingGapIsUncovered() throws {
        var silent = record(watts: { _ in 3 })
        silent.samples.removeAll { $0.timestampNs > 400_000_000 && $0.timestampNs < 600_000_000 }
        silent.sampling = ChannelSampling.analyze(silent)
        XCTAssertEqual(silent.sampling?.first?.gaps, [ProbeRecorder.Gap(fromNs: 400_000_000, toNs: 600_000_000)])
        let energy = try XCTUnwrap(EnergyPerInference.analyze(silent, startsNs: [300_000_000, 500_000_000], durationsNs: [1_000_000, 1_000_000]).first)
        XCTAssertEqual(energy.iterations, 1)
        XCTAssertEqual(energy.uncoveredIterations, 1)
    }

    /// A 100 Hz meter that delivered one sample every 100 ms: every interval is a gap,
    /// more than the record lists; an iteration in one past the listed ones is still uncovered.
    func testGapsBeyondTheListedOnesAreUncoveredToo() throws {
        let samples = (0..<150).map { ProbeSample(timestampNs: Int64($0) * 100_000_000, channel: 0, value: 2) }
        var sparse = ProbeRecorder.Record(name: "meter", channels: [ProbeChannel(name: "power", unit: "W")], rateHz: 100, samples: samples,
                                          startedNs: 0, stoppedNs: 14_900_000_000, failure: nil, gap: nil)
        sparse.sampling = ChannelSampling.analyze(sparse)
        XCTAssertEqual(sparse.sampling?.first?.gapCount, 149)
        XCTAssertEqual(sparse.sampling?.first?.gaps.count, ChannelSampling.maximumGapsListed)
        let energy = try XCTUnwrap(EnergyPerInference.analyze(sparse, startsNs: [14_000_000_000 + 50_000_000], durationsNs: [1_000_000]).first)
        XCTAssertEqual(energy.uncoveredIterations, 1)
        XCTAssertEqual(energy.iterations, 0)
    }
}

/// Sampling against the methodology's goals: power every 20 ms, temperature every 100 ms.
final class ProbeSamplingTests: XCTestCase {
    func channel(_ unit: String, every intervalNs: Int64, count: Int, nominalHz: Double, dropping dropped: Range<Int>? = nil) -> ChannelSampling {
        let times = (0..<count).filter { !(dropped?.contains($0) ?? false) }.map { Int64($0) * intervalNs }
        return ChannelSampling.analyze(channel: ProbeChannel(name: "c", unit: unit), timestampsNs: times, nominalHz: nominalHz)
    }

    func testPowerAtOneHundredHertzMeetsTheGoal() {
        let power = channel("W", every: 10_000_000, count: 200, nominalHz: 100)
        XCTAssertEqual(power.verdict, .met)
        XCTAssertEqual(try XCTUnwrap(power.achievedHz), 100, accuracy: 1e-9)
        XCTAssertEqual(power.goalIntervalNs, 20_000_000)
        XCTAssertTrue(power.gaps.isEmpty)
    }

    func testSlowProbeIsLimitedNotMissed() {
        // An INA3221 read over sysfs every 50 ms: the probe cannot do 20 ms.
        let power = channel("W", every: 50_000_000, count: 40, nominalHz: 20)
        XCTAssertEqual(power.verdict, .probeLimited)
        XCTAssertTrue(power.note.contains("20 Hz at most"), power.note)
        // A thermal zone every 100 ms meets the temperature goal.
        XCTAssertEqual(channel("°C", every: 100_000_000, count: 20, nominalHz: 10).verdict, .met)
    }

    func testLostSamplesMissTheGoalAndShowAsGaps() {
        // Nominally 100 Hz, but every other sample lost: 50 ms intervals.
        let thinned = channel("W", every: 50_000_000, count: 40, nominalHz: 100)
        XCTAssertEqual(thinned.verdict, .missed)
        XCTAssertTrue(thinned.note.contains("samples were lost"), thinned.note)
        // A half-second hole in a 100 Hz stream: the median still meets the goal, the hole is a gap.
        let holed = channel("W", every: 10_000_000, count: 300, nominalHz: 100, dropping: 101..<150)
        XCTAssertEqual(holed.verdict, .met)
        XCTAssertEqual(holed.gaps, [ProbeRecorder.Gap(fromNs: 1_000_000_000, toNs: 1_500_000_000)])
        XCTAssertEqual(holed.maxIntervalNs, 500_000_000)
    }

    func testPausesWithinTheGoalAreNoGaps() {
        // A 3.5 kHz meter read in bursts: 1 ms pauses lose nothing a 20 ms power goal needs,
        // while the same pauses in its voltage channel (no goal) are gaps of three periods.
        let times = (0..<400).map { Int64($0) * 280_000 + Int64($0 / 10) * 1_000_000 }
        let power = ChannelSampling.analyze(channel: ProbeChannel(name: "p", unit: "W"), timestampsNs: times, nominalHz: 3571)
        XCTAssertEqual(power.gapCount, 0)
        XCTAssertEqual(power.verdict, .met)
        let volts = ChannelSampling.analyze(channel: ProbeChannel(name: "v", unit: "V"), timestampsNs: times, nominalHz: 3571)
        XCTAssertEqual(volts.gapCount, 39)
    }

    func testUnitsWithoutAGoalAndEmptyChannels() {
        XCTAssertEqual(channel("V", every: 10_000_000, count: 10, nominalHz: 100).verdict, .noGoal)
        XCTAssertEqual(channel("W", every: 10_000_000, count: 1, nominalHz: 100).verdict, .tooFewSamples)
    }
}
