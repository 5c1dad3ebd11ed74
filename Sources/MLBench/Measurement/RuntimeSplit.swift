import MLBenchCore

/// Collects the runtime's own split of each iteration (`RunnerTimings.phasesNs`)
/// across the batches of a measurement. The split is kept only when every batch
/// gave every phase for every iteration: a partial split would pair phase values
/// with the wrong iterations.
public struct RuntimeSplit: Sendable, Equatable {
    public private(set) var phasesNs: [String: [Int64]] = [:]
    public private(set) var complete = true
    private var iterations = 0

    public init() {}

    public mutating func add(_ batch: RunnerTimings) {
        defer { iterations += batch.durationsNs.count }
        guard complete, let phases = batch.phasesNs, !phases.isEmpty,
              phases.values.allSatisfy({ $0.count == batch.durationsNs.count }),
              iterations == 0 || Set(phases.keys) == Set(phasesNs.keys) else {
            complete = false
            return
        }
        for (phase, values) in phases { phasesNs[phase, default: []] += values }
    }

    /// Each phase's values and summary, or nil when the runtime did not split every iteration.
    public var record: [String: ExperimentResult.PhaseRecord]? {
        guard complete, !phasesNs.isEmpty else { return nil }
        return phasesNs.mapValues { .init(durationsNs: $0, summary: Statistics.summarize($0.map(Double.init))) }
    }
}
