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
    public var p99: Double
    /// The sample standard deviation (n − 1 in the denominator); 0 for a single value.
    public var std: Double
    /// Percentile-bootstrap confidence interval of the median.
    public var medianInterval: ConfidenceInterval
    /// How many values lie outside Tukey's fences (Q1 − 1.5 IQR, Q3 + 1.5 IQR).
    public var outliers: Int

    public init(count: Int, min: Double, max: Double, mean: Double, median: Double, p90: Double, p99: Double,
                std: Double, medianInterval: ConfidenceInterval, outliers: Int) {
        self.count = count
        self.min = min
        self.max = max
        self.mean = mean
        self.median = median
        self.p90 = p90
        self.p99 = p99
        self.std = std
        self.medianInterval = medianInterval
        self.outliers = outliers
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

    /// How many values lie outside Tukey's fences, Q1 − 1.5 IQR and Q3 + 1.5 IQR
    /// (quartiles of type 7). - Precondition: `sorted` is non-empty and ascending.
    public static func tukeyOutliers(sorted: [Double]) -> Int {
        let q1 = quantile(sorted: sorted, 0.25)
        let q3 = quantile(sorted: sorted, 0.75)
        let iqr = q3 - q1
        let low = q1 - 1.5 * iqr
        let high = q3 + 1.5 * iqr
        var count = 0
        for v in sorted where v < low || v > high { count += 1 }
        return count
    }

    /// Summarises a series: extremes, mean, sample standard deviation, type-7
    /// quantiles, a bootstrap interval of the median and the Tukey outlier count.
    ///
    /// - Parameters:
    ///   - level: confidence level of the median interval, in (0, 1).
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
        return Summary(
            count: values.count,
            min: sorted[0],
            max: sorted[sorted.count - 1],
            mean: m,
            median: quantile(sorted: sorted, 0.5),
            p90: quantile(sorted: sorted, 0.9),
            p99: quantile(sorted: sorted, 0.99),
            std: standardDeviation(values, mean: m),
            medianInterval: bootstrapMedianInterval(sorted: sorted, level: level, resamples: resamples, seed: seed),
            outliers: tukeyOutliers(sorted: sorted))
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
        return bootstrapMedianInterval(sorted: values.sorted(), level: level, resamples: resamples, seed: seed)
    }

    static func bootstrapMedianInterval(sorted: [Double], level: Double, resamples: Int,
                                        seed: UInt64) -> ConfidenceInterval {
        precondition(level > 0 && level < 1, "confidence level \(level) outside (0, 1)")
        precondition(resamples >= 1, "bootstrap needs at least one resample")
        let n = sorted.count
        var generator = Xoshiro256StarStar(seed: seed)
        // A resample of a sorted series is fully described by how often each position
        // was drawn, so its median is found by walking the cumulative counts: O(n) per
        // resample, with neither a copy nor a sort (2000 × 10⁴ values in a few ms).
        var counts = [UInt32](repeating: 0, count: n)
        // Order statistics (0-based) around the type-7 median: equal for odd n.
        let lowRank = (n - 1) / 2
        let highRank = n / 2
        var medians = [Double](repeating: 0, count: resamples)
        sorted.withUnsafeBufferPointer { x in
            counts.withUnsafeMutableBufferPointer { c in
                for r in 0..<resamples {
                    for i in 0..<n { c[i] = 0 }
                    for _ in 0..<n { c[generator.next(below: n)] &+= 1 }
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
        medians.sort()
        let alpha = 1 - level
        return ConfidenceInterval(lower: quantile(sorted: medians, alpha / 2),
                                  upper: quantile(sorted: medians, 1 - alpha / 2),
                                  level: level)
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
/// specified, so a seed reproduces the same stream everywhere.
struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next()
        s1 = mixer.next()
        s2 = mixer.next()
        s3 = mixer.next()
    }

    mutating func next() -> UInt64 {
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
    mutating func next(below bound: Int) -> Int {
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
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
