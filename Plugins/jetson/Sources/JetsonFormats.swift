import Foundation
import LinuxBoardKit

/// One line of `tegrastats`, in both formats:
///
/// - JetPack 4 (L4T R32), e.g. a Nano: rails as `POM_5V_IN 2545/2547` (mW without
///   unit, current/average), GPU as `GR3D_FREQ 0%@76` or `GR3D_FREQ 0%`. Format as
///   in NVIDIA's L4T R32 "tegrastats Utility" appendix and as recorded in public
///   scripts (e.g. `RAM 1766/3964MB (lfb 197x4MB) SWAP 0/2048MB (cached 0MB) CPU
///   [24%@1224,15%@1224,13%@1224,10%@1224] EMC_FREQ 0% GR3D_FREQ 0% PLL@21C CPU@25C
///   … POM_5V_IN 2545/2547 POM_5V_GPU 0/0 POM_5V_CPU 549/529`).
/// - JetPack 5/6 (L4T R35/R36), e.g. an Orin: an optional `MM-DD-YYYY HH:MM:SS`
///   prefix, rails with units `VDD_IN 5139mW/5139mW`, GPU per GPC as
///   `GR3D_FREQ 0%@[305,305]`, CPUs possibly `off`, temperatures like `tj@46.781C`
///   and `-256C` for a sensor that is not read.
public struct TegraStatsLine: Equatable, Sendable {
    public var ramUsedMB: Int
    public var ramTotalMB: Int
    public var swapUsedMB: Int?
    /// Per CPU: load in percent and frequency in MHz; nil for a CPU that is off.
    public var cpus: [(load: Int, mhz: Int?)?]
    public var emcLoadPercent: Int?
    public var emcMHz: Int?
    public var gpuLoadPercent: Int?
    public var gpuMHz: Int?
    /// Sensor name → °C (sensors that read -256 are left out: not present).
    public var temperaturesC: [String: Double]
    /// Rail name → (instantaneous, average) in mW.
    public var railsMW: [String: (now: Double, average: Double)]

    public static func == (a: TegraStatsLine, b: TegraStatsLine) -> Bool {
        a.ramUsedMB == b.ramUsedMB && a.ramTotalMB == b.ramTotalMB && a.swapUsedMB == b.swapUsedMB
            && a.cpus.map { $0.map { "\($0.load)@\($0.mhz ?? -1)" } ?? "off" } == b.cpus.map { $0.map { "\($0.load)@\($0.mhz ?? -1)" } ?? "off" }
            && a.emcLoadPercent == b.emcLoadPercent && a.emcMHz == b.emcMHz && a.gpuLoadPercent == b.gpuLoadPercent
            && a.gpuMHz == b.gpuMHz && a.temperaturesC == b.temperaturesC
            && a.railsMW.mapValues { [$0.now, $0.average] } == b.railsMW.mapValues { [$0.now, $0.average] }
    }

    public static func parse(_ line: String) throws -> TegraStatsLine {
        func fail(_ message: String) -> BoardFormatError {
            BoardFormatError(source: "tegrastats", message: "\(message) in '\(line.prefix(160))'")
        }
        let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let ramIndex = tokens.firstIndex(of: "RAM"), ramIndex + 1 < tokens.count else { throw fail("no 'RAM used/totalMB'") }
        let ram = tokens[ramIndex + 1].replacingOccurrences(of: "MB", with: "").split(separator: "/")
        guard ram.count == 2, let used = Int(ram[0]), let total = Int(ram[1]) else { throw fail("RAM is not 'used/totalMB'") }
        var result = TegraStatsLine(ramUsedMB: used, ramTotalMB: total, swapUsedMB: nil, cpus: [], emcLoadPercent: nil, emcMHz: nil,
                                    gpuLoadPercent: nil, gpuMHz: nil, temperaturesC: [:], railsMW: [:])
        var index = ramIndex + 2
        while index < tokens.count {
            let token = tokens[index]
            let next = index + 1 < tokens.count ? tokens[index + 1] : nil
            switch token {
            case "SWAP":
                result.swapUsedMB = next.flatMap { Int($0.split(separator: "/").first ?? "") }
                index += 2
                continue
            case "CPU" where next?.hasPrefix("[") == true:
                let inner = next!.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                result.cpus = try inner.split(separator: ",").map { entry -> (load: Int, mhz: Int?)? in
                    if entry == "off" { return nil }
                    let parts = entry.split(separator: "@")
                    guard let load = Int(parts[0].dropLast()), parts[0].hasSuffix("%") else { throw fail("CPU entry '\(entry)' is not load%@MHz") }
                    return (load, parts.count > 1 ? Int(parts[1]) : nil)
                }
                index += 2
                continue
            case "EMC_FREQ", "GR3D_FREQ":
                guard let value = next else { throw fail("\(token) has no value") }
                let (load, mhz) = try Self.loadAndFrequency(value, fail)
                if token == "EMC_FREQ" { (result.emcLoadPercent, result.emcMHz) = (load, mhz) } else { (result.gpuLoadPercent, result.gpuMHz) = (load, mhz) }
                index += 2
                continue
            default:
                break
            }
            if let at = token.firstIndex(of: "@"), token.hasSuffix("C"), let celsius = Double(token[token.index(after: at)...].dropLast()) {
                // Temperatures: NAME@VALUEC; -256 marks a sensor that is not read.
                if celsius > -256 { result.temperaturesC[String(token[..<at])] = celsius }
            } else if let value = next, token.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" }), token.first?.isLetter == true,
                      value.contains("/") {
                // Rails: NAME now/average, with "mW" units (JetPack 5/6) or without (JetPack 4).
                let parts = value.replacingOccurrences(of: "mW", with: "").split(separator: "/")
                if parts.count == 2, let now = Double(parts[0]), let average = Double(parts[1]) {
                    result.railsMW[token] = (now, average)
                    index += 2
                    continue
                }
            }
            index += 1
        }
        return result
    }

    /// `12%@1300`, `0%`, `0%@[305,305]` (the first GPC's clock is kept).
    private static func loadAndFrequency(_ text: String, _ fail: (String) -> BoardFormatError) throws -> (Int, Int?) {
        let parts = text.split(separator: "@", maxSplits: 1)
        guard parts[0].hasSuffix("%"), let load = Int(parts[0].dropLast()) else { throw fail("'\(text)' is not load%@MHz") }
        guard parts.count == 2 else { return (load, nil) }
        let clock = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").first
        return (load, clock.flatMap { Int($0) })
    }
}

/// What `nvpmodel -q` prints: `NV Power Mode: MAXN` then the mode id on its own
/// line (JetPack 5/6 may print `NV Fan Mode:quiet` first). Format per NVIDIA's
/// Jetson Linux Developer Guide, "Power Management", nvpmodel section.
public struct NVPModelQuery: Equatable, Sendable {
    public var name: String
    public var id: Int

    public static func parse(_ text: String) throws -> NVPModelQuery {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let modeIndex = lines.firstIndex(where: { $0.hasPrefix("NV Power Mode:") }) else {
            throw BoardFormatError(source: "nvpmodel -q", message: "no 'NV Power Mode:' line in '\(text.prefix(200))'")
        }
        let name = lines[modeIndex].dropFirst("NV Power Mode:".count).trimmingCharacters(in: .whitespaces)
        guard let id = lines[(modeIndex + 1)...].lazy.compactMap({ Int($0) }).first else {
            throw BoardFormatError(source: "nvpmodel -q", message: "no mode number after 'NV Power Mode: \(name)'")
        }
        return NVPModelQuery(name: name, id: id)
    }
}

/// The Jetson's INA3221 rails, read from sysfs file contents (path → text).
///
/// - JetPack 4: the downstream `ina3221x` iio driver,
///   `/sys/bus/i2c/drivers/ina3221x/<bus>-00<addr>/iio:device<n>/rail_name_<c>`,
///   `in_voltage<c>_input` (mV), `in_current<c>_input` (mA), `in_power<c>_input` (mW),
///   channels 0–2.
/// - JetPack 5/6: the mainline `ina3221` hwmon driver (Documentation/hwmon/ina3221.rst),
///   `/sys/bus/i2c/drivers/ina3221/<bus>-00<addr>/hwmon/hwmon<n>/in<c>_label`,
///   `in<c>_input` (bus mV), `curr<c>_input` (mA), channels 1–3; power is V × I. A
///   label "NC" is an unconnected channel; in7/curr4 (the sum channel) are skipped.
public enum INA3221Rails {
    /// The globs that cover both layouts, for one round trip.
    public static let patterns = [
        "/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*",
        "/sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_voltage*_input",
        "/sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_current*_input",
        "/sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_power*_input",
        "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label",
        "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_input",
        "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/curr*_input",
    ]

    /// The connected channels named in `files` (labels; NC and the sum channel left out).
    public static func channels(_ files: [String: String]) -> [RailChannel] {
        var channels = [RailChannel]()
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            let folder = (path as NSString).deletingLastPathComponent
            let file = (path as NSString).lastPathComponent
            let label = content.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !label.isEmpty, label != "NC" else { continue }
            if file.hasPrefix("rail_name_") {
                let channel = file.dropFirst("rail_name_".count)
                channels.append(RailChannel(name: label, voltage: "\(folder)/in_voltage\(channel)_input", current: "\(folder)/in_current\(channel)_input",
                                        power: "\(folder)/in_power\(channel)_input"))
            } else if file.hasPrefix("in"), file.hasSuffix("_label"), folder.contains("/hwmon/") {
                let channel = file.dropFirst(2).dropLast("_label".count)
                guard let index = Int(channel), (1...3).contains(index) else { continue }
                channels.append(RailChannel(name: label, voltage: "\(folder)/in\(channel)_input", current: "\(folder)/curr\(channel)_input"))
            }
        }
        return channels
    }

    public static func parse(_ files: [String: String]) throws -> [PowerRail] {
        try channels(files).map { try $0.read(files) }
    }
}

/// `/etc/nv_tegra_release`, first line like `# R35 (release), REVISION: 4.1, GCID: …`.
public struct L4TRelease: Equatable, Sendable {
    public var major: Int
    public var revision: String

    public var version: String { "\(major).\(revision)" }
    /// The JetPack generation of this L4T: R32 → 4, R34/R35 → 5, R36 → 6.
    public var jetpack: Int? {
        switch major {
        case 32: return 4
        case 34, 35: return 5
        case 36: return 6
        default: return nil
        }
    }

    public static func parse(_ text: String) throws -> L4TRelease {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard let r = line.range(of: "# R"), let comma = line[r.upperBound...].firstIndex(of: " "),
              let major = Int(line[r.upperBound..<comma]), let revision = line.range(of: "REVISION: ") else {
            throw BoardFormatError(source: "/etc/nv_tegra_release", message: "'\(line.prefix(120))' is not '# R<major> (release), REVISION: <x.y>, …'")
        }
        let value = line[revision.upperBound...].prefix { $0 != "," }
        return L4TRelease(major: major, revision: String(value))
    }
}
