import Foundation
import LinuxBoardKit
import MLBenchPluginKit

/// The controllable conditions of a Jetson, each recorded before it is changed
/// and put back when the lab asks (at the end of every experiment):
///
/// - `nvpmodel`: the power mode id (`nvpmodel -m N`); the mode before comes from `nvpmodel -q`;
/// - `jetson_clocks`: `true` pins CPU, GPU and EMC clocks at their maximum
///   (`jetson_clocks`), after `jetson_clocks --store FILE` saved the clocks, which
///   `jetson_clocks --restore FILE` puts back;
/// - `governor`: the cpufreq governor of every CPU (sysfs).
struct JetsonConditions {
    static let known = ["nvpmodel", "jetson_clocks", "governor"]

    /// The state before each change, for `restore`.
    private(set) var before: [String: String] = [:]
    /// Where `jetson_clocks --store` saved the clocks, once it has.
    private var storedClocks: String?

    mutating func apply(_ requested: [String: String], on board: RemoteLinuxBoard) throws -> [String: String] {
        var applied = [String: String]()
        for (name, value) in requested.sorted(by: { $0.key < $1.key }) {
            switch name {
            case "nvpmodel":
                guard let mode = Int(value), mode >= 0 else {
                    throw PluginFailure(.invalidRequest, "condition 'nvpmodel': '\(value)' is not a power mode number (see nvpmodel -p --verbose on the board)")
                }
                let current = try query(board)
                if before["nvpmodel"] == nil { before["nvpmodel"] = String(current.id) }
                if current.id != mode {
                    try board.privilegedCommand("nvpmodel -m \(mode)", condition: "nvpmodel")
                }
                let now = try query(board)
                guard now.id == mode else {
                    throw PluginFailure(.device, "board '\(board.name)', condition 'nvpmodel': asked for mode \(mode), the board reports \(now.id) (\(now.name))")
                }
                applied[name] = "\(now.id) (\(now.name))"
            case "jetson_clocks":
                guard let on = Bool(value.lowercased()) else {
                    throw PluginFailure(.invalidRequest, "condition 'jetson_clocks': expected true or false, got '\(value)'")
                }
                if on {
                    let file = "\(board.workRoot)/jetson_clocks.store"
                    if storedClocks == nil {
                        try board.privilegedCommand("jetson_clocks --store \(shellQuote(file))", condition: name)
                        storedClocks = file
                        before["jetson_clocks"] = "false (clocks stored in \(file))"
                    }
                    try board.privilegedCommand("jetson_clocks", condition: name)
                } else if let file = storedClocks {
                    try board.privilegedCommand("jetson_clocks --restore \(shellQuote(file))", condition: name)
                }
                applied[name] = on ? "true" : "false"
            case "governor":
                let previous = try CPUGovernor.set(value, on: board)
                if before["governor"] == nil { before["governor"] = previous }
                applied[name] = value
            default:
                throw PluginFailure(.unsupported, "condition '\(name)' cannot be controlled on a Jetson (it controls: \(Self.known.joined(separator: ", ")))")
            }
        }
        return applied
    }

    /// Puts back what was changed, the last change first; returns what was restored.
    mutating func restore(on board: RemoteLinuxBoard) throws -> [String: String] {
        var restored = [String: String]()
        var failures = [String]()
        if let governor = before["governor"] {
            do { try CPUGovernor.set(governor, on: board); restored["governor"] = governor } catch { failures.append("governor: \(error)") }
        }
        if let file = storedClocks {
            do {
                try board.privilegedCommand("jetson_clocks --restore \(shellQuote(file))", condition: "jetson_clocks")
                restored["jetson_clocks"] = "restored from \(file)"
            } catch { failures.append("jetson_clocks: \(error)") }
        }
        if let mode = before["nvpmodel"] {
            do { _ = try apply(["nvpmodel": mode], on: board); restored["nvpmodel"] = mode } catch { failures.append("nvpmodel: \(error)") }
        }
        before = [:]
        storedClocks = nil
        if !failures.isEmpty {
            throw PluginFailure(.device, "board '\(board.name)': cannot restore its conditions: \(failures.joined(separator: "; "))")
        }
        return restored
    }

    private func query(_ board: RemoteLinuxBoard) throws -> NVPModelQuery {
        let text = try board.step { try board.ssh.output("nvpmodel -q", step: "conditions") }
        do { return try NVPModelQuery.parse(text) } catch {
            throw PluginFailure(.device, "board '\(board.name)', condition 'nvpmodel': \(error)")
        }
    }
}
