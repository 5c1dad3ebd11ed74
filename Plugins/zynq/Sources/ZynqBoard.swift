import Foundation
import LinuxBoardKit
import MLBenchPluginKit

/// A Zynq UltraScale+ board (ZCU102, ZCU104, Kria KV260) with PetaLinux and
/// Vitis AI, reached over SSH: descriptor from the device tree, meminfo and
/// `xdputil query` (the DPU cores); the cpufreq governor as its one controlled
/// condition; INA226/INA260 rails and the DPU observed.
public final class ZynqBoard: LinuxBoard, @unchecked Sendable {
    static let controls = ["governor"]

    public let remote: RemoteLinuxBoard
    /// cpu0's governor before the experiment changed it.
    private var governorBefore: String?
    private let lock = NSLock()

    public init(_ configuration: PluginConfiguration) throws {
        remote = try RemoteLinuxBoard(configuration, kind: "zynq")
    }

    public func describe() throws -> BoardDescription {
        let files = try remote.readFiles(["/proc/device-tree/model", "/proc/meminfo"], step: "describe")
        let tools = try remote.outputs(of: [("architecture", "uname -m"), ("xdputil", "xdputil query")], step: "describe")
        let dpu = try dpuQuery(tools["xdputil"])
        return BoardDescription(
            name: LinuxFacts.model(files) ?? "Zynq UltraScale+ (model unknown)",
            architecture: tools["architecture"]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "aarch64",
            memories: LinuxFacts.ram(files),
            accelerators: dpu?.cores.enumerated().map { "dpu\($0.offset) \($0.element.architecture)" } ?? [],
            runners: ["vitis-ai", "onnxruntime", "tflite"], conditions: Self.controls,
            readiness: "ssh \(remote.ssh.target.address)")
    }

    public func conditions(_ request: ConditionsRequest) throws -> ConditionsReport {
        lock.lock()
        defer { lock.unlock() }
        if request.restore == true {
            var restored = [String: String]()
            let before = governorBefore.map { ["governor": $0] }
            if let governor = governorBefore {
                try CPUGovernor.set(governor, on: remote)
                restored["governor"] = governor
                governorBefore = nil
            }
            return ConditionsReport(applied: restored, observed: try observe(), before: before)
        }
        var applied = [String: String]()
        for (name, value) in request.apply.sorted(by: { $0.key < $1.key }) {
            guard name == "governor" else {
                throw PluginFailure(.unsupported, "condition '\(name)' cannot be controlled on a Zynq UltraScale+ board (it controls: \(Self.controls.joined(separator: ", ")))")
            }
            let previous = try CPUGovernor.set(value, on: remote)
            if governorBefore == nil { governorBefore = previous }
            applied[name] = value
        }
        return ConditionsReport(applied: applied, observed: try observe(), before: governorBefore.map { ["governor": $0] })
    }

    /// Files (model, OS release, clocks, temperatures, INA2xx rails) and tools (kernel, xdputil) in two round trips.
    func observe() throws -> [String: String] {
        let files = try remote.readFiles(LinuxFacts.patterns + ["/etc/os-release"] + INA2xxRails.patterns, step: "conditions")
        let tools = try remote.outputs(of: [("kernel", "uname -r"), ("architecture", "uname -m"), ("xdputil", "xdputil query")],
                                       step: "conditions")
        var facts = LinuxFacts.observed(files)
        facts["model"] = LinuxFacts.model(files) ?? "unknown"
        for key in ["kernel", "architecture"] {
            if let value = tools[key]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty { facts[key] = value }
        }
        if let release = files["/etc/os-release"].map(OSRelease.parse), let pretty = release["PRETTY_NAME"] { facts["os"] = pretty }
        let rails: [PowerRail]
        do { rails = try INA2xxRails.parse(files) } catch { throw PluginFailure(.device, "cannot read the INA2xx rails: \(error)") }
        facts.merge(LinuxFacts.railFacts(rails)) { _, new in new }
        if let dpu = try dpuQuery(tools["xdputil"]) {
            facts["dpu_cores"] = String(dpu.cores.count)
            for (index, core) in dpu.cores.enumerated() {
                facts["dpu\(index)_arch"] = core.architecture
                if let mhz = core.frequencyMHz { facts["dpu\(index)_frequency_mhz"] = String(mhz) }
                if let fingerprint = core.fingerprint { facts["dpu\(index)_fingerprint"] = fingerprint }
            }
            if let version = dpu.vartVersion { facts["vart_version"] = version }
        } else {
            facts["dpu_cores"] = "0 (no xdputil or no DPU loaded)"
        }
        return facts
    }

    /// nil when xdputil printed nothing (not installed, no DPU overlay loaded).
    private func dpuQuery(_ text: String?) throws -> XDPUtilQuery? {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        do { return try XDPUtilQuery.parse(text) } catch {
            throw PluginFailure(.device, "board '\(remote.name)': \(error)")
        }
    }
}
