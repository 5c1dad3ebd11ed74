import Foundation
import MLBenchPluginKit

/// Outlets switched by the operator's own commands: network PDUs (snmpset,
/// curl), PDUDaemon's client, a vendor tool. Each command is a shell command
/// line run with /bin/sh -c, with a timeout; it must exit with status 0.
final class CommandOutlet: PowerSwitch, @unchecked Sendable {
    struct Commands: Decodable {
        var on: String
        var off: String
        /// Prints the state; the first word of its output says on or off (also 1/0, true/false).
        var status: String?
    }

    struct Settings: Decodable {
        var outlets: [String: Commands]
        /// Seconds a command may take (default 30).
        var timeoutS: Double?
    }

    private let outlets: [String: Commands]
    private let timeout: Double
    private let lock = NSLock()

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["outlets", "timeout_s"])
        guard !settings.outlets.isEmpty else { throw PluginFailure(.invalidConfiguration, "setting 'outlets': give at least one outlet") }
        for (name, commands) in settings.outlets {
            for (key, command) in [("on", commands.on), ("off", commands.off), ("status", commands.status ?? "x")]
            where command.trimmingCharacters(in: .whitespaces).isEmpty {
                throw PluginFailure(.invalidConfiguration, "setting 'outlets.\(name).\(key)': the command is empty")
            }
        }
        if let timeout = settings.timeoutS, !(timeout > 0) {
            throw PluginFailure(.invalidConfiguration, "setting 'timeout_s': must be above 0, got \(timeout)")
        }
        outlets = settings.outlets
        timeout = settings.timeoutS ?? 30
    }

    func describe() throws -> PowerSwitchDescription { PowerSwitchDescription(outlets: outlets.keys.sorted()) }

    private func commands(_ outlet: String) throws -> Commands {
        guard let commands = outlets[outlet] else {
            throw PluginFailure(.invalidRequest, "no outlet '\(outlet)' (outlets: \(outlets.keys.sorted().joined(separator: ", ")))")
        }
        return commands
    }

    /// Runs one command; MLBENCH_OUTLET names the outlet, so one script can serve several.
    private func run(_ command: String, outlet: String, action: String) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_OUTLET"] = outlet
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(["/bin/sh", "-c", command], environment: environment, timeout: timeout)
        } catch let error as ChildProcessError where error.kind == .timedOut {
            throw PluginFailure(.timeout, "outlet '\(outlet)' \(action) command `\(command)` took longer than \(timeout) s and was killed")
        } catch {
            throw PluginFailure(.device, "outlet '\(outlet)' \(action) command `\(command)` could not run: \(error)")
        }
        guard result.status == 0 else {
            let said = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(500)
            throw PluginFailure(.device, "outlet '\(outlet)' \(action) command `\(command)` exited with status \(result.status)"
                                + (said.isEmpty ? "" : ": \(said)"))
        }
        return result.stdout
    }

    func set(_ request: OutletCommand) throws {
        let commands = try commands(request.outlet)
        lock.lock()
        defer { lock.unlock() }
        _ = try run(request.on ? commands.on : commands.off, outlet: request.outlet, action: request.on ? "on" : "off")
        // With a status command, a switch that did not take is caught here rather than at the next boot timeout.
        if let status = commands.status {
            let now = try parse(try run(status, outlet: request.outlet, action: "status"), outlet: request.outlet, command: status)
            guard now == request.on else {
                throw PluginFailure(.device, "outlet '\(request.outlet)': switched \(request.on ? "on" : "off") but its status command says \(now ? "on" : "off")")
            }
        }
    }

    func state(_ request: OutletQuery) throws -> OutletState {
        let commands = try commands(request.outlet)
        guard let status = commands.status else {
            throw PluginFailure(.unsupported, "outlet '\(request.outlet)' has no status command, so its state cannot be read (set outlets.\(request.outlet).status)")
        }
        lock.lock()
        defer { lock.unlock() }
        return OutletState(on: try parse(try run(status, outlet: request.outlet, action: "status"), outlet: request.outlet, command: status))
    }

    private func parse(_ output: String, outlet: String, command: String) throws -> Bool {
        let word = output.split(whereSeparator: { $0.isWhitespace }).first.map { $0.lowercased() } ?? ""
        switch word {
        case "on", "1", "true": return true
        case "off", "0", "false": return false
        default:
            throw PluginFailure(.device, "outlet '\(outlet)' status command `\(command)` printed '\(output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(100))'; its first word must be on or off")
        }
    }

    /// A power cycle: off, `offTime` seconds, on.
    func cycle(_ outlet: String, offTime: Double) throws {
        try set(OutletCommand(outlet: outlet, on: false))
        Thread.sleep(forTimeInterval: offTime)
        try set(OutletCommand(outlet: outlet, on: true))
    }
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "command-outlet", version: "1.0.0",
        description: "Outlets switched by operator-given shell commands (network PDUs, PDUDaemon), with timeouts and exit-status checks",
        factories: [.powerSwitch("command-outlet") { try CommandOutlet($0) }])
}
