import Foundation
import MLBenchPluginKit

/// An error in what a board's tools and files print, naming the source (a path, a command).
public struct BoardFormatError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

/// A power rail of an on-board current sensor (INA3221, INA226, INA260).
public struct PowerRail: Equatable, Sendable {
    public var name: String
    public var millivolts: Double?
    public var milliamps: Double?
    public var milliwatts: Double?

    public init(name: String, millivolts: Double?, milliamps: Double?, milliwatts: Double?) {
        self.name = name
        self.millivolts = millivolts
        self.milliamps = milliamps
        self.milliwatts = milliwatts
    }
}

/// Where one rail's readings are on the board: voltage (mV) and current (mA)
/// files, and a power file where the driver has one.
public struct RailChannel: Equatable, Sendable {
    public var name: String
    public var voltage: String
    public var current: String
    public var power: String?
    /// mW per unit of the power file (1 for mW, 0.001 for the µW of hwmon `power1_input`).
    public var powerScale: Double

    public init(name: String, voltage: String, current: String, power: String? = nil, powerScale: Double = 1) {
        self.name = name
        self.voltage = voltage
        self.current = current
        self.power = power
        self.powerScale = powerScale
    }

    /// Every file the channel reads.
    public var files: [String] { [voltage, current] + (power.map { [$0] } ?? []) }

    /// The rail's power from its files' values (path → number), in mW: the power
    /// file when there is one, else V × I.
    public func milliwatts(_ values: [String: Double]) -> Double? {
        if let power, let value = values[power] { return value * powerScale }
        guard let volts = values[voltage], let amps = values[current] else { return nil }
        return volts * amps / 1000
    }

    /// The rail's reading from `files` (path → text); a file that is not a number is an error naming it.
    public func read(_ files: [String: String]) throws -> PowerRail {
        var values = [String: Double]()
        for path in self.files { values[path] = try LinuxFacts.number(files, path) }
        return PowerRail(name: name, millivolts: values[voltage], milliamps: values[current], milliwatts: milliwatts(values))
    }
}

/// What every embedded Linux board tells the same way, from file contents
/// (path → text, as `RemoteLinuxBoard.readFiles` returns them).
public enum LinuxFacts {
    /// The files `model`, `meminfo` and `thermalZones` read.
    public static let patterns = ["/proc/device-tree/model", "/proc/meminfo",
                                  "/sys/class/thermal/thermal_zone*/type", "/sys/class/thermal/thermal_zone*/temp",
                                  "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
                                  "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"]

    /// The device-tree model string (it ends with a NUL byte), or nil.
    public static func model(_ files: [String: String]) -> String? {
        let text = files["/proc/device-tree/model"]?.trimmingCharacters(in: CharacterSet(charactersIn: "\0").union(.whitespacesAndNewlines))
        return text.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// MemTotal and MemAvailable of `/proc/meminfo`, in bytes (0 when absent).
    public static func meminfo(_ files: [String: String]) -> (total: UInt64, available: UInt64) {
        var values = [String: UInt64]()
        for line in (files["/proc/meminfo"] ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kib = UInt64(parts[1]) { values[String(parts[0].dropLast())] = kib * 1024 }
        }
        return (values["MemTotal"] ?? 0, values["MemAvailable"] ?? 0)
    }

    /// The board's RAM as a memory region (none when meminfo is missing).
    public static func ram(_ files: [String: String]) -> [MemoryRegion] {
        let memory = meminfo(files)
        guard memory.total > 0 else { return [] }
        return [MemoryRegion(name: "ram", sizeBytes: memory.total, usedBytes: memory.total - min(memory.available, memory.total))]
    }

    /// Thermal zones, `/sys/class/thermal/thermal_zone<n>/type` and `temp` (m°C):
    /// zone type → °C; a zone that reads a non-number is left out (some answer
    /// with an error while their sensor is off).
    public static func thermalZones(_ files: [String: String]) -> [String: Double] {
        var zones = [String: Double]()
        for (path, content) in files where path.hasSuffix("/type") && path.contains("/thermal_zone") {
            let folder = (path as NSString).deletingLastPathComponent
            let type = content.trimmingCharacters(in: .whitespacesAndNewlines)
            if let milli = files[folder + "/temp"].flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), !type.isEmpty {
                zones[type] = milli / 1000
            }
        }
        return zones
    }

    /// A sysfs file holding one number; nil when absent, an error naming the file when not a number.
    public static func number(_ files: [String: String], _ path: String) throws -> Double? {
        guard let text = files[path]?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        guard let value = Double(text) else { throw BoardFormatError(source: path, message: "'\(text.prefix(40))' is not a number") }
        return value
    }

    /// Rails as observations: `rail_<name>_mw`, `_mv`, `_ma`.
    public static func railFacts(_ rails: [PowerRail]) -> [String: String] {
        var facts = [String: String]()
        for rail in rails {
            if let value = rail.milliwatts { facts["rail_\(rail.name)_mw"] = String(value) }
            if let value = rail.millivolts { facts["rail_\(rail.name)_mv"] = String(value) }
            if let value = rail.milliamps { facts["rail_\(rail.name)_ma"] = String(value) }
        }
        return facts
    }

    /// The observations every Linux board records: RAM, governor, cpu0 clock,
    /// temperatures as `temperature_<zone>_c` (the cool-down reads those).
    public static func observed(_ files: [String: String]) -> [String: String] {
        var facts = [String: String]()
        let memory = meminfo(files)
        facts["memory_total_bytes"] = String(memory.total)
        facts["memory_available_bytes"] = String(memory.available)
        facts["governor"] = files["/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unavailable"
        if let frequency = files["/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"]?.trimmingCharacters(in: .whitespacesAndNewlines) {
            facts["cpu0_frequency_khz"] = frequency
        }
        for (zone, celsius) in thermalZones(files) { facts["temperature_\(zone)_c"] = String(celsius) }
        return facts
    }
}

/// The cpufreq governor of every CPU, as a condition any Linux board controls:
/// the state before is cpu0's governor; a value the board does not offer is refused.
public enum CPUGovernor {
    /// Sets `value` on every CPU; returns cpu0's governor before the change.
    @discardableResult
    public static func set(_ value: String, on board: RemoteLinuxBoard) throws -> String {
        let files = try board.readFiles(["/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
                                         "/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors"], step: "conditions")
        guard let first = files.filter({ $0.key.hasSuffix("/scaling_governor") }).sorted(by: { $0.key < $1.key }).first else {
            throw PluginFailure(.unsupported, "board '\(board.name)', condition 'governor': no cpufreq governor in /sys/devices/system/cpu")
        }
        if let available = files["/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors"]?.split(separator: " ")
            .map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }).filter({ !$0.isEmpty }), !available.contains(value) {
            throw PluginFailure(.invalidRequest, "condition 'governor': '\(value)' is not one of this board's governors (\(available.joined(separator: ", ")))")
        }
        let glob = shellQuote(board.file("/sys/devices/system/cpu")) + "/cpu*/cpufreq/scaling_governor"
        let script = "for f in \(glob); do echo \(shellQuote(value)) > \"$f\" || exit 1; done"
        try board.privilegedCommand("sh -c \(shellQuote(script))", condition: "governor")
        return first.value.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
