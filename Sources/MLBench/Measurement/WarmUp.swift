import Foundation

/// Where a series of iteration timings reaches steady state.
///
/// `WarmUp.mser5` fills only the first two fields; `WarmUp.analyze` adds the
/// changepoint view (segments, classification) and the MSER-5 index it agreed with.
public struct WarmUpAnalysis: Codable, Sendable, Equatable {
    /// The index of the first iteration in steady state; nil when the series does not
    /// show one yet: too short to decide, still drifting, or containing a non-finite value.
    public var steadyStateIndex: Int?
    /// The length of the series analysed.
    public var iterationsExamined: Int
    /// How the series behaves, in the terms of Barrett et al. (OOPSLA 2017).
    public var classification: WarmUpClass?
    /// MSER-5's truncation point (a multiple of 5), or nil when it found none.
    public var mser5Index: Int?
    /// The segments between changepoints (PELT on mean and variance), in order, after
    /// merging neighbours equivalent to the one after them.
    public var segments: [Segment]?
    /// Iterations the despiking step replaced by their local median before the
    /// changepoint search (isolated spikes, which are noise, not a change of level).
    public var spikesIgnored: Int?

    public init(steadyStateIndex: Int?, iterationsExamined: Int, classification: WarmUpClass? = nil,
                mser5Index: Int? = nil, segments: [Segment]? = nil, spikesIgnored: Int? = nil) {
        self.steadyStateIndex = steadyStateIndex
        self.iterationsExamined = iterationsExamined
        self.classification = classification
        self.mser5Index = mser5Index
        self.segments = segments
        self.spikesIgnored = spikesIgnored
    }

    /// Whether steady state was found.
    public var reachedSteadyState: Bool { steadyStateIndex != nil }

    /// A stretch of iterations with one mean and one variance.
    public struct Segment: Codable, Sendable, Equatable {
        /// First iteration of the segment.
        public var start: Int
        /// One past its last iteration.
        public var end: Int
        public var mean: Double
        public var std: Double
    }
}

/// The shapes a timing series takes (Barrett et al., "Virtual machine warmup blows hot
/// and cold", OOPSLA 2017).
public enum WarmUpClass: String, Codable, Sendable, Equatable {
    /// One level from the first iteration: nothing to discard.
    case flat
    /// Slower first, then a steady level.
    case warmUp = "warm-up"
    /// Faster first, then a slower steady level (caches filling, throttling).
    case slowdown
    /// Still changing near the end of the series: no level to measure yet.
    case noSteadyState = "no steady state"
}

/// Steady-state detection from the timings themselves, rather than a fixed discard count.
public enum WarmUp {
    /// The batch size of MSER-5.
    public static let batchSize = 5
    /// Fewer batches than this (50 iterations) are too few to tell warm-up from noise.
    public static let minimumBatches = 10
    /// Truncation points must leave at least a quarter of the batch means, and never
    /// fewer than 4: the statistic of a short tail is close to zero by chance alone (one
    /// spike-free stretch after the last spike is enough), which would make a flat but
    /// spiky series look like one that never settles — the known end effect of MSER.
    /// Simulated on 250 values, false "no steady state" is about 1 % on white noise and
    /// 26 % with 2 % large spikes (MSER stays sensitive to late spikes), against 25 % and
    /// 78 % when only the last two batch means are excluded; a linear drift is still
    /// rejected over 99 % of the time. The floor is 4 rather than 5 so that the shortest
    /// series (10 batches) can still be rejected: its candidates run to 6 > 10 / 2.
    static func minimumRemainingBatches(of batches: Int) -> Int {
        Swift.max(4, batches / 4)
    }

    /// MSER-5 (White 1997; White, Cobb & Spratt 2000): the series is averaged in
    /// consecutive batches of 5; the truncation point d (in batches) is the one that
    /// minimises the squared standard error of the mean of the batch means left,
    /// Σ (Z_j − Z̄_d)² / (n − d)², over the n batch means Z. A minimum in the second half
    /// of the series means the series is still moving (or too short): no steady state.
    /// Candidates are restricted as `minimumRemainingBatches(of:)` explains.
    ///
    /// - Parameter durations: per-iteration timings, in the order they were taken.
    public static func mser5(_ durations: [Double]) -> WarmUpAnalysis {
        let examined = durations.count
        let batches = durations.count / batchSize
        guard batches >= minimumBatches, durations.allSatisfy(\.isFinite) else {
            return WarmUpAnalysis(steadyStateIndex: nil, iterationsExamined: examined)
        }
        var means = [Double](repeating: 0, count: batches)
        for b in 0..<batches {
            var sum = 0.0
            for i in (b * batchSize)..<((b + 1) * batchSize) { sum += durations[i] }
            means[b] = sum / Double(batchSize)
        }
        guard let d = mserTruncation(means) else {
            return WarmUpAnalysis(steadyStateIndex: nil, iterationsExamined: examined)
        }
        return WarmUpAnalysis(steadyStateIndex: d * batchSize, iterationsExamined: examined)
    }

    /// The MSER truncation point of a series of batch means, or nil when it lies past
    /// half of the series.
    static func mserTruncation(_ z: [Double]) -> Int? {
        let n = z.count
        let lastCandidate = n - minimumRemainingBatches(of: n)
        guard lastCandidate >= 0 else { return nil }
        // Welford's update run backwards gives the sum of squared deviations of every
        // suffix in one pass, without the cancellation of Σz² − (Σz)²/m.
        var statistic = [Double](repeating: 0, count: n)
        var mean = 0.0
        var squares = 0.0
        for d in stride(from: n - 1, through: 0, by: -1) {
            let m = Double(n - d)
            let delta = z[d] - mean
            mean += delta / m
            squares += delta * (z[d] - mean)
            statistic[d] = squares / (m * m)
        }
        var best = 0
        for d in stride(from: 1, through: lastCandidate, by: 1) where statistic[d] < statistic[best] { best = d }
        // "Past half": a truncation that discards more than it keeps.
        return 2 * best > n ? nil : best
    }
}

// MARK: - Changepoints

extension WarmUp {
    /// The penalty factor of PELT: 15·ln n per changepoint, as Barrett et al. chose for
    /// benchmark timings (a plain BIC, 2·ln n, splits at every burst of noise).
    public static let penaltyFactor = 15.0
    /// Shortest segment PELT may cut (one MSER batch).
    public static let minimumSegment = 5
    /// The steady segment must cover at least this share of the series (and 25
    /// iterations), or the series is still moving: a change near the end may be followed
    /// by another one.
    public static let minimumSteadyShare = 0.25
    /// Neighbouring segments whose means differ by less than this share of the steady
    /// mean are one level (a change of variance alone, or a change too small to matter).
    public static let equivalenceTolerance = 0.01
    /// Half-width of the running median used to remove isolated spikes.
    static let despikeHalfWidth = 5
    /// A value this many robust standard deviations from its running median is a spike.
    static let spikeThreshold = 6.0

    /// Steady-state detection by two methods that must agree: changepoints (PELT on
    /// mean and variance, penalty 15·ln n) locate where the last level begins and
    /// classify the series; MSER-5 confirms that the series is not still drifting
    /// (a slow drift has no changepoint but has no MSER truncation in its first half).
    ///
    /// Isolated spikes are replaced by their running median before both, since a
    /// spike is noise, not a change of level (the raw series is what gets stored).
    /// - Parameter durations: per-iteration timings, in the order they were taken.
    public static func analyze(_ durations: [Double]) -> WarmUpAnalysis {
        let n = durations.count
        guard n >= minimumBatches * batchSize, durations.allSatisfy(\.isFinite) else {
            return WarmUpAnalysis(steadyStateIndex: nil, iterationsExamined: n, classification: nil)
        }
        let (clean, spikes) = despike(durations)
        let mser = mser5(clean).steadyStateIndex
        let cuts = pelt(clean)
        var segments = [WarmUpAnalysis.Segment]()
        var start = 0
        for end in cuts + [n] {
            let part = Array(clean[start..<end])
            segments.append(.init(start: start, end: end, mean: Statistics.mean(part),
                                  std: Statistics.standardDeviation(part)))
            start = end
        }
        // Walk back from the last segment, merging neighbours at the same level.
        var steady = segments.removeLast()
        while let previous = segments.last,
              abs(previous.mean - steady.mean) <= equivalenceTolerance * abs(steady.mean) {
            segments.removeLast()
            let part = Array(clean[previous.start..<steady.end])
            steady = .init(start: previous.start, end: steady.end, mean: Statistics.mean(part),
                           std: Statistics.standardDeviation(part))
        }
        let before = segments.last
        segments.append(steady)

        let classification: WarmUpClass
        let steadyLength = steady.end - steady.start
        if Double(steadyLength) < max(25, minimumSteadyShare * Double(n)) || mser == nil {
            classification = .noSteadyState
        } else if let before {
            classification = before.mean > steady.mean ? .warmUp : .slowdown
        } else {
            classification = .flat
        }
        return WarmUpAnalysis(steadyStateIndex: classification == .noSteadyState ? nil : steady.start,
                              iterationsExamined: n, classification: classification, mser5Index: mser,
                              segments: segments, spikesIgnored: spikes)
    }

    /// Replaces values far from their running median (window 11) by that median.
    /// "Far" is `spikeThreshold` robust standard deviations (1.4826 × the median absolute
    /// residual); a step of level survives, since the running median follows it after
    /// half a window.
    static func despike(_ x: [Double]) -> (clean: [Double], replaced: Int) {
        let n = x.count
        let medians = Statistics.runningMedian(x, halfWidth: despikeHalfWidth)
        let residuals = (0..<n).map { abs(x[$0] - medians[$0]) }
        let scale = 1.4826 * Statistics.quantile(sorted: residuals.sorted(), 0.5)
        guard scale > 0 else { return (x, 0) }
        var clean = x
        var replaced = 0
        for i in 0..<n where residuals[i] > spikeThreshold * scale {
            clean[i] = medians[i]
            replaced += 1
        }
        return (clean, replaced)
    }

    /// PELT (Killick, Fearnhead & Eckley 2012) for changes in mean and variance of a
    /// normal series: segment cost m·ln σ̂² (σ̂² the segment's maximum-likelihood
    /// variance), penalty `penaltyFactor`·ln n per changepoint, segments of at least
    /// `minimumSegment`. Returns the changepoints: the first index of every segment but
    /// the first, ascending.
    static func pelt(_ x: [Double]) -> [Int] {
        let n = x.count
        guard n >= 2 * minimumSegment else { return [] }
        // Prefix sums of values shifted by the median, against cancellation.
        let shift = Statistics.quantile(sorted: x.sorted(), 0.5)
        var s1 = [Double](repeating: 0, count: n + 1), s2 = s1
        for i in 0..<n {
            let v = x[i] - shift
            s1[i + 1] = s1[i] + v
            s2[i + 1] = s2[i] + v * v
        }
        // A floor under every variance, so a run of identical values (timer resolution)
        // does not cost −∞: a thousandth of the series' own spread.
        let total = (s2[n] - s1[n] * s1[n] / Double(n)) / Double(n)
        let floor = max(total * 1e-6, Double.leastNormalMagnitude)
        func cost(_ a: Int, _ b: Int) -> Double {
            let m = Double(b - a)
            let sum = s1[b] - s1[a]
            let variance = max((s2[b] - s2[a] - sum * sum / m) / m, floor)
            return m * log(variance)
        }
        let penalty = penaltyFactor * log(Double(n))
        var best = [Double](repeating: .infinity, count: n + 1)
        var last = [Int](repeating: 0, count: n + 1)
        best[0] = -penalty
        var candidates = [0]
        for t in stride(from: minimumSegment, through: n, by: 1) {
            var value = Double.infinity, argument = 0
            var totals = [Double](repeating: -.infinity, count: candidates.count)
            for (k, tau) in candidates.enumerated() where t - tau >= minimumSegment {
                totals[k] = best[tau] + cost(tau, t) + penalty
                if totals[k] < value { (value, argument) = (totals[k], tau) }
            }
            best[t] = value
            last[t] = argument
            // Pruning: a start that cannot beat the best even without a penalty never
            // will (starts too recent to be evaluated yet are kept).
            candidates = candidates.indices.filter { totals[$0] - penalty <= value }.map { candidates[$0] }
            // The start that becomes eligible at t + 1; starts before `minimumSegment`
            // cannot end a valid first segment.
            if t + 1 - minimumSegment >= minimumSegment { candidates.append(t + 1 - minimumSegment) }
        }
        var cuts = [Int]()
        var t = n
        while t > 0 {
            let tau = last[t]
            if tau > 0 { cuts.append(tau) }
            t = tau
        }
        return cuts.reversed()
    }
}

/// Steady-state detection as the lab runs it during warm-up: timings arrive in
/// batches; after each, the whole trace is analysed again, and steady state counts
/// only when two checks in a row find it (a batch more of timings may move a
/// changepoint found at the very end).
public struct WarmUpDetector: Sendable {
    /// Every warm-up timing so far, in order.
    public private(set) var durations: [Double] = []
    /// The latest analysis.
    public private(set) var analysis = WarmUpAnalysis(steadyStateIndex: nil, iterationsExamined: 0)
    private var agreeingChecks = 0
    /// Checks in a row that must find steady state.
    public static let checksNeeded = 2
    /// Iterations to observe before steady state can be confirmed: a level seen for a
    /// few dozen iterations may be a plateau of the warm-up, and a slow drift shows only
    /// over a longer stretch (see the warm-up benchmark's online figures).
    public let minimumIterations: Int

    public init(minimumIterations: Int = 150) {
        self.minimumIterations = minimumIterations
    }

    /// Adds a batch of timings; true once steady state is confirmed.
    public mutating func add(_ batch: [Double]) -> Bool {
        durations += batch
        analysis = WarmUp.analyze(durations)
        agreeingChecks = analysis.steadyStateIndex == nil ? 0 : agreeingChecks + 1
        return isSteady
    }

    /// Whether steady state is confirmed.
    public var isSteady: Bool { agreeingChecks >= Self.checksNeeded && durations.count >= minimumIterations }
}
