import Foundation
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// What the host tells about itself, read from /proc and /sys.
enum HostFacts {
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(cString: buffer)
    }

    static func machine() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func kernel() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func meminfo() -> (total: UInt64, available: UInt64) {
        var values = [String: UInt64]()
        for line in read("/proc/meminfo")?.split(separator: "\n") ?? [] {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kib = UInt64(parts[1]) {
                values[String(parts[0].dropLast())] = kib * 1024
            }
        }
        return (values["MemTotal"] ?? 0, values["MemAvailable"] ?? 0)
    }

    /// Observable conditions recorded into every result.
    static func observe() -> [String: String] {
        var facts = [String: String]()
        facts["kernel"] = kernel()
        facts["architecture"] = machine()
        facts["cpu_count"] = String(ProcessInfo.processInfo.processorCount)
        if let model = read("/proc/cpuinfo")?.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
            facts["cpu_model"] = model.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        }
        if let load = read("/proc/loadavg") {
            facts["load_average"] = load.split(separator: " ").prefix(3).joined(separator: " ")
        }
        let memory = meminfo()
        facts["memory_total_bytes"] = String(memory.total)
        facts["memory_available_bytes"] = String(memory.available)
        facts["governor"] = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unavailable"
        if let frequency = read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")?.trimmingCharacters(in: .whitespacesAndNewlines) {
            facts["cpu0_frequency_khz"] = frequency
        }
        for zone in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/thermal"))?.sorted() ?? [] where zone.hasPrefix("thermal_zone") {
            if let type = read("/sys/class/thermal/\(zone)/type")?.trimmingCharacters(in: .whitespacesAndNewlines),
               let milli = read("/sys/class/thermal/\(zone)/temp").flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                facts["temperature_\(type)_c"] = String(milli / 1000)
            }
        }
        if let uptime = read("/proc/uptime")?.split(separator: " ").first { facts["uptime_s"] = String(uptime) }
        return facts
    }

    static func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }
}
