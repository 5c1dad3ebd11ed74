import Foundation
import MLBenchCore

/// Energy per inference from a power probe recorded beside the measurement:
/// the power of each channel in watts, linearly interpolated between its samples
/// (both on CLOCK_MONOTONIC, the clock of the iteration timestamps), integrated
/// over each measured iteration's window. An iteration outside the samples (before
/// the first, after the last, or across a gap: a failure's or a sampling gap of
/// `ChannelSampling`) is counted as uncovered, never guessed.
public enum EnergyPerInference {
    /// One record per channel measured in watts.
    public static func analyze(_ record: ProbeRecorder.Record, startsNs: [Int64], durationsNs: [Int64]) -> [EnergyRecord] {
        record.channels.enumerated().compactMap { index, channel -> EnergyRecord? in
            guard channel.unit == "W" else { return nil }
            let samples = record.samples.filter { $0.channel == UInt32(index) }.sorted { $0.timestampNs < $1.timestampNs }
            // No power is interpolated across the failure's gap, nor across an interval
            // between samples that the channel's sampling judged a gap (all of them, not
            // only the ones the record lists).
            let sampling = record.sampling.flatMap { $0.indices.contains(index) ? $0[index] : nil }
            var joules = [Double]()
            var uncovered = 0
            var covered = 0.0  // ns of the iterations whose energy is known
            for (start, duration) in zip(startsNs, durationsNs) {
                let end = start + duration
                let inGap = record.gap.map { start < $0.toNs && end > $0.fromNs } ?? false
                if !inGap, let energy = integrate(samples, from: start, to: end, maxIntervalNs: sampling?.gapThresholdNs) {
                    joules.append(energy)
                    covered += Double(duration)
                } else {
                    uncovered += 1
                }
            }
            let sorted = joules.sorted()
            let note = joules.isEmpty
                ? "no measured iteration falls within the samples of \(record.name).\(channel.name)"
                : String(format: "%d of %d iterations within the samples; median %@ per inference", joules.count,
                         startsNs.count, formatJoules(Statistics.quantile(sorted: sorted, 0.5)))
            return EnergyRecord(probe: record.name, channel: channel.name, iterations: joules.count, uncoveredIterations: uncovered,
                                medianJ: sorted.isEmpty ? nil : Statistics.quantile(sorted: sorted, 0.5),
                                meanJ: sorted.isEmpty ? nil : sorted.reduce(0, +) / Double(sorted.count),
                                meanPowerW: sorted.isEmpty || covered == 0 ? nil : sorted.reduce(0, +) / (covered / 1e9),
                                sampleRateHz: record.rateHz, note: note)
        }
    }

    /// ∫ P dt over [from, to] in joules, P linear between samples; nil when the
    /// samples do not span the window, or when the window meets an interval between
    /// samples longer than `maxIntervalNs` (a gap: the line across it is a guess).
    static func integrate(_ samples: [ProbeSample], from: Int64, to: Int64, maxIntervalNs: Int64? = nil) -> Double? {
        guard let first = samples.first, let last = samples.last, first.timestampNs <= from, last.timestampNs >= to, to >= from else {
            return nil
        }
        // The last sample at or before `from` (binary search: samples are sorted by time).
        var low = 0, high = samples.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if samples[middle].timestampNs <= from { low = middle } else { high = middle - 1 }
        }
        func power(at t: Int64, between a: ProbeSample, and b: ProbeSample) -> Double {
            guard b.timestampNs > a.timestampNs else { return a.value }
            return a.value + (b.value - a.value) * Double(t - a.timestampNs) / Double(b.timestampNs - a.timestampNs)
        }
        var energy = 0.0
        var index = low
        var t = from
        while t < to, index + 1 < samples.count {
            let a = samples[index], b = samples[index + 1]
            if let maxIntervalNs, b.timestampNs - a.timestampNs > maxIntervalNs { return nil }
            let segmentEnd = min(to, b.timestampNs)
            if segmentEnd > t {
                energy += 0.5 * (power(at: t, between: a, and: b) + power(at: segmentEnd, between: a, and: b)) * Double(segmentEnd - t) / 1e9
                t = segmentEnd
            }
            index += 1
        }
        return energy
    }

    static func formatJoules(_ joules: Double) -> String {
        switch abs(joules) {
        case 1...: return String(format: "%.3f J", joules)
        case 1e-3...: return String(format: "%.3f mJ", joules * 1e3)
        default: return String(format: "%.3f µJ", joules * 1e6)
        }
    }
}

/// Energy per inference of one power channel.
public struct EnergyRecord: Codable, Sendable, Equatable {
    public var probe: String
    public var channel: String
    /// Iterations whose window lies within the probe's samples, and those that do not.
    public var iterations: Int
    public var uncoveredIterations: Int
    public var medianJ: Double?
    public var meanJ: Double?
    /// The mean power over the covered iterations' windows.
    public var meanPowerW: Double?
    /// The probe's declared rate: at 100 S/s an iteration of microseconds sits between
    /// two samples, and its energy is the interpolated power times its duration.
    public var sampleRateHz: Double
    public var note: String
}
