import Foundation
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// The machine mlbench runs on, as a board: runners are local processes that
/// speak the runner wire protocol over pipes.
final class HostBoard: Board, @unchecked Sendable {
    struct Settings: Decodable {
        /// Where deployments are made; each gets a fresh folder inside.
        var workRoot: String?
        /// CPUs the runner is pinned to, unless an experiment's conditions say otherwise.
        var cpus: [Int]?
    }

    private let workRoot: URL
    private let defaultCPUs: [Int]?
    /// Conditions applied for the current experiment, and how to put them back.
    private var tuning = HostTuning()
    private let sessions = RunnerSessions()
    private let lock = NSLock()

    init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: ["work_root", "cpus"])
        workRoot = URL(fileURLWithPath: settings.workRoot ?? NSTemporaryDirectory() + "mlbench-host", isDirectory: true)
        defaultCPUs = settings.cpus
        tuning.cpus = settings.cpus
        if let cpus = settings.cpus, let bad = cpus.first(where: { $0 < 0 || $0 >= ProcessInfo.processInfo.processorCount }) {
            throw PluginFailure(.invalidConfiguration,
                                "setting 'cpus': CPU \(bad) does not exist (this host has \(ProcessInfo.processInfo.processorCount))")
        }
    }

    func describe() throws -> BoardDescription {
        let memory = HostFacts.meminfo()
        return BoardDescription(
            name: HostFacts.hostname(), architecture: HostFacts.machine(),
            memories: [MemoryRegion(name: "ram", sizeBytes: memory.total,
                                    usedBytes: memory.total >= memory.available ? memory.total - memory.available : nil)])
    }

    /// The host cannot be power-cycled from here; a fresh runner process and a
    /// fresh deployment folder are its clean state.
    func reset(_ request: ResetRequest) throws -> ResetReport {
        ResetReport(ready: true, log: "host is ready (no power cycle: each run uses a fresh runner process)")
    }

    /// Applies the tune step's conditions (see `HostTuning`), or puts back what
    /// earlier requests changed; observes the host either way.
    func conditions(_ request: ConditionsRequest) throws -> ConditionsReport {
        lock.lock()
        defer { lock.unlock() }
        if request.restore == true {
            let before = tuning.before
            let restored = try tuning.restore()
            tuning.cpus = defaultCPUs
            return ConditionsReport(applied: restored, observed: HostFacts.observe(), before: before.isEmpty ? nil : before)
        }
        let outcome = try tuning.apply(request.apply)
        var observed = HostFacts.observe()
        if let cpus = tuning.cpus { observed["runner_cpus"] = cpus.map(String.init).joined(separator: ",") }
        return ConditionsReport(applied: outcome.applied, observed: observed,
                                before: tuning.before.isEmpty ? nil : tuning.before,
                                unavailable: outcome.unavailable.isEmpty ? nil : outcome.unavailable)
    }

    func deploy(_ request: DeployRequest) throws -> Deployment {
        let directory = workRoot.appendingPathComponent("run-\(UUID().uuidString.lowercased())", isDirectory: true)
        let files = FileManager.default
        do {
            try files.createDirectory(at: directory, withIntermediateDirectories: true)
            for file in request.files {
                try PlainFileName.check(file.name, step: "deploy")
                guard files.fileExists(atPath: file.source) else {
                    throw PluginFailure(.invalidRequest, "deploy: '\(file.source)' does not exist")
                }
                try files.copyItem(atPath: file.source, toPath: directory.appendingPathComponent(file.name).path)
            }
        } catch let failure as PluginFailure {
            try? files.removeItem(at: directory)
            throw failure
        } catch {
            try? files.removeItem(at: directory)
            throw PluginFailure(.device, "deploy into \(directory.path): \(error.localizedDescription)")
        }
        return Deployment(directory: directory.path)
    }

    func startRunner(_ request: RunnerLaunch) throws -> RunnerSession {
        let environment = ProcessInfo.processInfo.environment.merging(request.environment) { _, new in new }
        let child: ChildProcess
        do {
            child = try ChildProcess(request.command, environment: environment, directory: request.directory)
        } catch {
            throw PluginFailure(.failed, "\(error)")
        }
        let (id, greeting) = try sessions.start(child, startTimeoutMs: request.startTimeoutMs)
        lock.lock()
        // After the greeting and before the first request: the runtime starts its
        // threads when it loads the model, and they inherit CPUs and priority.
        var applied = tuning.applyToRunner(pid: child.pid)
        // Probes of this machine (perf counters, RSS) can follow the runner by its pid.
        applied["runner_pid"] = String(child.pid)
        lock.unlock()
        return RunnerSession(session: id, greeting: greeting, applied: applied.isEmpty ? nil : applied)
    }

    func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply {
        try sessions.exchange(request)
    }

    func stopRunner(_ request: RunnerStop) throws -> RunnerExit {
        try sessions.stop(request)
    }

    func fetch(_ request: FetchRequest) throws {
        try LocalFiles.copy(request.names, from: try deployment(request.directory), to: request.destination)
    }

    func cleanup(_ request: CleanupRequest) throws {
        try? FileManager.default.removeItem(at: try deployment(request.directory))
    }

    /// A folder this board deployed; nothing outside its work root is touched.
    private func deployment(_ directory: String) throws -> URL {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        guard target.path.hasPrefix(workRoot.standardizedFileURL.path + "/") else {
            throw PluginFailure(.invalidRequest, "'\(directory)' is not a deployment of this board")
        }
        return target
    }
}

@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "host", version: "1.0.0",
        description: "The machine mlbench runs on, with runners as local processes",
        factories: [.board("host") { try HostBoard($0) }])
}
