import Foundation
import GPIODriver
import MLBenchCore
import USBDriver

/// What `mlbench devices scan` finds: the USB devices that a plugin on the
/// search path declares it drives (`usb_devices` in its manifest), and the GPIO
/// chips, each with the inventory entry that would use it. The core knows no
/// vendor: the ids come from the manifests, and no plugin code is loaded.
public struct DeviceScan: Sendable {
    /// A connected USB device that a plugin drives.
    public struct USBFinding: Sendable, Equatable {
        public var id: String
        public var model: String
        public var plugin: String
        public var kind: String
        public var role: Role
        public var bus: UInt8
        public var address: UInt8
        /// The serial number string, when the device has one and it could be read.
        public var serial: String?
        /// Why no serial is shown, when none is.
        public var serialNote: String?
        /// Whether the plugin takes a `serial` setting.
        public var selectsBySerial: Bool
    }

    /// A GPIO chip, and the plugin that can drive its lines.
    public struct GPIOFinding: Sendable, Equatable {
        public var chip: GPIOChip.Info
        public var plugin: String
        public var kind: String
        public var role: Role
    }

    public var usb: [USBFinding] = []
    public var gpio: [GPIOFinding] = []
    /// The USB ids looked for, with the plugins declaring them.
    public var wanted: [String: [String]] = [:]
    /// What could not be looked at (libusb unavailable, ...).
    public var problems: [String] = []

    /// Scans the buses for what the catalog's plugins declare.
    public static func run(catalog: PluginCatalog, sysfs: String = "/sys/bus/usb/devices") -> DeviceScan {
        var scan = DeviceScan()
        var byID: [USBID: [(plugin: String, provision: PluginManifest.Provision, model: String)]] = [:]
        var gpioKinds: [(String, PluginManifest.Provision)] = []
        for name in catalog.plugins.keys.sorted() {
            for provision in catalog.plugins[name]!.manifest.provides {
                for (text, model) in (provision.usbDevices ?? [:]).sorted(by: { $0.key < $1.key }) {
                    guard let id = USBID(text) else {
                        scan.problems.append("plugin '\(name)' declares usb device '\(text)', which is not vvvv:pppp in hex")
                        continue
                    }
                    byID[id, default: []].append((name, provision, model))
                    scan.wanted[id.description, default: []].append(name)
                }
                if provision.gpioChips == true { gpioKinds.append((name, provision)) }
            }
        }
        if !byID.isEmpty {
            do {
                let context = try USBContext()
                for device in try context.devices(matching: Set(byID.keys)).sorted(by: { ($0.bus, $0.address) < ($1.bus, $1.address) }) {
                    let (serial, note) = serialNumber(of: device, sysfs: sysfs)
                    for user in byID[device.id] ?? [] {
                        scan.usb.append(USBFinding(id: device.id.description, model: user.model, plugin: user.plugin, kind: user.provision.kind,
                                                   role: user.provision.role, bus: device.bus, address: device.address,
                                                   serial: serial, serialNote: note,
                                                   selectsBySerial: user.provision.settings?["serial"] != nil))
                    }
                }
            } catch {
                scan.problems.append("USB: \(error)")
            }
        }
        for chip in GPIOChip.available() {
            for (plugin, provision) in gpioKinds {
                scan.gpio.append(GPIOFinding(chip: chip, plugin: plugin, kind: provision.kind, role: provision.role))
            }
        }
        return scan
    }

    /// The serial string: from sysfs when it is there (no need to open the
    /// device, or to have the right to), else from the device itself.
    static func serialNumber(of device: USBDevice, sysfs: String) -> (String?, String?) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: sysfs)) ?? []
        for entry in entries {
            let folder = "\(sysfs)/\(entry)/"
            func read(_ name: String) -> String? {
                (try? String(contentsOfFile: folder + name, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard read("busnum").flatMap({ UInt8($0) }) == device.bus, read("devnum").flatMap({ UInt8($0) }) == device.address else { continue }
            if let serial = read("serial"), !serial.isEmpty { return (serial, nil) }
            break
        }
        do {
            let serial = try device.open().serialNumber()
            return serial.isEmpty ? (nil, "no USB serial number") : (serial, nil)
        } catch {
            return (nil, "serial not readable: \(error)")
        }
    }

    /// Whether anything was found.
    public var isEmpty: Bool { usb.isEmpty && gpio.isEmpty }

    /// The report: what was found, then inventory entries to paste.
    public func render() -> String {
        var lines: [String] = []
        if isEmpty {
            let ids = wanted.keys.sorted()
            lines.append("nothing was found: no supported USB device (looked for \(ids.isEmpty ? "none: no plugin declares USB devices" : ids.joined(separator: ", "))) and no GPIO chip (/dev/gpiochip*)")
        }
        if !usb.isEmpty {
            lines.append("USB devices:")
            for finding in usb {
                let serial = finding.serial.map { "serial \($0)" } ?? "(\(finding.serialNote ?? "no serial"))"
                lines.append("  \(finding.id)  \(finding.model)  \(serial)  bus \(finding.bus) address \(finding.address)  → plugin \(finding.plugin) (\(finding.role) '\(finding.kind)')")
            }
        }
        if !gpio.isEmpty {
            lines.append("GPIO chips:")
            for finding in gpio {
                lines.append("  \(finding.chip.name) [\(finding.chip.label)] \(finding.chip.lineCount) lines, \(finding.chip.path)  → plugin \(finding.plugin) (\(finding.role) '\(finding.kind)')")
            }
        }
        problems.forEach { lines.append("problem: \($0)") }
        if !isEmpty {
            lines.append("")
            lines.append("inventory entries (add them to your inventory, rename at will):")
            lines += snippet()
        }
        return lines.joined(separator: "\n")
    }

    /// YAML for the inventory, grouped by section.
    func snippet() -> [String] {
        var sections: [String: [String]] = [:]
        var names = Set<String>()
        func unique(_ base: String) -> String {
            let cleaned = base.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
            var name = String(cleaned), suffix = 2
            while names.contains(name) { name = "\(String(cleaned))-\(suffix)"; suffix += 1 }
            names.insert(name)
            return name
        }
        for finding in usb {
            var entry = ["  \(unique(finding.plugin + "-" + (finding.serial ?? "\(finding.bus)-\(finding.address)"))):",
                         "    plugin: \(finding.plugin)"]
            if finding.kind != finding.plugin { entry.append("    kind: \(finding.kind)") }
            if let serial = finding.serial, finding.selectsBySerial {
                entry.append("    settings: {serial: \(Self.quoted(serial))}")
            } else if finding.selectsBySerial {
                entry.append("    # settings: {serial: ...} when several such devices are connected")
            }
            sections[Self.section(finding.role), default: []] += entry
        }
        for finding in gpio {
            var entry = ["  \(unique(finding.plugin + "-" + finding.chip.name)):", "    plugin: \(finding.plugin)"]
            if finding.kind != finding.plugin { entry.append("    kind: \(finding.kind)") }
            entry.append("    settings: {chip: \(Self.quoted(finding.chip.name)), lines: []}  # the line offsets the relays are wired to (0…\(finding.chip.lineCount - 1))")
            sections[Self.section(finding.role), default: []] += entry
        }
        return sections.keys.sorted().flatMap { ["\($0):"] + sections[$0]! }
    }

    static func section(_ role: Role) -> String {
        switch role {
        case .probe: return "probes"
        case .powerSwitch: return "power_switches"
        case .board: return "boards"
        case .toolchain: return "toolchains"
        }
    }

    /// A YAML scalar, quoted when plain style would change its meaning.
    static func quoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
            && Double(text) == nil && !["true", "false", "null", "yes", "no", "on", "off"].contains(text.lowercased())
        return plain ? text : "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
