import Foundation
import LinuxBoardKit
import MLBenchPluginKit

/// An NVIDIA Jetson (Nano, Xavier, Orin; JetPack 4, 5 or 6) reached over SSH.
/// Runners start over the SSH channel; the board's own files and tools
/// (device tree, L4T release, nvpmodel, jetson_clocks, tegrastats, INA3221
/// rails, thermal zones) describe it and its conditions.
public final class JetsonBoard: LinuxBoard, @unchecked Sendable {
    public let remote: RemoteLinuxBoard
    private var conditionsState = JetsonConditions()
    private let lock = NSLock()

    public init(_ configuration: PluginConfiguration) throws {
        remote = try RemoteLinuxBoard(configuration, kind: "jetson")
    }

    /// The memories, accelerators, runners and conditions of this Jetson, from its files.
    public func describe() throws -> BoardDescription {
        let files = try remote.readFiles(["/proc/device-tree/model", "/proc/meminfo"], step: "describe")
        let machine = try remote.step { try remote.ssh.output("uname -m", step: "describe") }.trimmingCharacters(in: .whitespacesAndNewlines)
        let model = Self.model(files)
        return BoardDescription(
            name: model, architecture: machine, memories: LinuxFacts.ram(files),
            accelerators: Self.accelerators(model: model), runners: ["tensorrt", "tflite", "onnxruntime"],
            conditions: JetsonConditions.known, readiness: "ssh \(remote.ssh.target.address)")
    }

    public func conditions(_ request: ConditionsRequest) throws -> ConditionsReport {
        lock.lock()
        defer { lock.unlock() }
        if request.restore == true {
            let before = conditionsState.before
            let restored = try conditionsState.restore(on: remote)
            return ConditionsReport(applied: restored, observed: try observe(), before: before.isEmpty ? nil : before)
        }
        let applied = try conditionsState.apply(request.apply, on: remote)
        return ConditionsReport(applied: applied, observed: try observe(),
                                before: conditionsState.before.isEmpty ? nil : conditionsState.before)
    }

    /// Everything observable in two round trips: files (release, clocks, governor,
    /// thermal zones, INA3221 rails, memory) and tool outputs (kernel, nvpmodel, one tegrastats line).
    func observe() throws -> [String: String] {
        let files = try remote.readFiles(LinuxFacts.patterns + ["/etc/nv_tegra_release"] + INA3221Rails.patterns, step: "conditions")
        let tools = try remote.outputs(of: [("kernel", "uname -r"), ("architecture", "uname -m"), ("nvpmodel", "nvpmodel -q"),
                                            ("tegrastats", "timeout 5 tegrastats --interval 100 | head -n 1")], step: "conditions")
        var facts = LinuxFacts.observed(files)
        facts["model"] = Self.model(files)
        for key in ["kernel", "architecture"] {
            if let value = tools[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty { facts[key] = value }
        }
        if let text = files["/etc/nv_tegra_release"] {
            let release = try Self.parsed("/etc/nv_tegra_release") { try L4TRelease.parse(text) }
            facts["l4t_release"] = release.version
            if let jetpack = release.jetpack { facts["jetpack"] = String(jetpack) }
        }
        if let text = tools["nvpmodel"], !text.isEmpty {
            let mode = try Self.parsed("nvpmodel -q") { try NVPModelQuery.parse(text) }
            facts["nvpmodel"] = "\(mode.id) (\(mode.name))"
        }
        facts.merge(LinuxFacts.railFacts(try Self.parsed("INA3221 rails", { try INA3221Rails.parse(files) }))) { _, new in new }
        if let line = tools["tegrastats"]?.split(whereSeparator: \.isNewline).first, !line.isEmpty {
            let stats = try Self.parsed("tegrastats") { try TegraStatsLine.parse(String(line)) }
            facts["tegrastats_ram_used_mb"] = String(stats.ramUsedMB)
            if let load = stats.gpuLoadPercent { facts["tegrastats_gpu_load_percent"] = String(load) }
            if let mhz = stats.gpuMHz { facts["tegrastats_gpu_mhz"] = String(mhz) }
            if let mhz = stats.emcMHz { facts["tegrastats_emc_mhz"] = String(mhz) }
            for (rail, value) in stats.railsMW { facts["tegrastats_\(rail)_mw"] = String(value.now) }
        }
        return facts
    }

    /// A format error in what the board printed is the board's fault: a device failure naming the source.
    private static func parsed<T>(_ source: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch {
            throw PluginFailure(.device, "cannot read \(source): \(error)")
        }
    }

    static func model(_ files: [String: String]) -> String {
        LinuxFacts.model(files) ?? "NVIDIA Jetson (model unknown)"
    }

    /// The accelerators of a Jetson model (from NVIDIA's module data sheets):
    /// every module has the integrated GPU; Xavier and Orin (but the Orin Nano) add two DLA cores.
    static func accelerators(model: String) -> [String] {
        if model.contains("Orin Nano") { return ["gpu"] }
        if model.contains("Xavier") || model.contains("Orin") { return ["gpu", "dla0", "dla1"] }
        return ["gpu"]
    }
}
