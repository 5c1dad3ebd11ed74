import Foundation

/// What the canary — a fixed reference workload timed after every model iteration in
/// the same runner — says about the machine during a measurement, and the estimate
/// corrected by it.
///
/// The canary does the same work every time, so its duration moves only when the
/// machine does (a competing process, a clock change, an interrupt storm). Where its
/// running median rises above its quiet level, the model's iterations of that stretch
/// are flagged as disturbed; the corrected summary leaves them out. Nothing is removed
/// from the raw series.
public struct CanaryReport: Codable, Sendable, Equatable {
    /// The canary's duration after each iteration, paired with the model's timings.
    public var canaryNs: [Int64]
    /// The canary's quiet level: the 25th percentile of its durations.
    public var baselineNs: Double
    /// A running median of the canary above this is a disturbance.
    public var thresholdNs: Double
    /// Iterations (by position) whose canary window was disturbed.
    public var disturbedIterations: Int
    /// The disturbed stretches, as half-open ranges of iteration positions.
    public var disturbedPeriods: [Period]
    /// The summary of the model's iterations outside the disturbed periods; nil when
    /// every iteration was disturbed.
    public var correctedSummary: Summary?
    /// What was done, in words.
    public var note: String

    public struct Period: Codable, Sendable, Equatable {
        public var start: Int
        public var end: Int
    }
}

public enum Canary {
    /// Half-width of the running median of canary durations (window 9): one slow
    /// canary is an interrupt, a slow stretch is a disturbance.
    static let halfWidth = 4
    /// The running median must exceed the quiet level by this share at least...
    public static let minimumRise = 0.10
    /// ...and by this many robust standard deviations of the canary, so a noisy canary
    /// does not flag the machine's ordinary jitter.
    public static let robustDeviations = 4.0

    /// Flags disturbed stretches from the canary and summarises the model's iterations
    /// outside them.
    /// - Precondition: `durations` and `canary` have the same non-zero length.
    public static func analyze(durations: [Int64], canary: [Int64], level: Double = 0.95) -> CanaryReport {
        precondition(!canary.isEmpty && durations.count == canary.count, "canary and model timings must pair up")
        let c = canary.map(Double.init)
        let sorted = c.sorted()
        let baseline = Statistics.quantile(sorted: sorted, 0.25)
        // Robust spread from the lower half, which the disturbances do not reach.
        let quiet = sorted.prefix(max(1, sorted.count / 2)).map { abs($0 - baseline) }.sorted()
        let spread = 1.4826 * Statistics.quantile(sorted: quiet, 0.5)
        let threshold = max(baseline * (1 + minimumRise), baseline + robustDeviations * spread)

        let n = c.count
        let disturbed = Statistics.runningMedian(c, halfWidth: halfWidth).map { $0 > threshold }
        var periods = [CanaryReport.Period]()
        var i = 0
        while i < n {
            guard disturbed[i] else { i += 1; continue }
            let start = i
            while i < n, disturbed[i] { i += 1 }
            periods.append(.init(start: start, end: i))
        }
        let kept = (0..<n).filter { !disturbed[$0] }.map { Double(durations[$0]) }
        let flagged = n - kept.count
        let share = Double(flagged) / Double(n)
        var note = flagged == 0
            ? "no disturbance: the canary stayed within its quiet level"
            : String(format: "%d of %d iterations (%.1f%%) in %d disturbed periods left out of the corrected summary",
                     flagged, n, share * 100, periods.count)
        if share > 0.5 { note += "; over half the run was disturbed, so the quiet level itself is uncertain" }
        return CanaryReport(canaryNs: canary, baselineNs: baseline, thresholdNs: threshold, disturbedIterations: flagged,
                            disturbedPeriods: periods,
                            correctedSummary: kept.isEmpty ? nil : Statistics.summarize(kept, level: level),
                            note: note)
    }
}
