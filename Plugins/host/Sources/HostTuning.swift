import Foundation
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// The tune step of a Linux host: the conditions that make timings quieter, each
/// recorded before it is changed and put back when the lab asks (at the end of
/// every experiment, however it ends).
///
/// - `governor`: the cpufreq governor of every CPU (sysfs);
/// - `swappiness`: `/proc/sys/vm/swappiness`;
/// - `drop_caches`: `true` drops the page cache, dentries and inodes before the run
///   (nothing to restore);
/// - `cpus`: the CPUs the runner is pinned to;
/// - `priority`: the runner's scheduling: `realtime` (SCHED_FIFO), `high` (nice -10),
///   `normal`, or a nice value from -20 to 19;
/// - `tune: true`: all of the above at once, where the host allows each: performance
///   governor, the runner on an isolated CPU (the last one when none is isolated),
///   real-time priority, swappiness 1, caches dropped. What the host does not allow is
///   reported as unavailable instead of failing; conditions named explicitly override
///   the tune defaults and fail when they cannot be applied.
struct HostTuning {
    /// What the runner gets when it starts: CPUs and priority.
    var cpus: [Int]?
    var priority: String?
    /// The state before each change, for `restore`.
    private(set) var before: [String: String] = [:]

    static let known = ["tune", "governor", "swappiness", "drop_caches", "cpus", "priority"]

    struct Outcome {
        var applied: [String: String] = [:]
        var unavailable: [String: String] = [:]
    }

    mutating func apply(_ requested: [String: String]) throws -> Outcome {
        var outcome = Outcome()
        var wanted = requested
        var optional = Set<String>()
        if let tune = wanted.removeValue(forKey: "tune") {
            guard let on = Bool(tune.lowercased()) else {
                throw PluginFailure(.invalidRequest, "condition 'tune': expected true or false, got '\(tune)'")
            }
            if on {
                for (name, value) in Self.tuneDefaults() where wanted[name] == nil {
                    wanted[name] = value
                    optional.insert(name)
                }
                outcome.applied["tune"] = "true"
            }
        }
        for (name, value) in wanted.sorted(by: { $0.key < $1.key }) {
            do {
                outcome.applied[name] = try apply(name, value)
            } catch let failure as PluginFailure where optional.contains(name) && failure.code != .invalidRequest {
                outcome.unavailable[name] = failure.message
            }
        }
        return outcome
    }

    private mutating func apply(_ name: String, _ value: String) throws -> String {
        switch name {
        case "cpus":
            let list = value.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            let count = ProcessInfo.processInfo.processorCount
            guard !list.isEmpty, list.allSatisfy({ $0 != nil && $0! >= 0 && $0! < count }) else {
                throw PluginFailure(.invalidRequest, "condition 'cpus': '\(value)' is not a list of this host's CPUs (0…\(count - 1))")
            }
            cpus = list.compactMap { $0 }
            return value
        case "priority":
            guard ["realtime", "high", "normal"].contains(value) || Int(value).map({ (-20...19).contains($0) }) == true else {
                throw PluginFailure(.invalidRequest, "condition 'priority': '\(value)' is not realtime, high, normal or a nice value from -20 to 19")
            }
            priority = value
            return value
        case "governor":
            let paths = Self.governorPaths()
            guard let first = paths.first else {
                throw PluginFailure(.unsupported, "condition 'governor': this host exposes no cpufreq governor")
            }
            if before["governor"] == nil, let current = HostFacts.read(first)?.trimmingCharacters(in: .whitespacesAndNewlines) {
                before["governor"] = current
            }
            try Self.write(value, to: paths, condition: "governor")
            return value
        case "swappiness":
            guard let number = Int(value), (0...200).contains(number) else {
                throw PluginFailure(.invalidRequest, "condition 'swappiness': '\(value)' is not an integer from 0 to 200")
            }
            let path = "/proc/sys/vm/swappiness"
            guard let current = HostFacts.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines) else {
                throw PluginFailure(.unsupported, "condition 'swappiness': \(path) cannot be read here")
            }
            if before["swappiness"] == nil { before["swappiness"] = current }
            try Self.write(String(number), to: [path], condition: "swappiness")
            return String(number)
        case "drop_caches":
            guard let on = Bool(value.lowercased()) else {
                throw PluginFailure(.invalidRequest, "condition 'drop_caches': expected true or false, got '\(value)'")
            }
            if on {
                sync()
                try Self.write("3", to: ["/proc/sys/vm/drop_caches"], condition: "drop_caches")
            }
            return on ? "dropped" : "false"
        default:
            throw PluginFailure(.unsupported, "condition '\(name)' cannot be controlled on the host board (it controls: \(Self.known.joined(separator: ", ")))")
        }
    }

    /// Puts back what was changed; returns what was restored.
    mutating func restore() throws -> [String: String] {
        var restored = [String: String]()
        var failures = [String]()
        if let governor = before["governor"] {
            do { try Self.write(governor, to: Self.governorPaths(), condition: "governor"); restored["governor"] = governor } catch { failures.append("\(error)") }
        }
        if let swappiness = before["swappiness"] {
            do { try Self.write(swappiness, to: ["/proc/sys/vm/swappiness"], condition: "swappiness"); restored["swappiness"] = swappiness } catch { failures.append("\(error)") }
        }
        before = [:]
        cpus = nil
        priority = nil
        if !failures.isEmpty {
            throw PluginFailure(.device, "cannot restore the host's conditions: \(failures.joined(separator: "; "))")
        }
        return restored
    }

    /// Pins and prioritises every thread of a runner that has just started (its
    /// runtime's threads, started later, inherit both), then reads both back.
    func applyToRunner(pid: Int32) -> [String: String] {
        var report = [String: String]()
        let tasks = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }
        let threads = tasks.isEmpty ? [pid] : tasks
        if let cpus {
            var set = cpu_set_t()
            for cpu in cpus { Self.cpuSet(cpu, &set) }
            let failed = threads.filter { Affinity.set($0, &set) != 0 }
            var actual = cpu_set_t()
            if failed.isEmpty, Affinity.get(pid, &actual) == 0 {
                report["runner_cpus"] = (0..<ProcessInfo.processInfo.processorCount).filter { Self.cpuIsSet($0, &actual) }
                    .map(String.init).joined(separator: ",")
            } else {
                report["runner_cpus"] = "not pinned: \(String(cString: strerror(errno)))"
            }
        }
        if let priority {
            report["runner_priority"] = Self.prioritise(threads, priority)
        }
        return report
    }

    private static func prioritise(_ threads: [Int32], _ priority: String) -> String {
        func nice(_ value: Int32) -> String? {
            for thread in threads where setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(thread), value) != 0 {
                return String(cString: strerror(errno))
            }
            return nil
        }
        switch priority {
        case "realtime":
            var parameter = sched_param(sched_priority: 50)
            if threads.allSatisfy({ sched_setscheduler($0, SCHED_FIFO, &parameter) == 0 }), sched_getscheduler(threads[0]) == SCHED_FIFO {
                return "realtime (SCHED_FIFO 50)"
            }
            // Real time is not allowed everywhere (containers, no CAP_SYS_NICE): high is the next best.
            let reason = String(cString: strerror(errno))
            return nice(-10).map { "normal (realtime refused: \(reason); nice -10 refused: \($0))" } ?? "high (nice -10; realtime refused: \(reason))"
        case "high":
            return nice(-10).map { "normal (nice -10 refused: \($0))" } ?? "high (nice -10)"
        case "normal":
            return "normal"
        default:
            let value = Int32(priority) ?? 0
            return nice(value).map { "normal (nice \(value) refused: \($0))" } ?? "nice \(value)"
        }
    }

    /// The tune step's choices for this host.
    static func tuneDefaults() -> [String: String] {
        let count = ProcessInfo.processInfo.processorCount
        // An isolated CPU (isolcpus=) runs nothing else; without one, the last CPU is the least busy by convention.
        let isolated = HostFacts.read("/sys/devices/system/cpu/isolated")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let cpu = isolated.split(separator: ",").first.flatMap { Int($0.split(separator: "-").first ?? "") } ?? (count - 1)
        return ["governor": "performance", "cpus": String(cpu), "priority": "realtime", "swappiness": "1", "drop_caches": "true"]
    }

    private static func governorPaths() -> [String] {
        let root = "/sys/devices/system/cpu"
        let cpus = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter {
            $0.hasPrefix("cpu") && Int($0.dropFirst(3)) != nil
        }
        return cpus.map { "\(root)/\($0)/cpufreq/scaling_governor" }.filter { FileManager.default.fileExists(atPath: $0) }.sorted()
    }

    private static func write(_ value: String, to paths: [String], condition: String) throws {
        for path in paths {
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw PluginFailure(.unsupported, "condition '\(condition)': cannot open \(path) for writing (\(String(cString: strerror(errno))))")
            }
            defer { try? handle.close() }
            do {
                try handle.write(contentsOf: Data(value.utf8))
            } catch {
                throw PluginFailure(.device, "condition '\(condition)': cannot write '\(value)' to \(path): \(error.localizedDescription)")
            }
        }
    }

    private static func cpuSet(_ cpu: Int, _ set: inout cpu_set_t) {
        withUnsafeMutableBytes(of: &set) { bytes in
            let words = bytes.bindMemory(to: UInt.self)
            words[cpu / UInt.bitWidth] |= 1 << UInt(cpu % UInt.bitWidth)
        }
    }

    private static func cpuIsSet(_ cpu: Int, _ set: inout cpu_set_t) -> Bool {
        withUnsafeBytes(of: &set) { bytes in
            bytes.bindMemory(to: UInt.self)[cpu / UInt.bitWidth] & (1 << UInt(cpu % UInt.bitWidth)) != 0
        }
    }
}

/// sched_setaffinity and sched_getaffinity: glibc declares them only under
/// _GNU_SOURCE, which Swift's Glibc module does not define, so they are looked up
/// by name once.
private enum Affinity {
    typealias Call = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32

    private static func lookup(_ name: String) -> Call? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }  // RTLD_DEFAULT
        return unsafeBitCast(symbol, to: Call.self)
    }

    nonisolated(unsafe) private static let setter = lookup("sched_setaffinity")
    nonisolated(unsafe) private static let getter = lookup("sched_getaffinity")

    static func set(_ thread: pid_t, _ mask: inout cpu_set_t) -> Int32 {
        guard let setter else { errno = ENOSYS; return -1 }
        return withUnsafeMutableBytes(of: &mask) { setter(thread, $0.count, $0.baseAddress!) }
    }

    static func get(_ thread: pid_t, _ mask: inout cpu_set_t) -> Int32 {
        guard let getter else { errno = ENOSYS; return -1 }
        return withUnsafeMutableBytes(of: &mask) { getter(thread, $0.count, $0.baseAddress!) }
    }
}
