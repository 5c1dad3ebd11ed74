import Foundation
import MLBenchCore

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
        /// Whose clock the probe stamped with ("host" or "board", as it declared), and
        /// what was added to host-clock times to put them on the runner's clock (the
        /// iterations' timeline): every time in the record is on that timeline.
        public var clock: String? = nil
        public var clockOffsetNs: Int64? = nil
        /// Each channel's achieved sampling against the requested rate and the
        /// methodology's goals, with the gaps inside the recording (nil in results
        /// stored before it was judged).
        public var sampling: [ChannelSampling]? = nil
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

    /// Starts every probe; one that cannot start is recorded as failed, not thrown.
    /// Then waits, up to `firstSampleTimeout` seconds, until every started probe has
    /// delivered a sample: a sampler that takes time to come up (a loop started over
    /// SSH on a board) must not miss the first iterations. Returns the names of the
    /// probes that had not delivered by then (they go on; their series starts late).
    @discardableResult
    public func start(firstSampleTimeout: Double = 5) -> [String] {
        startSampling()
        let deadline = monotonicNanoseconds() + Int64(firstSampleTimeout * 1e9)
        var waiting = running.filter { $0.failure == nil && $0.sink.count == 0 }
        while !waiting.isEmpty, monotonicNanoseconds() < deadline {
            usleep(2_000)
            waiting = waiting.filter { $0.sink.count == 0 }
        }
        return waiting.map(\.name)
    }

    private func startSampling() {
        startedNs = monotonicNanoseconds()
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

    /// Stops every probe and returns what each gave. With an `alignment`, every time
    /// in the records is moved onto the runner's clock: host-clock samples and the
    /// recording's own start and stop by it, board-clock samples left as they are.
    public func stop(alignment: ClockAlignment? = nil) -> [Record] {
        // Every probe stopped first: the recording ends after the last sample it delivered.
        let failures = running.map { entry -> String? in
            guard entry.failure == nil else { return entry.failure }
            do { try entry.probe.stop() } catch { return "\(error)" }
            return nil
        }
        let onRunner = { (hostNs: Int64) in alignment?.runnerTime(hostNs: hostNs) ?? hostNs }
        let (started, stopped) = (onRunner(startedNs), onRunner(monotonicNanoseconds()))
        return zip(running, failures).map { entry, failure in
            let onBoard = entry.description.clock == "board"
            var samples = entry.sink.all
            if let alignment, !onBoard {
                samples = samples.map { ProbeSample(timestampNs: alignment.runnerTime(hostNs: $0.timestampNs), channel: $0.channel, value: $0.value) }
            }
            var gap: Gap?
            if failure != nil {
                // Nothing after the last sample (or at all) until the recording ended.
                gap = Gap(fromNs: samples.map(\.timestampNs).max() ?? started, toNs: stopped)
            }
            var record = Record(name: entry.name, channels: entry.description.channels, rateHz: entry.description.rateHz, samples: samples,
                                startedNs: started, stoppedNs: stopped, failure: failure, gap: gap)
            record.clock = onBoard ? "board" : "host"
            if let alignment, !onBoard { record.clockOffsetNs = alignment.before.offsetNs }
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
