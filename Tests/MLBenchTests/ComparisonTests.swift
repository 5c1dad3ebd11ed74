import Foundation
@testable import MLBench
import XCTest

/// Comparing results: the Mann–Whitney test against scipy's figures, Holm's adjustment,
/// and the side-by-side view.
final class ComparisonTests: XCTestCase {
    func testMannWhitneyMatchesScipy() {
        // scipy.stats.mannwhitneyu(first, second, alternative="two-sided", method="asymptotic", use_continuity=True)
        let slower = [10.9, 11.2, 10.8, 11.0, 10.7, 11.4, 10.8, 11.1, 10.9]
        let faster = [10.1, 10.3, 10.2, 10.8, 10.4, 10.2, 10.5, 10.3]
        let test = Comparison.mannWhitney(slower, faster)
        XCTAssertEqual(test.u, 70)
        XCTAssertEqual(test.p, 0.001206009349624744, accuracy: 1e-12)
        let tied = Comparison.mannWhitney([1, 2, 2, 3, 3, 3, 4, 5], [2, 3, 3, 4, 4, 5, 6, 6, 7])
        XCTAssertEqual(tied.u, 16.5)
        XCTAssertEqual(tied.p, 0.062484795672341206, accuracy: 1e-12, "ties share their rank and shrink the variance")
        XCTAssertEqual(Comparison.mannWhitney([5, 5, 5], [5, 5]).p, 1, "identical constant series: no difference")
    }

    func testHolmAdjustsInStepsAndKeepsOrder() {
        let adjusted = Comparison.holm([0.01, 0.04, 0.03])
        XCTAssertEqual(adjusted[0], 0.03, accuracy: 1e-12) // 3 × 0.01
        XCTAssertEqual(adjusted[2], 0.06, accuracy: 1e-12) // 2 × 0.03
        XCTAssertEqual(adjusted[1], 0.06, accuracy: 1e-12) // max(1 × 0.04, 0.06): monotone
    }

    func testSideBySideNamesTheSignificantDifferenceOnly() {
        func result(_ id: String, _ durations: [Int64]) -> ExperimentResult {
            var result = ExperimentResult.sample(id: id)
            result.measurement?.durationsNs = durations
            result.measurement?.summary = Statistics.summarize(durations.map(Double.init), resamples: 100)
            return result
        }
        let base = (0..<200).map { Int64(1000 + ($0 * 37) % 50) }
        let same = (0..<200).map { Int64(1000 + ($0 * 53) % 50) }
        let slower = (0..<200).map { Int64(1100 + ($0 * 41) % 50) }
        let text = ResultPresenter.comparison([result("base", base), result("same", same), result("slower", slower)])
        let lines = text.components(separatedBy: "\n")
        XCTAssertTrue(lines[1].contains("(baseline)"), text)
        XCTAssertTrue(lines[2].hasSuffix("not significant"), text)
        XCTAssertTrue(lines[3].contains("+") && lines[3].hasSuffix(" significant") && !lines[3].hasSuffix("not significant"), text)
    }
}
