import Foundation

// The host's own sensors as the kernel publishes them in sysfs and procfs:
// where the files are, what unit each holds, how to read them. The roots are
// parameters so that recorded trees in the real formats can stand in for /sys.

/// One value read from one file and scaled to SI units.
public struct SensorFile: Equatable, Sendable {
    /// The channel name ("thermal_zone0 x86_pkg_temp", "coretemp Core 0", ...).
    public var name: String
    public var unit: String
    public var path: String
    /// Multiplies the integer in the file (0.001 for m°C → °C).
    public var scale: Double

    public init(name: String, unit: String, path: String, scale: Double) {
        self.name = name
        self.unit = unit
        self.path = path
        self.scale = scale
    }

    /// The value now; nil when the file cannot be read or holds no integer
    /// (a sensor that is briefly unavailable reads as an error).
    public func read() -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let raw = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return raw * scale
    }
}

func readText(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

func entries(_ folder: String, prefix: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix(prefix) }
        .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
}

public enum ThermalZones {
    /// Every thermal zone: `<root>/thermal_zoneN/temp` in m°C, named with its type.
    public static func discover(root: String = "/sys/class/thermal") -> [SensorFile] {
        entries(root, prefix: "thermal_zone").compactMap { zone in
            let folder = "\(root)/\(zone)"
            guard FileManager.default.fileExists(atPath: "\(folder)/temp") else { return nil }
            let type = readText("\(folder)/type") ?? "unknown"
            return SensorFile(name: "\(zone) \(type)", unit: "°C", path: "\(folder)/temp", scale: 0.001)
        }
    }
}

public enum Hwmon {
    /// The sensor kinds of the hwmon ABI: file prefix, unit, scale to SI.
    static let kinds: [(prefix: String, unit: String, scale: Double)] = [
        ("temp", "°C", 0.001), ("in", "V", 0.001), ("curr", "A", 0.001), ("power", "W", 1e-6), ("energy", "J", 1e-6), ("fan", "RPM", 1),
    ]

    /// Every `<kind>N_input` of every `<root>/hwmonM`, named "<chip name> <label or file>".
    public static func discover(root: String = "/sys/class/hwmon") -> [SensorFile] {
        entries(root, prefix: "hwmon").flatMap { hwmon -> [SensorFile] in
            let folder = "\(root)/\(hwmon)"
            let chip = readText("\(folder)/name") ?? hwmon
            return entries(folder, prefix: "").compactMap { file -> SensorFile? in
                guard file.hasSuffix("_input"), let kind = kinds.first(where: { file.hasPrefix($0.prefix) }) else { return nil }
                let base = String(file.dropLast("_input".count))
                guard Int(base.dropFirst(kind.prefix.count)) != nil else { return nil }
                let label = readText("\(folder)/\(base)_label") ?? base
                return SensorFile(name: "\(hwmon) \(chip) \(label)", unit: kind.unit, path: "\(folder)/\(file)", scale: kind.scale)
            }
        }
    }
}

/// A RAPL domain of the powercap framework: a cumulative energy counter in µJ
/// that wraps at `max_energy_range_uj`.
public struct RAPLDomain: Equatable, Sendable {
    public var name: String
    public var energyPath: String
    /// The counter wraps to 0 after this many µJ.
    public var rangeMicrojoules: Double

    /// The domains under `<root>/intel-rapl:*` (packages and their subzones).
    public static func discover(root: String = "/sys/class/powercap") -> [RAPLDomain] {
        entries(root, prefix: "intel-rapl:").compactMap { zone in
            let folder = "\(root)/\(zone)"
            guard FileManager.default.fileExists(atPath: "\(folder)/energy_uj") else { return nil }
            let name = readText("\(folder)/name") ?? zone
            let range = readText("\(folder)/max_energy_range_uj").flatMap(Double.init) ?? Double(UInt64.max)
            return RAPLDomain(name: "\(zone) \(name)", energyPath: "\(folder)/energy_uj", rangeMicrojoules: range)
        }
    }

    /// The counter now, in µJ.
    public func read() throws -> Double {
        guard let text = readText(energyPath) else {
            // energy_uj is readable by root only since the PLATYPUS fix (CVE-2020-8694).
            throw HostSensorError(path: energyPath, detail: FileManager.default.isReadableFile(atPath: energyPath)
                                  ? "unreadable" : "not readable by this user (root only on most kernels since CVE-2020-8694)")
        }
        guard let value = Double(text) else { throw HostSensorError(path: energyPath, detail: "'\(text)' is not a number") }
        return value
    }
}

/// Accumulates a wrapping energy counter into joules since the first reading.
public struct EnergyAccumulator: Sendable {
    public let rangeMicrojoules: Double
    private var last: Double?
    public private(set) var joules = 0.0

    public init(rangeMicrojoules: Double) { self.rangeMicrojoules = rangeMicrojoules }

    /// Adds a reading (µJ); a reading below the previous one means the counter wrapped once.
    public mutating func add(_ microjoules: Double) {
        if let last {
            let delta = microjoules >= last ? microjoules - last : rangeMicrojoules - last + microjoules
            joules += delta * 1e-6
        }
        last = microjoules
    }
}

/// A file that could not be used.
public struct HostSensorError: Error, Sendable, CustomStringConvertible, Equatable {
    public var path: String
    public var detail: String
    public var description: String { "\(path): \(detail)" }
}

public enum ProcessMemory {
    /// Peak and current resident set size of a process in bytes, from
    /// `<proc>/<pid>/status` (VmHWM, VmRSS in kB).
    public static func read(pid: Int32, proc: String = "/proc") throws -> (peak: Double, current: Double) {
        let path = "\(proc)/\(pid)/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw HostSensorError(path: path, detail: "cannot be read (has process \(pid) ended?)")
        }
        func field(_ name: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first }
                .flatMap { Double($0) }.map { $0 * 1024 }
        }
        guard let peak = field("VmHWM"), let current = field("VmRSS") else {
            throw HostSensorError(path: path, detail: "has no VmHWM/VmRSS lines (a kernel thread?)")
        }
        return (peak, current)
    }
}
