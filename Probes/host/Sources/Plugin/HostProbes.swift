import Foundation
import HostSensors
import MLBenchDeviceKit
import MLBenchPluginKit
import PerfDriver

/// Settings shared by the host probes.
struct IntervalSetting {
    static func nanoseconds(_ milliseconds: Double?, default value: Double) throws -> Int64 {
        let ms = milliseconds ?? value
        guard ms >= 1 else { throw PluginFailure(.invalidConfiguration, "setting 'interval_ms': must be at least 1, got \(ms)") }
        return Int64(ms * 1e6)
    }
}

/// A probe over a fixed list of readings taken every interval.
class PeriodicProbe: Probe, @unchecked Sendable {
    let channels: [ProbeChannel]
    let intervalNs: Int64
    let label: String
    private let slot = ProbeStreamSlot()

    init(label: String, channels: [ProbeChannel], intervalNs: Int64) {
        self.label = label
        self.channels = channels
        self.intervalNs = intervalNs
    }

    func describe() throws -> ProbeDescription { ProbeDescription(channels: channels, rateHz: 1e9 / Double(intervalNs)) }

    /// Reads every channel once, at `time`.
    func sample(_ time: Int64, into batch: ProbeStream.Batch) throws {}

    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        try slot.open(device: label).startPeriodic(intervalNs: intervalNs, deliver: deliver) { [self] time, batch in try sample(time, into: batch) }
    }

    func stop() throws { try slot.close() }
}

/// Thermal zones and hwmon sensors (temperatures, voltages, currents, power).
final class ThermalProbe: PeriodicProbe, @unchecked Sendable {
    struct Settings: Decodable {
        var intervalMs: Double?
        /// Only channels whose name contains one of these (case-insensitive).
        var include: [String]?
    }

    let files: [SensorFile]

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["interval_ms", "include"])
        var files = ThermalZones.discover() + Hwmon.discover()
        if files.isEmpty {
            throw PluginFailure(.device, "host sensors not available: this machine has no thermal zone (/sys/class/thermal/thermal_zone*/temp) and no hwmon sensor (/sys/class/hwmon/hwmon*/*_input)")
        }
        if let include = settings.include {
            files = files.filter { file in include.contains { file.name.lowercased().contains($0.lowercased()) } }
            guard !files.isEmpty else { throw PluginFailure(.invalidConfiguration, "setting 'include': no sensor name contains any of \(include)") }
        }
        self.files = files
        super.init(label: "host sensors", channels: files.map { ProbeChannel(name: $0.name, unit: $0.unit) },
                   intervalNs: try IntervalSetting.nanoseconds(settings.intervalMs, default: 100))
    }

    override func sample(_ time: Int64, into batch: ProbeStream.Batch) throws {
        for (index, file) in files.enumerated() {
            // A sensor that fails one read is skipped for that tick (the gap shows), not fatal.
            if let value = file.read() { batch.append(time, UInt32(index), value) }
        }
    }
}

/// RAPL energy counters: energy since start (J) and mean power over the last interval (W), per domain.
final class RAPLProbe: PeriodicProbe, @unchecked Sendable {
    struct Settings: Decodable { var intervalMs: Double? }

    let domains: [RAPLDomain]
    var accumulators: [EnergyAccumulator]
    var lastJoules: [Double]
    var lastTime: Int64?

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["interval_ms"])
        domains = RAPLDomain.discover()
        guard !domains.isEmpty else {
            throw PluginFailure(.device, "RAPL not available: no powercap domain (/sys/class/powercap/intel-rapl:*/energy_uj) on this machine")
        }
        for domain in domains {
            do { _ = try domain.read() } catch { throw PluginFailure(.device, "RAPL domain '\(domain.name)': \(error)") }
        }
        accumulators = domains.map { EnergyAccumulator(rangeMicrojoules: $0.rangeMicrojoules) }
        lastJoules = Array(repeating: 0, count: domains.count)
        super.init(label: "RAPL", channels: domains.flatMap { [ProbeChannel(name: "\($0.name) energy", unit: "J"),
                                                               ProbeChannel(name: "\($0.name) power", unit: "W")] },
                   intervalNs: try IntervalSetting.nanoseconds(settings.intervalMs, default: 100))
    }

    override func sample(_ time: Int64, into batch: ProbeStream.Batch) throws {
        for index in domains.indices {
            accumulators[index].add(try domains[index].read())
            let joules = accumulators[index].joules
            batch.append(time, UInt32(2 * index), joules)
            if let lastTime, time > lastTime {
                batch.append(time, UInt32(2 * index + 1), (joules - lastJoules[index]) / (Double(time - lastTime) * 1e-9))
            }
            lastJoules[index] = joules
        }
        lastTime = time
    }
}

/// Peak and current RSS of a process.
final class RSSProbe: PeriodicProbe, @unchecked Sendable {
    struct Settings: Decodable {
        var pid: Int32?
        var intervalMs: Double?
    }

    let pid: Int32

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["pid", "interval_ms"])
        pid = settings.pid ?? getpid()
        do { _ = try ProcessMemory.read(pid: pid) } catch { throw PluginFailure(.device, "RSS of process \(pid): \(error)") }
        super.init(label: "process \(pid)", channels: [ProbeChannel(name: "peak_rss", unit: "B"), ProbeChannel(name: "rss", unit: "B")],
                   intervalNs: try IntervalSetting.nanoseconds(settings.intervalMs, default: 100))
    }

    override func sample(_ time: Int64, into batch: ProbeStream.Batch) throws {
        let memory = try ProcessMemory.read(pid: pid)
        batch.append(time, 0, memory.peak)
        batch.append(time, 1, memory.current)
    }
}

/// perf_event_open counters of a process: every thread it has at start, and
/// the threads and children they create afterwards.
final class PerfProbe: PeriodicProbe, @unchecked Sendable {
    struct Settings: Decodable {
        var pid: Int32?
        var events: [String]?
        var intervalMs: Double?
    }

    let events: [PerfEvent]
    let counters: [[PerfCounter]]

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["pid", "events", "interval_ms"])
        let pid = settings.pid ?? getpid()
        let explicit = settings.events != nil
        var wanted = PerfEvent.hardware
        if let names = settings.events {
            wanted = try names.map { name in
                guard let event = PerfEvent(rawValue: name) else {
                    throw PluginFailure(.invalidConfiguration, "setting 'events': '\(name)' is not a counter this probe knows (\(PerfEvent.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return event
            }
        }
        let threads = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }.sorted()
        guard !threads.isEmpty else { throw PluginFailure(.device, "perf counters: process \(pid) does not exist") }
        var events: [PerfEvent] = []
        var counters: [[PerfCounter]] = []
        var unavailable: [String] = []
        for event in wanted {
            do {
                counters.append(try threads.map { try PerfCounter(event, thread: $0, target: "process \(pid)") })
                events.append(event)
            } catch let error as PerfError {
                // Asked for by name, a missing counter is an error; among the defaults it is left out.
                if explicit || !error.notAvailable { throw PluginFailure(.device, "\(error)") }
                unavailable.append(event.rawValue)
            }
        }
        guard !events.isEmpty else {
            throw PluginFailure(.device, "perf counters not available: the kernel offers none of \(unavailable.joined(separator: ", ")) on this machine (no hardware PMU, as in many VMs); software counters (task_clock, context_switches, page_faults) can be asked for with 'events'")
        }
        self.events = events
        self.counters = counters
        super.init(label: "perf counters of process \(pid)", channels: events.map { ProbeChannel(name: $0.rawValue, unit: $0.unit) },
                   intervalNs: try IntervalSetting.nanoseconds(settings.intervalMs, default: 100))
    }

    override func sample(_ time: Int64, into batch: ProbeStream.Batch) throws {
        for (index, perThread) in counters.enumerated() {
            batch.append(time, UInt32(index), try perThread.reduce(0) { $0 + (try $1.read()) })
        }
    }
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "host-probes", version: "1.0.0",
        description: "The host's own sensors: perf counters of a process, thermal zones and hwmon, RAPL energy, peak RSS",
        factories: [.probe("perf") { try PerfProbe($0) }, .probe("thermal") { try ThermalProbe($0) },
                    .probe("rapl") { try RAPLProbe($0) }, .probe("rss") { try RSSProbe($0) }])
}
