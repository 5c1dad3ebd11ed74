import Foundation
import XCTest
@testable import MLBench

final class StatisticsTests: XCTestCase {
    /// Normal variates from the seeded generator (Box–Muller), so test data is reproducible.
    private func normalSeries(count: Int, mean: Double, std: Double, seed: UInt64) -> [Double] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<count).map { _ in
            let u1 = Swift.max(generator.nextUnit(), .leastNormalMagnitude)
            let u2 = generator.nextUnit()
            return mean + std * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
    }

    func testQuantilesMatchNumpyType7() {
        let x = (1...10).map(Double.init)
        // np.quantile(np.arange(1, 11), [0, .25, .5, .75, .9, .99, 1])
        XCTAssertEqual(Statistics.quantile(sorted: x, 0), 1)
        XCTAssertEqual(Statistics.quantile(sorted: x, 0.25), 3.25, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: x, 0.5), 5.5, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: x, 0.75), 7.75, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: x, 0.9), 9.1, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: x, 0.99), 9.91, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: x, 1), 10)
        // np.quantile([3, 7, 8, 15, 20], [.3, .9]) -> [7.2, 18.0]
        XCTAssertEqual(Statistics.quantile(sorted: [3, 7, 8, 15, 20], 0.3), 7.2, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: [3, 7, 8, 15, 20], 0.9), 18, accuracy: 1e-12)
        XCTAssertEqual(Statistics.quantile(sorted: [42], 0.37), 42)
    }

    func testMeanAndSampleStandardDeviation() {
        let x: [Double] = [2, 4, 4, 4, 5, 5, 7, 9]
        XCTAssertEqual(Statistics.mean(x), 5)
        // np.std(x, ddof=1) = 2.138089935299395
        XCTAssertEqual(Statistics.standardDeviation(x), 2.138089935299395, accuracy: 1e-12)
        XCTAssertEqual(Statistics.standardDeviation([3]), 0)
        // A large common offset must not swallow the spread.
        XCTAssertEqual(Statistics.standardDeviation(x.map { $0 + 1e9 }), 2.138089935299395, accuracy: 1e-6)
    }

    func testSummaryOfOneToTen() {
        let s = Statistics.summarize((1...10).map(Double.init).reversed())
        XCTAssertEqual(s.count, 10)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 10)
        XCTAssertEqual(s.mean, 5.5)
        XCTAssertEqual(s.median, 5.5, accuracy: 1e-12)
        XCTAssertEqual(s.p90, 9.1, accuracy: 1e-12)
        XCTAssertEqual(s.p99, 9.91, accuracy: 1e-12)
        XCTAssertEqual(s.std, 3.0276503540974917, accuracy: 1e-12)  // np.std(range(1, 11), ddof=1)
        XCTAssertEqual(s.outliers, 0)
        XCTAssertEqual(s.medianInterval.level, 0.95)
        XCTAssertTrue(s.medianInterval.contains(s.median))
    }

    func testSingleValueGivesZeroSpreadAndDegenerateInterval() {
        let s = Statistics.summarize([0.0123])
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual(s.std, 0)
        XCTAssertEqual(s.median, 0.0123)
        XCTAssertEqual(s.p99, 0.0123)
        XCTAssertEqual(s.medianInterval, ConfidenceInterval(lower: 0.0123, upper: 0.0123, level: 0.95))
        XCTAssertEqual(s.outliers, 0)
    }

    func testTukeyFencesCountOutliersWithoutRemovingThem() {
        // numpy: Q1 = 3, Q3 = 9, fences at −6 and 18, so −20, 25 and 40 lie outside.
        let x = (1...10).map(Double.init) + [-20, 25, 40]
        let s = Statistics.summarize(x)
        XCTAssertEqual(s.outliers, 3)
        XCTAssertEqual(s.count, 13)  // labelled, not removed
        XCTAssertEqual(s.min, -20)
        XCTAssertEqual(s.max, 40)
        // Q1 = 3.5, Q3 = 8.5: the upper fence is 16, and a value on the fence is inside it.
        XCTAssertEqual(Statistics.tukeyOutliers(sorted: (1...10).map(Double.init) + [16]), 0)
        XCTAssertEqual(Statistics.tukeyOutliers(sorted: (1...10).map(Double.init) + [16.5]), 1)
        XCTAssertEqual(Statistics.tukeyOutliers(sorted: [5, 5, 5, 5]), 0)
    }

    func testMedianIntervalContainsMedianAndNarrowsWithMoreData() {
        let small = normalSeries(count: 50, mean: 10, std: 1, seed: 1)
        let large = normalSeries(count: 2000, mean: 10, std: 1, seed: 2)
        let s = Statistics.summarize(small)
        let l = Statistics.summarize(large)
        XCTAssertTrue(s.medianInterval.contains(s.median))
        XCTAssertTrue(l.medianInterval.contains(l.median))
        XCTAssertLessThan(s.medianInterval.lower, s.medianInterval.upper)
        XCTAssertLessThan(l.medianInterval.width, s.medianInterval.width / 4)
        // The true median of N(10, 1) lies in this 95 % interval from 2000 draws.
        XCTAssertTrue(l.medianInterval.contains(10))
        // A wider level gives a wider interval.
        let wide = Statistics.bootstrapMedianInterval(small, level: 0.99)
        XCTAssertGreaterThanOrEqual(wide.width, s.medianInterval.width)
    }

    func testBootstrapIsDeterministicForASeed() {
        let x = normalSeries(count: 200, mean: 5, std: 2, seed: 7)
        let a = Statistics.bootstrapMedianInterval(x, seed: 99)
        let b = Statistics.bootstrapMedianInterval(x, seed: 99)
        let c = Statistics.bootstrapMedianInterval(x, seed: 100)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(Statistics.summarize(x), Statistics.summarize(x))
        // The generator itself is the published xoshiro256** over SplitMix64: pin its
        // first outputs so that a change to it (and to every stored interval) is noticed.
        var mixer = SplitMix64(seed: 0)
        XCTAssertEqual(mixer.next(), 0xe220_a839_7b1d_cdaf)
        XCTAssertEqual(mixer.next(), 0x6e78_9e6a_a1b9_65f4)
        var generator = Xoshiro256StarStar(seed: 0)
        XCTAssertEqual(generator.next(), 0x99ec_5f36_cb75_f2b4)
        XCTAssertEqual(generator.next(), 0xbf6e_1f78_4956_452a)
    }

    func testBoundedDrawsAreUniform() {
        var generator = Xoshiro256StarStar(seed: 3)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[generator.next(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 500) }
    }

    func testBootstrapOfTenThousandValuesIsFast() throws {
        #if DEBUG
        // About 2 s unoptimised, 0.05 s optimised: only the optimised build says anything.
        throw XCTSkip("timing is only meaningful in an optimised build (swift test -c release)")
        #else
        let x = normalSeries(count: 10_000, mean: 1e-3, std: 1e-4, seed: 11)
        let start = Date()
        let interval = Statistics.bootstrapMedianInterval(x, resamples: 2000)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(interval.contains(Statistics.quantile(sorted: x.sorted(), 0.5)))
        XCTAssertLessThan(elapsed, 1)
        #endif
    }

    func testSummaryEncodesInSnakeCase() throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        let summary = Statistics.summarize([1, 2, 3, 4])
        let json = String(decoding: try encoder.encode(summary), as: UTF8.self)
        XCTAssertTrue(json.contains("\"median_interval\":{\"level\":0.95,"), json)
        XCTAssertTrue(json.contains("\"p99\":"), json)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(Summary.self, from: Data(json.utf8)), summary)
    }
}

extension StatisticsTests {
    func testMedianBoundOfTenValuesIsTheTextbookOrderStatistics() {
        // B ~ Bin(10, 0.5): P(B ≤ 1) = 11/1024 ≤ 0.025 < P(B ≤ 2), so [x(2), x(9)]
        // with coverage 1 − 22/1024.
        let x = (1...10).map { Double($0) * 10 }
        let bound = Statistics.quantileBound(sorted: x, 0.5)
        XCTAssertEqual(bound.lower, 20)
        XCTAssertEqual(bound.upper, 90)
        XCTAssertEqual(bound.coverage, 1 - 22.0 / 1024, accuracy: 1e-12)
        XCTAssertEqual(bound.estimate, 55, accuracy: 1e-12)
    }

    func testTailBoundsNeedEnoughValues() {
        let short = (1...100).map(Double.init)
        let p99 = Statistics.quantileBound(sorted: short, 0.99)
        // With 100 values the 99th percentile has no upper bound at 95 %: P(B = 100) = 0.366.
        XCTAssertNil(p99.upper)
        XCTAssertNotNil(p99.lower)
        XCTAssertLessThanOrEqual(p99.lower!, p99.estimate)
        let long = normalSeries(count: 2000, mean: 100, std: 5, seed: 3).sorted()
        let bound = Statistics.quantileBound(sorted: long, 0.99)
        XCTAssertNotNil(bound.lower)
        XCTAssertNotNil(bound.upper)
        XCTAssertTrue(bound.lower! <= bound.estimate && bound.estimate <= bound.upper!)
        XCTAssertGreaterThanOrEqual(bound.coverage, 0.95)
        // The true 99th percentile of N(100, 5): 100 + 2.3263 × 5.
        XCTAssertTrue(bound.lower! <= 111.63 && 111.63 <= bound.upper!, "\(bound)")
    }

    func testTailBoundsCoverTheTruePercentileAtTheirLevel() {
        // 200 trials of 500 normal values: the p90 interval should miss the true
        // p90 (100 + 1.2816 × 5) in about 5 % of trials, and never in most of them.
        var misses = 0
        for trial in 0..<200 {
            let x = normalSeries(count: 500, mean: 100, std: 5, seed: 1000 + UInt64(trial)).sorted()
            let bound = Statistics.quantileBound(sorted: x, 0.9)
            if !(bound.lower! <= 106.408 && 106.408 <= bound.upper!) { misses += 1 }
        }
        XCTAssertLessThanOrEqual(misses, 20)
    }

    func testOutliersAreLabelledByPositionUnderBothRules() {
        var x = [Double](repeating: 0, count: 40).enumerated().map { 10 + Double($0.offset % 5) * 0.1 }
        x[7] = 50     // far above: both rules
        x[30] = 1     // far below: both rules
        let labels = Statistics.outliers(x)
        XCTAssertEqual(labels.tukey, [7, 30])
        XCTAssertEqual(labels.mad, [7, 30])
        let summary = Statistics.summarize(x)
        XCTAssertEqual(summary.outliers, 2)
        XCTAssertEqual(summary.madOutliers, 2)
        XCTAssertEqual(summary.count, 40, "outliers are labelled, never removed")
        // Over half the values equal: MAD is 0 and labels nothing.
        XCTAssertEqual(Statistics.outliers([1, 1, 1, 1, 5]).mad, [])
    }

    func testMeanIntervalAndPercentilesInTheSummary() {
        let x = normalSeries(count: 1000, mean: 50, std: 2, seed: 11)
        let s = Statistics.summarize(x)
        XCTAssertTrue(s.meanInterval!.contains(s.mean))
        XCTAssertTrue(s.meanInterval!.contains(50), "\(s.meanInterval!)")
        // The bootstrap interval of the mean is about ±1.96 σ/√n wide.
        XCTAssertEqual(s.meanInterval!.width, 2 * 1.96 * 2 / 1000.0.squareRoot(), accuracy: 0.05)
        XCTAssertEqual(s.tailBounds?.map(\.quantile), [0.9, 0.95, 0.99])
        XCTAssertEqual(s.p95, Statistics.quantile(sorted: x.sorted(), 0.95))
        XCTAssertEqual(s.tailBound(0.95)?.estimate, s.p95)
    }

    func testSummariesStoredBeforeTheNewFieldsStillDecode() throws {
        let old = #"{"count":1,"min":1,"max":1,"mean":1,"median":1,"p90":1,"p99":1,"std":0,"#
            + #""median_interval":{"lower":1,"upper":1,"level":0.95},"outliers":0}"#
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let summary = try decoder.decode(Summary.self, from: Data(old.utf8))
        XCTAssertNil(summary.p95)
        XCTAssertNil(summary.tailBounds)
    }
}

final class WarmUpTests: XCTestCase {
    private func noise(count: Int, seed: UInt64, scale: Double) -> [Double] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<count).map { _ in (generator.nextUnit() - 0.5) * 2 * scale }
    }

    func testFindsTheEndOfASlowStart() {
        // 100 slow iterations, settling from 30 ms towards 20 ms, then a flat 10 ms.
        let jitter = noise(count: 500, seed: 5, scale: 0.3)
        let durations = (0..<500).map { (i: Int) -> Double in
            let base: Double = i < 100 ? 20 + 10 * exp(-Double(i) / 30) : 10
            return base + jitter[i]
        }
        let analysis = WarmUp.mser5(durations)
        XCTAssertEqual(analysis.iterationsExamined, 500)
        let index = analysis.steadyStateIndex
        XCTAssertNotNil(index)
        XCTAssertEqual(Double(index ?? -1), 100, accuracy: 10)
        XCTAssertEqual((index ?? 0) % WarmUp.batchSize, 0)
    }

    func testFlatSeriesIsSteadyFromTheStart() {
        let durations = noise(count: 300, seed: 6, scale: 0.5).map { 10 + $0 }
        let index = WarmUp.mser5(durations).steadyStateIndex
        XCTAssertNotNil(index)
        XCTAssertLessThanOrEqual(index ?? .max, 50)
        XCTAssertEqual(WarmUp.mser5([Double](repeating: 4, count: 60)).steadyStateIndex, 0)
    }

    func testDriftingSeriesHasNoSteadyState() {
        let jitter = noise(count: 500, seed: 8, scale: 0.3)
        let durations = (0..<500).map { i in 10 + 0.01 * Double(i) + jitter[i] }
        let analysis = WarmUp.mser5(durations)
        XCTAssertNil(analysis.steadyStateIndex)
        XCTAssertEqual(analysis.iterationsExamined, 500)
        // Even the shortest series that can be decided (10 batches) is rejected when it climbs.
        XCTAssertNil(WarmUp.mser5((0..<50).map { 10 + 0.1 * Double($0) }).steadyStateIndex)
    }

    func testTooShortToDecide() {
        XCTAssertNil(WarmUp.mser5([Double](repeating: 1, count: 49)).steadyStateIndex)
        XCTAssertEqual(WarmUp.mser5([Double](repeating: 1, count: 49)).iterationsExamined, 49)
        XCTAssertEqual(WarmUp.mser5([Double](repeating: 1, count: 50)).steadyStateIndex, 0)
        XCTAssertNil(WarmUp.mser5([]).steadyStateIndex)
    }

    func testNonFiniteTimingsGiveNoDecision() {
        var durations = [Double](repeating: 1, count: 100)
        durations[40] = .nan
        XCTAssertNil(WarmUp.mser5(durations).steadyStateIndex)
    }

    func testMserStatisticPicksTheTruncationByHand() {
        // Batch means 9, 5, then eighteen 1s (with a little spread): dropping the first two
        // batches leaves the smallest squared standard error.
        var z: [Double] = [9, 5]
        z += (0..<18).map { $0 % 2 == 0 ? 1.01 : 0.99 }
        XCTAssertEqual(WarmUp.mserTruncation(z), 2)
    }

    // MARK: Changepoints (WarmUp.analyze)

    private func normal(count: Int, seed: UInt64) -> [Double] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<count).map { _ in
            let u1 = Swift.max(generator.nextUnit(), .leastNormalMagnitude)
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * generator.nextUnit())
        }
    }

    func testStepWarmUpIsLocatedWithinFiveIterations() {
        for (seed, step) in [(1, 12), (2, 37), (3, 64), (4, 93)] {
            let e = normal(count: 400, seed: UInt64(seed))
            let durations = (0..<400).map { i in (i < step ? 15.0 : 10.0) + 0.4 * e[i] }
            let analysis = WarmUp.analyze(durations)
            XCTAssertEqual(analysis.classification, .warmUp, "step at \(step)")
            XCTAssertEqual(Double(analysis.steadyStateIndex ?? -100), Double(step), accuracy: 5, "step at \(step)")
        }
    }

    func testFlatSeriesWastesNothingEvenWithSpikes() {
        let e = normal(count: 300, seed: 21)
        var durations = e.map { 10 + 0.3 * $0 }
        XCTAssertEqual(WarmUp.analyze(durations).steadyStateIndex, 0)
        XCTAssertEqual(WarmUp.analyze(durations).classification, .flat)
        // 2 % large high spikes and a few legitimate low ones.
        for i in stride(from: 13, to: 300, by: 50) { durations[i] = 40 }
        for i in stride(from: 31, to: 300, by: 97) { durations[i] = 4 }
        let analysis = WarmUp.analyze(durations)
        XCTAssertEqual(analysis.steadyStateIndex, 0)
        XCTAssertEqual(analysis.classification, .flat)
        XCTAssertGreaterThanOrEqual(analysis.spikesIgnored ?? 0, 9)
        XCTAssertEqual(WarmUp.analyze([Double](repeating: 7, count: 80)).steadyStateIndex, 0)
    }

    func testSlowdownAndDriftAreClassified() {
        let e = normal(count: 400, seed: 31)
        let slowdown = (0..<400).map { i in (i < 80 ? 8.0 : 10.0) + 0.3 * e[i] }
        let analysis = WarmUp.analyze(slowdown)
        XCTAssertEqual(analysis.classification, .slowdown)
        XCTAssertEqual(Double(analysis.steadyStateIndex ?? -100), 80, accuracy: 5)
        let drift = (0..<400).map { i in 10 + 0.02 * Double(i) + 0.3 * e[i] }
        XCTAssertEqual(WarmUp.analyze(drift).classification, .noSteadyState)
        XCTAssertNil(WarmUp.analyze(drift).steadyStateIndex)
        // A change near the end: whatever came before, the last level is too short to trust.
        let late = (0..<400).map { i in (i < 360 ? 10.0 : 14.0) + 0.3 * e[i] }
        XCTAssertNil(WarmUp.analyze(late).steadyStateIndex)
        XCTAssertEqual(WarmUp.analyze(late).classification, .noSteadyState)
    }

    func testAnalyzeRefusesTooShortOrNonFiniteSeries() {
        XCTAssertNil(WarmUp.analyze([Double](repeating: 1, count: 49)).classification)
        var durations = [Double](repeating: 1, count: 100)
        durations[3] = .infinity
        XCTAssertNil(WarmUp.analyze(durations).steadyStateIndex)
    }
}

final class CanaryTests: XCTestCase {
    /// A quiet canary of about 30 µs, a disturbed stretch 200..<260 where both the canary
    /// and the model are twice as slow, and isolated slow canaries (interrupts) elsewhere.
    func testDisturbedStretchIsFlaggedAndLeftOutOfTheCorrectedSummary() {
        var generator = Xoshiro256StarStar(seed: 77)
        var canary = [Int64](), model = [Int64]()
        for i in 0..<600 {
            let jitter = Int64(generator.next(below: 600))
            let disturbed = (200..<260).contains(i)
            canary.append((disturbed ? 60_000 : 30_000) + jitter)
            model.append((disturbed ? 200_000 : 100_000) + jitter)
        }
        for i in stride(from: 17, to: 600, by: 97) where !(190..<270).contains(i) { canary[i] = 90_000 }
        let report = Canary.analyze(durations: model, canary: canary)
        XCTAssertEqual(report.disturbedPeriods.count, 1, "\(report.disturbedPeriods)")
        let period = report.disturbedPeriods[0]
        XCTAssertEqual(Double(period.start), 200, accuracy: 5)
        XCTAssertEqual(Double(period.end), 260, accuracy: 5)
        XCTAssertEqual(report.baselineNs, 30_300, accuracy: 300)
        let corrected = try! XCTUnwrap(report.correctedSummary)
        XCTAssertEqual(corrected.count, 600 - report.disturbedIterations)
        XCTAssertLessThan(corrected.max, 150_000, "no disturbed iteration is left in the corrected summary")
        XCTAssertTrue(report.note.contains("disturbed"))
    }

    func testQuietCanaryFlagsNothing() {
        var generator = Xoshiro256StarStar(seed: 78)
        let canary = (0..<300).map { _ in 30_000 + Int64(generator.next(below: 2_000)) }
        let model = (0..<300).map { Int64(100_000 + $0 % 7) }
        let report = Canary.analyze(durations: model, canary: canary)
        XCTAssertEqual(report.disturbedIterations, 0)
        XCTAssertEqual(report.correctedSummary?.count, 300)
        XCTAssertTrue(report.note.hasPrefix("no disturbance"))
    }
}

/// The interval across invocations (runner processes).
final class InvocationIntervalTests: XCTestCase {
    func testIntervalSpansTheSpreadBetweenInvocations() {
        var generator = Xoshiro256StarStar(seed: 11)
        // Three processes that settle at 100, 110 and 120 µs, each with a tight spread.
        let groups = [100.0, 110, 120].map { level in (0..<2_000).map { _ in level + generator.nextNormal() * 0.5 } }
        let (estimate, interval) = Statistics.invocationMedianInterval(groups: groups)
        XCTAssertEqual(estimate, 110, accuracy: 0.1, "the median of the three medians")
        // A single pooled bootstrap would give about ±1 around 110; across invocations it must reach out to the others.
        XCTAssertLessThanOrEqual(interval.lower, 100.5)
        XCTAssertGreaterThanOrEqual(interval.upper, 119.5)
        let pooled = Statistics.bootstrapMedianInterval(groups.flatMap { $0 })
        XCTAssertLessThan(pooled.width, interval.width / 5, "pooling hides the between-process variation")
    }

    func testAlikeInvocationsGiveANarrowInterval() {
        var generator = Xoshiro256StarStar(seed: 12)
        let groups = (0..<5).map { _ in (0..<1_000).map { _ in 50 + generator.nextNormal() } }
        let (estimate, interval) = Statistics.invocationMedianInterval(groups: groups)
        XCTAssertEqual(estimate, 50, accuracy: 0.2)
        XCTAssertTrue(interval.contains(50))
        XCTAssertLessThan(interval.width, 0.5)
    }
}
