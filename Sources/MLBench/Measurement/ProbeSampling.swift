import Foundation
import MLBenchCore

/// How densely each channel of a probe was sampled during a recording, against
/// the rate the probe was asked for and the methodology's goals: power every
/// 20 ms or finer, temperature every 100 ms or finer, where the probe allows.
/// Intervals without samples longer than three expected periods, and longer than
/// the goal's interval where there is one, are gaps: energy is not interpolated
/// across them.
public struct ChannelSampling: Codable, Sendable, Equatable {
    public var channel: String
    public var unit: String
    public var samples: Int
    /// The rate the probe declared it samples at (0: unknown).
    public var requestedHz: Double
    /// Samples per second over the span from the first to the last sample (distinct times).
    public var achievedHz: Double?
    /// True when the achieved rate is under 90 % of the requested one.
    public var requestedRateMissed: Bool
    public var medianIntervalNs: Int64?
    public var maxIntervalNs: Int64?
    /// The longest interval the methodology allows for this unit (nil: no goal).
    public var goalIntervalNs: Int64?
    /// Intervals between samples longer than this are gaps (nil with fewer than two samples).
    public var gapThresholdNs: Int64?
    public var verdict: Verdict
    /// Intervals without samples, on CLOCK_MONOTONIC: the first `maximumGapsListed`;
    /// `gapCount` counts them all.
    public var gaps: [ProbeRecorder.Gap]
    public var gapCount: Int
    public var note: String

    /// Whether the step log and the result page should show this channel's note:
    /// a goal applies, a gap opened, or the requested rate was not met.
    public var isWorthNoting: Bool { verdict != .noGoal || gapCount > 0 || requestedRateMissed }

    /// How many gaps a channel lists (a probe dropping out every other read would
    /// otherwise store one per sample).
    public static let maximumGapsListed = 100

    public enum Verdict: String, Codable, Sendable {
        /// Sampled at the goal's interval or finer.
        case met
        /// Slower than the goal because the probe cannot sample faster (its nominal rate).
        case probeLimited = "probe_limited"
        /// Slower than the goal although the probe's nominal rate would meet it: samples were lost.
        case missed
        /// No goal for this unit.
        case noGoal = "no_goal"
        /// Fewer than two samples: no interval to judge.
        case tooFewSamples = "too_few_samples"
    }

    /// The methodology's goals by unit: power at 20 ms or finer, temperature at 100 ms or finer.
    public static let goalIntervalsNs: [String: Int64] = ["W": 20_000_000, "°C": 100_000_000]

    /// An interval counts as on time within this factor of the goal (timer jitter).
    static let tolerance = 1.05
    /// An interval longer than this many expected periods (and than the goal) is a gap.
    static let gapPeriods = 3.0

    /// One entry per channel of `record`.
    public static func analyze(_ record: ProbeRecorder.Record) -> [ChannelSampling] {
        record.channels.enumerated().map { index, channel in
            // Distinct times: a sample delivered twice is not a second reading.
            let times = Set(record.samples.lazy.filter { $0.channel == UInt32(index) }.map(\.timestampNs)).sorted()
            return analyze(channel: channel, timestampsNs: times, nominalHz: record.rateHz)
        }
    }

    static func analyze(channel: ProbeChannel, timestampsNs times: [Int64], nominalHz: Double) -> ChannelSampling {
        let goal = goalIntervalsNs[channel.unit]
        var entry = ChannelSampling(channel: channel.name, unit: channel.unit, samples: times.count, requestedHz: nominalHz,
                                    achievedHz: nil, requestedRateMissed: false, medianIntervalNs: nil, maxIntervalNs: nil,
                                    goalIntervalNs: goal, gapThresholdNs: nil, verdict: .tooFewSamples, gaps: [], gapCount: 0, note: "")
        guard times.count >= 2, let first = times.first, let last = times.last, last > first else {
            entry.note = "\(times.count) sample(s): no sampling interval to judge"
            return entry
        }
        let intervals = zip(times.dropFirst(), times).map { $0 - $1 }
        let median = Int64(Statistics.quantile(sorted: intervals.map(Double.init).sorted(), 0.5))
        entry.medianIntervalNs = median
        entry.maxIntervalNs = intervals.max()
        entry.achievedHz = Double(times.count - 1) / (Double(last - first) / 1e9)
        let nominalNs = nominalHz > 0 ? 1e9 / nominalHz : nil
        let expected = max(nominalNs ?? Double(median), 1)
        // Within the goal's interval a hole is no gap: a power series sampled every
        // 20 ms meets the methodology, so a kHz meter pausing 1 ms has lost nothing.
        let gapNs = Int64(max(gapPeriods * expected, Double(goal ?? 0)))
        entry.gapThresholdNs = gapNs
        let gaps = zip(times, times.dropFirst()).filter { $1 - $0 > gapNs }
            .map { ProbeRecorder.Gap(fromNs: $0, toNs: $1) }
        entry.gaps = Array(gaps.prefix(maximumGapsListed))
        entry.gapCount = gaps.count
        let achievedHz = entry.achievedHz ?? 0
        entry.requestedRateMissed = nominalHz > 0 && achievedHz < 0.9 * nominalHz
        let achieved = String(format: "%.4g Hz (median interval %@)", achievedHz, ResultPresenter.duration(Double(median)))
            + (entry.requestedRateMissed ? String(format: ", requested %.4g Hz: the requested rate could not be met", nominalHz) : "")
        let gapNote = gaps.isEmpty ? "" : String(format: "; %d gap(s) over three periods, longest %.3f s", gaps.count,
                                                 gaps.map(\.seconds).max() ?? 0)
        guard let goal else {
            entry.verdict = .noGoal
            entry.note = achieved + gapNote
            return entry
        }
        let goalText = "the goal of one sample every \(ResultPresenter.duration(Double(goal)))"
        if Double(median) <= Double(goal) * tolerance {
            entry.verdict = .met
            entry.note = "\(achieved), meets \(goalText)" + gapNote
        } else if let nominalNs, nominalNs > Double(goal) * tolerance {
            entry.verdict = .probeLimited
            entry.note = String(format: "%@, slower than %@: the probe samples at %g Hz at most", achieved, goalText, nominalHz) + gapNote
        } else {
            entry.verdict = .missed
            entry.note = "\(achieved), MISSES \(goalText)" + (nominalNs == nil ? "" : String(format: " although the probe runs at %g Hz: samples were lost", nominalHz)) + gapNote
        }
        return entry
    }
}
