import Foundation
import LinuxBoardKit
import MLBenchPluginKit

/// INA226/INA260 rails (names are the hwmon `name`, the device-tree node name such as
/// `ina226_u76` or `ina260_u14`) through hwmon (the kernel's ina2xx driver, Documentation/hwmon/ina2xx.rst):
/// `/sys/class/hwmon/hwmon<n>/name`, `in1_input` bus voltage (mV), `curr1_input` (mA),
/// `power1_input` (µW). Other hwmon devices (PMBus regulators, the AMS) are left out.
public enum INA2xxRails {
    public static let patterns = ["/sys/class/hwmon/hwmon*/name", "/sys/class/hwmon/hwmon*/in1_input",
                                  "/sys/class/hwmon/hwmon*/curr1_input", "/sys/class/hwmon/hwmon*/power1_input"]

    /// The INA2xx devices among the hwmon folders; two with one name stay apart by their folder.
    public static func channels(_ files: [String: String]) -> [RailChannel] {
        var channels = [RailChannel]()
        var seen = [String: Int]()
        for (path, content) in files.sorted(by: { $0.key < $1.key }) where path.hasSuffix("/name") {
            let name = content.trimmingCharacters(in: .whitespacesAndNewlines)
            guard name.hasPrefix("ina2") else { continue }
            let folder = (path as NSString).deletingLastPathComponent
            seen[name, default: 0] += 1
            let unique = seen[name]! > 1 ? "\(name)_\((folder as NSString).lastPathComponent)" : name
            channels.append(RailChannel(name: unique, voltage: "\(folder)/in1_input", current: "\(folder)/curr1_input",
                                        power: files["\(folder)/power1_input"] != nil ? "\(folder)/power1_input" : nil, powerScale: 0.001))
        }
        return channels
    }

    public static func parse(_ files: [String: String]) throws -> [PowerRail] {
        try channels(files).map { try $0.read(files) }
    }
}

/// One DPU compute unit as `xdputil query` reports it.
public struct DPUCore: Equatable, Sendable {
    public var name: String
    public var architecture: String
    public var frequencyMHz: Int?
    public var fingerprint: String?
}

/// `xdputil query` prints a JSON object (Vitis AI 2.5/3.0 `xdputil`): "DPU IP Spec"
/// (core count, target version), "VAI Version" (library versions) and "kernels", one
/// entry per DPU compute unit with "name", "DPU Arch", "DPU Frequency (MHz)", "fingerprint".
public struct XDPUtilQuery: Equatable, Sendable {
    public var cores: [DPUCore]
    public var targetVersion: String?
    public var vartVersion: String?

    public static func parse(_ text: String) throws -> XDPUtilQuery {
        func fail(_ message: String) -> BoardFormatError { BoardFormatError(source: "xdputil query", message: message) }
        // xdputil may log lines before its JSON; the object starts at the first brace.
        guard let start = text.firstIndex(of: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any] else {
            throw fail("no JSON object in '\(text.prefix(160))'")
        }
        guard let kernels = object["kernels"] as? [[String: Any]] else { throw fail("no \"kernels\" list") }
        let cores = try kernels.enumerated().map { index, kernel -> DPUCore in
            guard let arch = kernel["DPU Arch"] as? String else { throw fail("kernel \(index) has no \"DPU Arch\"") }
            return DPUCore(name: kernel["name"] as? String ?? "DPU Core \(index)", architecture: arch,
                           frequencyMHz: (kernel["DPU Frequency (MHz)"] as? NSNumber)?.intValue, fingerprint: kernel["fingerprint"] as? String)
        }
        let spec = object["DPU IP Spec"] as? [String: Any]
        let versions = object["VAI Version"] as? [String: Any]
        return XDPUtilQuery(cores: cores, targetVersion: spec?["DPU Target Version"] as? String,
                            vartVersion: versions?["libvart-runner.so"] as? String)
    }
}

/// `/etc/os-release`: `NAME`, `VERSION` and `PRETTY_NAME` (PetaLinux writes
/// e.g. `PRETTY_NAME="PetaLinux 2022.2_release_S10071807 (honister)"`).
public enum OSRelease {
    public static func parse(_ text: String) -> [String: String] {
        var values = [String: String]()
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            values[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return values
    }
}
