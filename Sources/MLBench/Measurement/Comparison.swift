import Foundation

/// Whether two series of timings differ: the Mann–Whitney U test (rank-based, so it makes
/// no assumption about the shape of latency distributions, which are skewed and
/// heavy-tailed), two-sided, normal approximation with tie correction and continuity
/// correction — what scipy's `mannwhitneyu(method="asymptotic")` computes.
public enum Comparison {
    public struct Test: Sendable, Equatable {
        /// U of the first series.
        public var u: Double
        /// Two-sided p-value.
        public var p: Double
    }

    /// The test of `first` against `second`.
    /// - Precondition: both are non-empty and hold no NaN.
    public static func mannWhitney(_ first: [Double], _ second: [Double]) -> Test {
        precondition(!first.isEmpty && !second.isEmpty, "Mann-Whitney needs two non-empty series")
        let n1 = Double(first.count), n2 = Double(second.count), n = n1 + n2
        // Ranks of the pooled values, ties sharing their mean rank.
        let pooled = (first.map { ($0, true) } + second.map { ($0, false) }).sorted { $0.0 < $1.0 }
        var rankSumFirst = 0.0
        var tieTerm = 0.0
        var start = 0
        while start < pooled.count {
            var end = start
            while end + 1 < pooled.count && pooled[end + 1].0 == pooled[start].0 { end += 1 }
            let rank = Double(start + end) / 2 + 1
            for index in start...end where pooled[index].1 { rankSumFirst += rank }
            let ties = Double(end - start + 1)
            tieTerm += ties * ties * ties - ties
            start = end + 1
        }
        let u = rankSumFirst - n1 * (n1 + 1) / 2
        let mean = n1 * n2 / 2
        let variance = n1 * n2 / 12 * ((n + 1) - tieTerm / (n * (n - 1)))
        guard variance > 0 else { return Test(u: u, p: 1) } // every value equal: no evidence of a difference
        let z = max(0, abs(u - mean) - 0.5) / variance.squareRoot()
        return Test(u: u, p: min(1, erfc(z / 2.squareRoot())))
    }

    /// Holm's step-down adjustment of several p-values (same order as given), so that the
    /// chance of any false "significant" among them stays at the chosen level.
    public static func holm(_ pValues: [Double]) -> [Double] {
        let order = pValues.indices.sorted { pValues[$0] < pValues[$1] }
        var adjusted = [Double](repeating: 1, count: pValues.count)
        var running = 0.0
        for (step, index) in order.enumerated() {
            running = max(running, min(1, Double(pValues.count - step) * pValues[index]))
            adjusted[index] = running
        }
        return adjusted
    }
}

extension ResultPresenter {
    /// Results side by side (median with its 95% interval, mean, iterations, semantic
    /// preservation), each compared with the first: the ratio of medians and the
    /// Mann–Whitney p-value on the raw timings, Holm-adjusted over the comparisons.
    public static func comparison(_ results: [ExperimentResult], level: Double = 0.05) -> String {
        var rows = [["RESULT", "NAME", "BOARD", "TOOLCHAIN", "N", "MEDIAN [95% CI]", "MEAN", "PRESERVED", "VS FIRST", "p (Holm)", ""]]
        let baseline = results.first?.measurement.map { $0.durationsNs.map(Double.init) }
        var tests = [(row: Int, ratio: Double, p: Double)]()
        for (index, result) in results.enumerated() {
            var row = [String(result.id.prefix(8)), result.name, result.board?.name ?? "", result.toolchain.map { "\($0.name) \($0.version)" } ?? ""]
            guard let measurement = result.measurement else {
                rows.append(row + ["", "no measurement (\(result.status.rawValue))", "", "", "", "", ""])
                continue
            }
            let summary = measurement.summary
            row += ["\(summary.count)",
                    "\(duration(summary.median)) [\(duration(summary.medianInterval.lower)), \(duration(summary.medianInterval.upper))]",
                    duration(summary.mean), result.semanticPreservation.map { String(format: "%.4f", $0.ratio) } ?? ""]
            if index > 0, let baseline, let first = results.first?.measurement, !measurement.durationsNs.isEmpty, !baseline.isEmpty {
                let test = Comparison.mannWhitney(measurement.durationsNs.map(Double.init), baseline)
                tests.append((rows.count, summary.median / first.summary.median, test.p))
                row += ["", "", ""]
            } else {
                row += [index == 0 ? "(baseline)" : "", "", ""]
            }
            rows.append(row)
        }
        for (test, adjusted) in zip(tests, Comparison.holm(tests.map(\.p))) {
            rows[test.row][8] = String(format: "%+.1f%%", (test.ratio - 1) * 100)
            rows[test.row][9] = adjusted < 0.0001 ? "<0.0001" : String(format: "%.4f", adjusted)
            rows[test.row][10] = adjusted < level ? "significant" : "not significant"
        }
        return table(rows) + "\n(p: Mann-Whitney U on the raw timings against the first result, two-sided, Holm-adjusted; significant below \(level))"
    }
}
