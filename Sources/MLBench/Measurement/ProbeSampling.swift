import Foundation
import MLBenchCore

/// How densely each channel of a probe was sampled during a recording, against
/// the methodology's goals: power every 20 ms or finer, temperature every 100 ms
/// or finer, where the probe allows. Intervals without samples longer than three
/// expected periods are gaps: energy is not interpolated across them.
public struct ChannelSampling: Codable, Sendable, Equatable {
    public var channel: String
    public var unit: String
    public var samples: Int
    /// Samples per second over the span from the first to the last sample.
    public var achievedHz: Double?
    public var medianIntervalNs: Int64?
    public var maxIntervalNs: Int64?
    /// The longest interval the methodology allows for this unit (nil: no goal).
    public var goalIntervalNs: Int64?
    public var verdict: Verdict
    /// Intervals without samples, on CLOCK_MONOTONIC.
    public var gaps: [ProbeRecorder.Gap]
    public var note: String

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
    /// An interval longer than this many expected periods is a gap.
    static let gapPeriods = 3.0

    /// One entry per channel of `record`.
    public static func analyze(_ record: ProbeRecorder.Record) -> [ChannelSampling] {
        record.channels.enumerated().map { index, channel in
            let times = record.samples.lazy.filter { $0.channel == UInt32(index) }.map(\.timestampNs).sorted()
            return analyze(channel: channel, timestampsNs: times, nominalHz: record.rateHz)
        }
    }

    static func analyze(channel: ProbeChannel, timestampsNs times: [Int64], nominalHz: Double) -> ChannelSampling {
        let goal = goalIntervalsNs[channel.unit]
        var entry = ChannelSampling(channel: channel.name, unit: channel.unit, samples: times.count, achievedHz: nil,
                                    medianIntervalNs: nil, maxIntervalNs: nil, goalIntervalNs: goal,
                                    verdict: .tooFewSamples, gaps: [], note: "")
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
        entry.gaps = zip(times, times.dropFirst()).filter { Double($1 - $0) > gapPeriods * expected }
            .map { ProbeRecorder.Gap(fromNs: $0, toNs: $1) }
        let achieved = String(format: "%.1f Hz (median interval %@)", entry.achievedHz ?? 0, ResultPresenter.duration(Double(median)))
        let gaps = entry.gaps.isEmpty ? "" : String(format: "; %d gap(s), longest %.3f s", entry.gaps.count,
                                                    entry.gaps.map(\.seconds).max() ?? 0)
        guard let goal else {
            entry.verdict = .noGoal
            entry.note = achieved + gaps
            return entry
        }
        let goalText = "the goal of one sample every \(ResultPresenter.duration(Double(goal)))"
        if Double(median) <= Double(goal) * tolerance {
            entry.verdict = .met
            entry.note = "\(achieved), meets \(goalText)" + gaps
        } else if let nominalNs, nominalNs > Double(goal) * tolerance {
            entry.verdict = .probeLimited
            entry.note = String(format: "%@, slower than %@: the probe samples at %g Hz at most", achieved, goalText, nominalHz) + gaps
        } else {
            entry.verdict = .missed
            entry.note = "\(achieved), MISSES \(goalText)" + (nominalNs == nil ? "" : String(format: " although the probe runs at %g Hz: samples were lost", nominalHz)) + gaps
        }
        return entry
    }
}
