import Foundation
import GPIODriver
import MLBenchDeviceKit
import MLBenchPluginKit

/// Relays wired to GPIO lines, driven through libgpiod v1. The lines stay
/// requested for as long as the switch exists (the lab's lifetime): after a
/// release their level is up to the kernel, and a relay could drop.
final class GPIORelaySwitch {
    struct Settings: Decodable {
        /// The chip: a path (/dev/gpiochip0), a name (gpiochip0) or a label (pinctrl-bcm2835).
        var chip: String
        /// One entry per relay, in outlet order: a line offset (17) or a line name ("RELAY1").
        var lines: [LineSpec]
        /// Most relay boards switch on when the line is low (default true).
        var activeLow: Bool?
        /// The state relays are put in when the lab starts (default off).
        var initialState: String?
        /// Outlet names by relay number ("1": "jetson").
        var names: [String: String]?
    }

    /// A line given by offset or by name.
    enum LineSpec: Decodable, CustomStringConvertible {
        case offset(Int)
        case name(String)

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let offset = try? container.decode(Int.self) { self = .offset(offset) } else { self = .name(try container.decode(String.self)) }
        }

        var description: String {
            switch self {
            case .offset(let offset): return "\(offset)"
            case .name(let name): return "'\(name)'"
            }
        }
    }

    static let known: Set<String> = ["chip", "lines", "active_low", "initial_state", "names"]

    static func make(_ configuration: PluginConfiguration) throws -> RelayPowerSwitch {
        let settings = try configuration.decodeSettings(Settings.self, known: known)
        guard !settings.lines.isEmpty else { throw PluginFailure(.invalidConfiguration, "setting 'lines': give at least one line") }
        let initial: Bool
        switch settings.initialState?.lowercased() ?? "off" {
        case "off": initial = false
        case "on": initial = true
        case let other: throw PluginFailure(.invalidConfiguration, "setting 'initial_state': '\(other)' is neither on nor off")
        }
        do {
            let chip = try GPIOChip(settings.chip)
            var lines: [RelayLine] = []
            for spec in settings.lines {
                let line: GPIOLine
                switch spec {
                case .offset(let offset): line = try chip.line(offset: offset)
                case .name(let name): line = try chip.line(named: name)
                }
                try line.requestOutput(consumer: "mlbench", activeLow: settings.activeLow ?? true, initial: initial)
                lines.append(GPIORelayLine(line))
            }
            return try RelayPowerSwitch(bank: LineRelayBank(label: "GPIO relays on chip '\(settings.chip)'", lines: lines),
                                        names: settings.names ?? [:])
        } catch let error as GPIOError {
            throw PluginFailure(.device, "\(error)")
        }
    }
}

/// A requested GPIO output line as one relay.
final class GPIORelayLine: RelayLine {
    let line: GPIOLine
    init(_ line: GPIOLine) { self.line = line }
    var label: String { line.label }
    func drive(_ on: Bool) throws { try line.set(on) }
    func driven() throws -> Bool { try line.value() }
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "gpio-relay", version: "1.0.0",
        description: "Relays on GPIO lines through libgpiod v1 (chip by name, label or path; line by offset or name; active-low or high)",
        factories: [.powerSwitch("gpio-relay") { try GPIORelaySwitch.make($0) }])
}
