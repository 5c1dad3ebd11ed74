import Foundation
import MLBenchCore
#if canImport(Glibc)
import Glibc
#endif

/// Probes sampling alongside a measurement. Each probe streams into its own
/// record; a probe that fails to start, or whose stream ends early (a meter
/// unplugged), is recorded with its error and the gap it leaves — from its last
/// sample to the end of the recording — and the others go on.
public final class ProbeRecorder: @unchecked Sendable {
    /// What one probe gave during a recording.
    public struct Record: Codable, Sendable, Equatable {
        /// The probe's name in the inventory.
        public var name: String
        public var channels: [ProbeChannel]
        public var rateHz: Double
        /// Every sample, as delivered (raw data is always kept).
        public var samples: [ProbeSample]
        public var startedNs: Int64
        public var stoppedNs: Int64
        /// Why the probe gave nothing, or stopped giving, before the recording ended.
        public var failure: String?
        /// The interval without samples that the failure left, on CLOCK_MONOTONIC.
        public var gap: Gap?
        /// Each channel's achieved sampling against the methodology's goals, and the
        /// gaps inside the recording (nil in results stored before it was judged).
        public var sampling: [ChannelSampling]?
    }

    /// An interval without samples.
    public struct Gap: Codable, Sendable, Equatable {
        public var fromNs: Int64
        public var toNs: Int64
        public init(fromNs: Int64, toNs: Int64) {
            self.fromNs = fromNs
            self.toNs = toNs
        }
        public var seconds: Double { Double(toNs - fromNs) / 1e9 }
    }

    private struct Running {
        var name: String
        var probe: any Probe
        var description: ProbeDescription
        var sink: ProbeSampleBuffer
        var failure: String?
    }

    private let probes: [(name: String, probe: any Probe)]
    private var running: [Running] = []
    private var startedNs: Int64 = 0

    public init(probes: [(name: String, probe: any Probe)]) { self.probes = probes }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// Starts every probe; one that cannot start is recorded as failed, not thrown.
    public func start() {
        startedNs = ProbeRecorder.now()
        running = probes.map { name, probe in
            let sink = ProbeSampleBuffer()
            do {
                let description = try probe.describe()
                try probe.start { sink.add($0) }
                return Running(name: name, probe: probe, description: description, sink: sink)
            } catch {
                return Running(name: name, probe: probe, description: ProbeDescription(channels: [], rateHz: 0), sink: sink,
                               failure: "did not start: \(error)")
            }
        }
    }

    /// Stops every probe and returns what each gave.
    public func stop() -> [Record] {
        let stoppedNs = ProbeRecorder.now()
        return running.map { entry in
            var failure = entry.failure
            if failure == nil {
                do { try entry.probe.stop() } catch { failure = "\(error)" }
            }
            let samples = entry.sink.all
            var gap: Gap?
            if failure != nil {
                // Nothing after the last sample (or at all) until the recording ended.
                gap = Gap(fromNs: samples.map(\.timestampNs).max() ?? startedNs, toNs: stoppedNs)
            }
            var record = Record(name: entry.name, channels: entry.description.channels, rateHz: entry.description.rateHz,
                                samples: samples, startedNs: startedNs, stoppedNs: stoppedNs, failure: failure, gap: gap)
            record.sampling = ChannelSampling.analyze(record)
            return record
        }
    }
}

/// Samples as a probe delivers them, from its own thread; read at any time.
public final class ProbeSampleBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [ProbeSample] = []

    public init() {}

    /// Appends a delivered batch (the probe's delivery callback).
    public func add(_ batch: [ProbeSample]) {
        lock.lock()
        samples += batch
        lock.unlock()
    }

    /// Everything delivered so far.
    public var all: [ProbeSample] {
        lock.lock()
        defer { lock.unlock() }
        return samples
    }

    /// How many samples were delivered so far.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return samples.count
    }
}
