import Foundation

/// A two-sided confidence interval at a given level (0.95 for 95 %).
public struct ConfidenceInterval: Codable, Sendable, Equatable {
    public var lower: Double
    public var upper: Double
    /// The confidence level, in (0, 1).
    public var level: Double

    public init(lower: Double, upper: Double, level: Double) {
        self.lower = lower
        self.upper = upper
        self.level = level
    }

    /// Upper minus lower: what a stopping rule on the interval width looks at.
    public var width: Double { upper - lower }

    public func contains(_ value: Double) -> Bool { lower <= value && value <= upper }
}

/// The summary of one series of measurements (timings, energies, ...).
///
/// Outliers are counted, never removed: the raw series is always kept beside it,
/// and the robust statistics (median, its interval) are what to compare.
public struct Summary: Codable, Sendable, Equatable {
    public var count: Int
    public var min: Double
    public var max: Double
    public var mean: Double
    /// The 0.5 quantile (Hyndman–Fan type 7, as numpy's default).
    public var median: Double
    public var p90: Double
    /// The 0.95 quantile; nil in results stored before it was computed.
    public var p95: Double?
    public var p99: Double
    /// The sample standard deviation (n − 1 in the denominator); 0 for a single value.
    public var std: Double
    /// Percentile-bootstrap confidence interval of the median.
    public var medianInterval: ConfidenceInterval
    /// Percentile-bootstrap confidence interval of the mean (same resamples as the median's).
    public var meanInterval: ConfidenceInterval?
    /// Distribution-free (binomial) bounds of the tail percentiles p90, p95 and p99: a
    /// bootstrap is unreliable in the tails, order statistics are not.
    public var tailBounds: [QuantileBound]?
    /// How many values lie outside Tukey's fences (Q1 − 1.5 IQR, Q3 + 1.5 IQR).
    public var outliers: Int
    /// How many values have a modified z-score |0.6745 (x − median) / MAD| above 3.5
    /// (Iglewicz & Hoaglin); nil in results stored before it was computed.
    public var madOutliers: Int?

    public init(count: Int, min: Double, max: Double, mean: Double, median: Double, p90: Double, p95: Double? = nil,
                p99: Double, std: Double, medianInterval: ConfidenceInterval, meanInterval: ConfidenceInterval? = nil,
                tailBounds: [QuantileBound]? = nil, outliers: Int, madOutliers: Int? = nil) {
        self.count = count
        self.min = min
        self.max = max
        self.mean = mean
        self.median = median
        self.p90 = p90
        self.p95 = p95
        self.p99 = p99
        self.std = std
        self.medianInterval = medianInterval
        self.meanInterval = meanInterval
        self.tailBounds = tailBounds
        self.outliers = outliers
        self.madOutliers = madOutliers
    }

    /// The bound of the `q` quantile, if it was computed.
    public func tailBound(_ q: Double) -> QuantileBound? {
        tailBounds?.first { abs($0.quantile - q) < 1e-12 }
    }
}

/// A distribution-free confidence interval of a quantile from order statistics: for n
/// independent values, the count below the true q-quantile is Binomial(n, q), so the
/// interval [x₍l₎, x₍u₎] covers it with probability P(l ≤ B ≤ u − 1). A side is nil when
/// the series is too short for it at this level (the upper bound of p99 at 95 % needs
/// about 300 values; LoadGen's one-sided 99 % bound needs 662).
public struct QuantileBound: Codable, Sendable, Equatable {
    /// The quantile level, in (0, 1) (0.99 for p99).
    public var quantile: Double
    /// The type-7 estimate of the quantile.
    public var estimate: Double
    public var lower: Double?
    public var upper: Double?
    /// The confidence level the ranks were chosen for.
    public var level: Double
    /// The exact coverage of [lower, upper] under the binomial model (≥ level when both exist).
    public var coverage: Double

    public init(quantile: Double, estimate: Double, lower: Double?, upper: Double?, level: Double, coverage: Double) {
        self.quantile = quantile
        self.estimate = estimate
        self.lower = lower
        self.upper = upper
        self.level = level
        self.coverage = coverage
    }
}

/// Which values of a series fall outside each outlier rule, by position in the series.
/// Outliers are labelled, never removed: the raw series stays as measured.
public struct OutlierLabels: Codable, Sendable, Equatable {
    /// Positions outside Tukey's fences (Q1 − 1.5 IQR, Q3 + 1.5 IQR).
    public var tukey: [Int]
    /// Positions whose modified z-score exceeds 3.5.
    public var mad: [Int]

    public init(tukey: [Int], mad: [Int]) {
        self.tukey = tukey
        self.mad = mad
    }
}

/// Descriptive statistics and bootstrap intervals for measurement series.
///
/// Everything here is deterministic: the bootstrap draws from a PRNG seeded by the
/// caller, so the same series and seed give the same interval on every machine and
/// every Swift version (the standard library's generators promise neither).
public enum Statistics {
    /// The default bootstrap seed ("mlbe"): fixed so that stored results can be recomputed.
    public static let defaultSeed: UInt64 = 0x6d6c6265

    /// The `q` quantile of an ascending series, by linear interpolation between order
    /// statistics (Hyndman–Fan type 7, numpy's default), so values match numpy's
    /// `np.quantile(x, q)` and `np.percentile(x, 100 * q)`.
    ///
    /// - Precondition: `sorted` is non-empty and ascending; `q` is in [0, 1].
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty, "quantile of an empty series")
        precondition(q >= 0 && q <= 1, "quantile level \(q) outside [0, 1]")
        return sorted.withUnsafeBufferPointer { quantile(sortedBuffer: $0, q) }
    }

    static func quantile(sortedBuffer x: UnsafeBufferPointer<Double>, _ q: Double) -> Double {
        let h = Double(x.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = Swift.min(lo + 1, x.count - 1)
        // Written as a + t(b − a), like numpy, so equal neighbours give exactly that value.
        return x[lo] + (h - Double(lo)) * (x[hi] - x[lo])
    }

    /// The arithmetic mean. - Precondition: `values` is non-empty.
    public static func mean(_ values: [Double]) -> Double {
        precondition(!values.isEmpty, "mean of an empty series")
        var sum = 0.0
        for v in values { sum += v }
        return sum / Double(values.count)
    }

    /// The sample standard deviation (n − 1 in the denominator, numpy's `ddof=1`);
    /// 0 for a single value. Two-pass, so a large common offset (timestamps, long
    /// durations) does not cancel away the spread.
    /// - Precondition: `values` is non-empty.
    public static func standardDeviation(_ values: [Double]) -> Double {
        standardDeviation(values, mean: mean(values))
    }

    static func standardDeviation(_ values: [Double], mean m: Double) -> Double {
        guard values.count > 1 else { return 0 }
        var squares = 0.0
        for v in values { squares += (v - m) * (v - m) }
        return (squares / Double(values.count - 1)).squareRoot()
    }

    /// The median of each value's neighbourhood, `halfWidth` values either side (fewer
    /// at the ends): follows a change of level after half a window, ignores an isolated
    /// spike. - Precondition: `values` contains no NaN.
    public static func runningMedian(_ values: [Double], halfWidth: Int) -> [Double] {
        let n = values.count
        var medians = [Double](repeating: 0, count: n)
        var window = [Double]()
        for i in 0..<n {
            window.removeAll(keepingCapacity: true)
            window.append(contentsOf: values[max(0, i - halfWidth)...min(n - 1, i + halfWidth)])
            window.sort()
            medians[i] = quantile(sorted: window, 0.5)
        }
        return medians
    }

    /// Tukey's fences, Q1 − 1.5 IQR and Q3 + 1.5 IQR (quartiles of type 7).
    /// - Precondition: `sorted` is non-empty and ascending.
    public static func tukeyFences(sorted: [Double]) -> ClosedRange<Double> {
        let q1 = quantile(sorted: sorted, 0.25)
        let q3 = quantile(sorted: sorted, 0.75)
        let iqr = q3 - q1
        return (q1 - 1.5 * iqr)...(q3 + 1.5 * iqr)
    }

    /// How many values lie outside Tukey's fences. - Precondition: `sorted` is non-empty and ascending.
    public static func tukeyOutliers(sorted: [Double]) -> Int {
        let fences = tukeyFences(sorted: sorted)
        return sorted.lazy.filter { !fences.contains($0) }.count
    }

    /// The cut-off of the modified z-score (Iglewicz & Hoaglin 1993).
    public static let madThreshold = 3.5

    /// The median absolute deviation from the median. - Precondition: `sorted` is non-empty and ascending.
    public static func medianAbsoluteDeviation(sorted: [Double]) -> Double {
        let median = quantile(sorted: sorted, 0.5)
        return quantile(sorted: sorted.map { abs($0 - median) }.sorted(), 0.5)
    }

    /// The values whose modified z-score 0.6745 (x − median) / MAD exceeds 3.5 in
    /// magnitude. Robust where Tukey's fences are not: the median and MAD barely move
    /// when a tenth of the series is disturbed. A series with MAD 0 (over half the values
    /// equal) labels nothing: every deviation would be infinitely far.
    public static func madOutlierRange(sorted: [Double]) -> ClosedRange<Double>? {
        let mad = medianAbsoluteDeviation(sorted: sorted)
        guard mad > 0 else { return nil }
        let median = quantile(sorted: sorted, 0.5)
        let reach = madThreshold * mad / 0.6745
        return (median - reach)...(median + reach)
    }

    /// Labels the outliers of a series, by position, under both rules.
    /// - Precondition: `values` is non-empty without NaN.
    public static func outliers(_ values: [Double]) -> OutlierLabels {
        precondition(!values.isEmpty, "outliers of an empty series")
        let sorted = values.sorted()
        let tukey = tukeyFences(sorted: sorted)
        let mad = madOutlierRange(sorted: sorted)
        var labels = OutlierLabels(tukey: [], mad: [])
        for (i, v) in values.enumerated() {
            if !tukey.contains(v) { labels.tukey.append(i) }
            if let mad, !mad.contains(v) { labels.mad.append(i) }
        }
        return labels
    }

    /// The distribution-free confidence interval of the `q` quantile from order statistics.
    ///
    /// With B ~ Binomial(n, q), the lower rank l is the largest with P(B ≤ l − 1) ≤ α/2 and
    /// the upper rank u the smallest with P(B ≥ u) ≤ α/2 (1-based ranks, α = 1 − level), so
    /// [x₍l₎, x₍u₎] covers the true quantile with probability at least `level` for any
    /// continuous distribution. A side that no rank satisfies is nil.
    /// - Precondition: `sorted` is non-empty and ascending; `q` and `level` in (0, 1).
    public static func quantileBound(sorted: [Double], _ q: Double, level: Double = 0.95) -> QuantileBound {
        precondition(!sorted.isEmpty, "quantile bound of an empty series")
        precondition(q > 0 && q < 1, "quantile level \(q) outside (0, 1)")
        precondition(level > 0 && level < 1, "confidence level \(level) outside (0, 1)")
        let n = sorted.count
        let cdf = binomialCDF(n: n, p: q)  // cdf[k] = P(B ≤ k), k = 0...n
        let tail = (1 - level) / 2
        // Largest l in 1...n with cdf[l − 1] ≤ tail.
        var lowerRank: Int?
        for l in stride(from: n, through: 1, by: -1) where cdf[l - 1] <= tail { lowerRank = l; break }
        // Smallest u in 1...n with P(B ≥ u) = 1 − cdf[u − 1] ≤ tail.
        var upperRank: Int?
        for u in 1...n where 1 - cdf[u - 1] <= tail { upperRank = u; break }
        let below = lowerRank.map { cdf[$0 - 1] } ?? 0
        let above = upperRank.map { 1 - cdf[$0 - 1] } ?? 0
        return QuantileBound(quantile: q, estimate: quantile(sorted: sorted, q),
                             lower: lowerRank.map { sorted[$0 - 1] }, upper: upperRank.map { sorted[$0 - 1] },
                             level: level, coverage: Swift.max(0, 1 - below - above))
    }

    /// P(B ≤ k) for k = 0...n, B ~ Binomial(n, p), from log-space probabilities so that
    /// n in the hundreds of thousands neither overflows nor underflows to garbage.
    static func binomialCDF(n: Int, p: Double) -> [Double] {
        let logP = log(p), logQ = log1p(-p)
        var cdf = [Double](repeating: 0, count: n + 1)
        // ln P(B = k), from ln P(B = 0) = n ln(1 − p) by the ratio of neighbours.
        var logPMF = Double(n) * logQ
        var sum = 0.0
        for k in 0...n {
            if k > 0 { logPMF += log(Double(n - k + 1) / Double(k)) + logP - logQ }
            sum += exp(logPMF)
            cdf[k] = Swift.min(1, sum)
        }
        return cdf
    }

    /// The tail percentiles bounded in every summary.
    public static let tailQuantiles: [Double] = [0.90, 0.95, 0.99]

    /// Summarises a series: extremes, mean, sample standard deviation, type-7
    /// quantiles, bootstrap intervals of the median and the mean, binomial bounds of
    /// p90, p95 and p99, and the Tukey and MAD outlier counts.
    ///
    /// - Parameters:
    ///   - level: confidence level of every interval, in (0, 1).
    ///   - resamples: bootstrap resamples (≥ 1).
    ///   - seed: seed of the bootstrap generator; keep it fixed for reproducible results.
    /// - Precondition: `values` is non-empty and contains no NaN (NaN has no place in
    ///   an order, so every quantile would be meaningless).
    public static func summarize(_ values: [Double], level: Double = 0.95, resamples: Int = 2000,
                                 seed: UInt64 = defaultSeed) -> Summary {
        precondition(!values.isEmpty, "summary of an empty series")
        precondition(!values.contains(where: \.isNaN), "summary of a series containing NaN")
        let sorted = values.sorted()
        let m = mean(values)
        let intervals = bootstrapIntervals(sorted: sorted, level: level, resamples: resamples, seed: seed)
        let madRange = madOutlierRange(sorted: sorted)
        return Summary(
            count: values.count,
            min: sorted[0],
            max: sorted[sorted.count - 1],
            mean: m,
            median: quantile(sorted: sorted, 0.5),
            p90: quantile(sorted: sorted, 0.9),
            p95: quantile(sorted: sorted, 0.95),
            p99: quantile(sorted: sorted, 0.99),
            std: standardDeviation(values, mean: m),
            medianInterval: intervals.median,
            meanInterval: intervals.mean,
            tailBounds: tailQuantiles.map { quantileBound(sorted: sorted, $0, level: level) },
            outliers: tukeyOutliers(sorted: sorted),
            madOutliers: madRange.map { range in sorted.lazy.filter { !range.contains($0) }.count } ?? 0)
    }

    /// Percentile-bootstrap confidence interval of the median: the median of
    /// `resamples` resamples drawn with replacement, and the type-7 quantiles
    /// (1 − level)/2 and (1 + level)/2 of those medians.
    ///
    /// Deterministic for a given `seed` (xoshiro256** seeded through SplitMix64).
    /// A single value, or a constant series, gives the degenerate interval [v, v].
    /// - Precondition: `values` is non-empty without NaN; `level` in (0, 1); `resamples` ≥ 1.
    public static func bootstrapMedianInterval(_ values: [Double], level: Double = 0.95, resamples: Int = 2000,
                                               seed: UInt64 = defaultSeed) -> ConfidenceInterval {
        precondition(!values.isEmpty, "bootstrap of an empty series")
        precondition(!values.contains(where: \.isNaN), "bootstrap of a series containing NaN")
        return bootstrapIntervals(sorted: values.sorted(), level: level, resamples: resamples, seed: seed).median
    }

    /// Percentile-bootstrap intervals of the median and of the mean, from the same resamples.
    static func bootstrapIntervals(sorted: [Double], level: Double, resamples: Int,
                                   seed: UInt64) -> (median: ConfidenceInterval, mean: ConfidenceInterval) {
        precondition(level > 0 && level < 1, "confidence level \(level) outside (0, 1)")
        var (medians, means) = bootstrapEstimates(sorted: sorted, resamples: resamples, seed: seed)
        medians.sort()
        means.sort()
        return (percentileInterval(sorted: medians, level: level), percentileInterval(sorted: means, level: level))
    }

    /// The median and the mean of the whole run and its interval when the run is made
    /// of several invocations (runner processes started afresh), after Kalibera & Jones:
    /// invocations are resampled, and each drawn invocation contributes one of its own
    /// bootstrap medians, so the variation between invocations and within each widens
    /// the interval. The estimate is the median of the invocations' medians: one slow
    /// invocation moves it no more than one fast one.
    /// - Precondition: every group is non-empty.
    public static func invocationMedianInterval(groups: [[Double]], level: Double = 0.95, resamples: Int = 2000,
                                                seed: UInt64 = defaultSeed) -> (estimate: Double, interval: ConfidenceInterval) {
        precondition(!groups.isEmpty && groups.allSatisfy { !$0.isEmpty }, "invocations without timings")
        precondition(level > 0 && level < 1, "confidence level \(level) outside (0, 1)")
        let inner = max(200, resamples / 4)
        let sortedGroups = groups.map { $0.sorted() }
        let perGroup = sortedGroups.enumerated().map { index, values in
            bootstrapEstimates(sorted: values, resamples: inner, seed: seed &+ UInt64(index) &+ 1).medians
        }
        let estimate = quantile(sorted: sortedGroups.map { quantile(sorted: $0, 0.5) }.sorted(), 0.5)
        var generator = Xoshiro256StarStar(seed: seed)
        var estimates = [Double](repeating: 0, count: resamples)
        var drawn = [Double](repeating: 0, count: groups.count)
        for r in 0..<resamples {
            for k in 0..<groups.count {
                let group = perGroup[generator.next(below: groups.count)]
                drawn[k] = group[generator.next(below: group.count)]
            }
            drawn.sort()
            estimates[r] = quantile(sorted: drawn, 0.5)
        }
        estimates.sort()
        return (estimate, percentileInterval(sorted: estimates, level: level))
    }

    static func percentileInterval(sorted estimates: [Double], level: Double) -> ConfidenceInterval {
        let alpha = 1 - level
        return ConfidenceInterval(lower: quantile(sorted: estimates, alpha / 2), upper: quantile(sorted: estimates, 1 - alpha / 2),
                                  level: level)
    }

    /// The median and the mean of each of `resamples` bootstrap resamples of `sorted`, unsorted.
    static func bootstrapEstimates(sorted: [Double], resamples: Int, seed: UInt64) -> (medians: [Double], means: [Double]) {
        precondition(resamples >= 1, "bootstrap needs at least one resample")
        let n = sorted.count
        var generator = Xoshiro256StarStar(seed: seed)
        // A resample of a sorted series is fully described by how often each position
        // was drawn, so its median is found by walking the cumulative counts and its mean
        // by weighting: O(n) per resample, with neither a copy nor a sort.
        var counts = [UInt32](repeating: 0, count: n)
        // Order statistics (0-based) around the type-7 median: equal for odd n.
        let lowRank = (n - 1) / 2
        let highRank = n / 2
        var medians = [Double](repeating: 0, count: resamples)
        var means = [Double](repeating: 0, count: resamples)
        sorted.withUnsafeBufferPointer { x in
            counts.withUnsafeMutableBufferPointer { c in
                for r in 0..<resamples {
                    for i in 0..<n { c[i] = 0 }
                    for _ in 0..<n { c[generator.next(below: n)] &+= 1 }
                    var sum = 0.0
                    for i in 0..<n where c[i] != 0 { sum += Double(c[i]) * x[i] }
                    means[r] = sum / Double(n)
                    var cumulative = 0
                    var position = 0
                    while true {
                        cumulative += Int(c[position])
                        if cumulative > lowRank { break }
                        position += 1
                    }
                    let low = x[position]
                    while cumulative <= highRank {
                        position += 1
                        cumulative += Int(c[position])
                    }
                    let high = x[position]
                    medians[r] = low + 0.5 * (high - low)
                }
            }
        }
        return (medians, means)
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): expands one 64-bit seed into the state of
/// a larger generator, as the xoshiro authors recommend.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): fast, statistically strong, and fully
/// specified, so a seed reproduces the same stream everywhere. Public so that
/// benchmarks and simulations draw reproducible series the same way.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// A uniform integer in 0..<bound, by Lemire's multiply-and-reject (unbiased);
    /// written out rather than taken from `Int.random(in:using:)`, whose algorithm
    /// the standard library does not promise to keep.
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold {
                product = next().multipliedFullWidth(by: b)
            }
        }
        return Int(product.high)
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal variate (Box–Muller).
    public mutating func nextNormal() -> Double {
        let u1 = Swift.max(nextUnit(), .leastNormalMagnitude)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * nextUnit())
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
