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
                    let result = try board.step { try board.ssh.run("\(board.privileged)nvpmodel -m \(mode)", step: "conditions") }
                    guard result.status == 0 else {
                        throw PluginFailure(.device, "board '\(board.name)', condition 'nvpmodel': nvpmodel -m \(mode) failed (status \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
                    }
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
                        try command(board, "jetson_clocks --store \(shellQuote(file))", condition: name)
                        storedClocks = file
                        before["jetson_clocks"] = "false (clocks stored in \(file))"
                    }
                    try command(board, "jetson_clocks", condition: name)
                } else if let file = storedClocks {
                    try command(board, "jetson_clocks --restore \(shellQuote(file))", condition: name)
                }
                applied[name] = on ? "true" : "false"
            case "governor":
                let files = try board.readFiles(["/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor",
                                                 "/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors"], step: "conditions")
                let governors = files.filter { $0.key.hasSuffix("/scaling_governor") }
                guard let first = governors.sorted(by: { $0.key < $1.key }).first else {
                    throw PluginFailure(.unsupported, "board '\(board.name)', condition 'governor': no cpufreq governor in /sys/devices/system/cpu")
                }
                if let available = files["/sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors"]?.split(separator: " ")
                    .map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }), !available.contains(value) {
                    throw PluginFailure(.invalidRequest, "condition 'governor': '\(value)' is not one of this board's governors (\(available.joined(separator: ", ")))")
                }
                if before["governor"] == nil { before["governor"] = first.value.trimmingCharacters(in: .whitespacesAndNewlines) }
                try writeGovernor(value, board)
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
            do { try writeGovernor(governor, board); restored["governor"] = governor } catch { failures.append("governor: \(error)") }
        }
        if let file = storedClocks {
            do {
                try command(board, "jetson_clocks --restore \(shellQuote(file))", condition: "jetson_clocks")
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

    private func command(_ board: RemoteLinuxBoard, _ script: String, condition: String) throws {
        let result = try board.step { try board.ssh.run(board.privileged + script, step: "conditions") }
        guard result.status == 0 else {
            throw PluginFailure(.device, "board '\(board.name)', condition '\(condition)': '\(script)' failed (status \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    private func writeGovernor(_ value: String, _ board: RemoteLinuxBoard) throws {
        let glob = shellQuote(board.file("/sys/devices/system/cpu")) + "/cpu*/cpufreq/scaling_governor"
        let script = "for f in \(glob); do echo \(shellQuote(value)) > \"$f\" || exit 1; done"
        try command(board, "sh -c \(shellQuote(script))", condition: "governor")
    }
}
