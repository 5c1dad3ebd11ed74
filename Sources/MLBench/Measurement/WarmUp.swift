import Foundation

/// Where a series of iteration timings reaches steady state, as MSER-5 decides it.
public struct WarmUpAnalysis: Codable, Sendable, Equatable {
    /// The index of the first iteration in steady state (always a multiple of 5, the
    /// batch size); nil when the series does not show one yet: too short to decide,
    /// still drifting, or containing a non-finite value.
    public var steadyStateIndex: Int?
    /// The length of the series analysed (a trailing partial batch of fewer than 5
    /// values is counted here but left out of the batches).
    public var iterationsExamined: Int

    public init(steadyStateIndex: Int?, iterationsExamined: Int) {
        self.steadyStateIndex = steadyStateIndex
        self.iterationsExamined = iterationsExamined
    }

    /// Whether steady state was found.
    public var reachedSteadyState: Bool { steadyStateIndex != nil }
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
