import Foundation
import MLBenchPluginKit
import SerialDriver

/// An AURIX TC3xx board (TC375 Lite Kit, TC397 TriBoard), bare metal: each
/// experiment's ELF (a model's generated C linked with the UART harness) is
/// flashed with the inventory's flasher command, the harness banner on the UART
/// says the board is ready, and the ELF's allocated sections give the usage of
/// each memory (DSPR, PSPR, DLMU, LMU, PFlash, DFlash).
public final class TC3xxBoard: Board, @unchecked Sendable {
    struct Settings: Decodable {
        var name: String?
        /// The UART of the debug probe (`/dev/serial/by-id/…`).
        var device: String?
        var baud: Int?
        var framing: String?
        /// `tc397` or `tc375`.
        var memoryMap: String?
        /// The flasher's command line; `{elf}` is replaced by the ELF's path.
        var flasher: [String]?
        var flashTimeoutS: Double?
        var attempts: Int?
        var replyTimeoutS: Double?
        /// A file that receives a timestamped transcript of the UART.
        var transcript: String?
        /// Where deployments are kept on the host (the board has no file system).
        var workRoot: String?
    }

    static let settingKeys: Set<String> = ["name", "device", "baud", "framing", "memory_map", "flasher", "flash_timeout_s",
                                           "attempts", "reply_timeout_s", "transcript", "work_root"]

    let name: String
    let device: String
    let serial: SerialSettings
    let map: [TC3xxMemory]
    let mapName: String
    let flasher: [String]
    let flashTimeout: Double
    let attempts: Int
    let replyTimeout: Double
    let transcriptPath: String?
    let workRoot: URL
    /// Memory usage of the ELF flashed last, by memory name.
    private(set) var flashedUsage: [MemoryRegion]?
    private var harness: UARTHarness?
    private var sessions: [String: HarnessRunner] = [:]
    /// The last runner, whose counters the conditions after the run report.
    private var lastRun: HarnessRunner?
    private let lock = NSLock()

    public init(_ configuration: PluginConfiguration) throws {
        let settings = try configuration.decodeSettings(Settings.self, known: Self.settingKeys)
        guard let device = settings.device, !device.isEmpty else {
            throw PluginFailure(.invalidConfiguration, "setting 'device' is required (the harness UART, e.g. /dev/serial/by-id/…-if01-port0)")
        }
        self.device = device
        name = settings.name ?? "tc3xx"
        do {
            serial = try SerialSettings(baudRate: settings.baud ?? 115_200, framing: settings.framing ?? "8N1")
        } catch {
            throw PluginFailure(.invalidConfiguration, "setting 'framing': \(error)")
        }
        mapName = settings.memoryMap ?? "tc397"
        guard let map = TC3xxMemoryMap.named(mapName) else {
            throw PluginFailure(.invalidConfiguration, "setting 'memory_map': '\(mapName)' is not tc397 or tc375")
        }
        self.map = map
        flasher = settings.flasher ?? []
        if !flasher.isEmpty, !flasher.contains(where: { $0.contains("{elf}") }) {
            throw PluginFailure(.invalidConfiguration, "setting 'flasher': no argument holds {elf}, the place of the ELF to flash")
        }
        flashTimeout = settings.flashTimeoutS ?? 300
        attempts = settings.attempts ?? 3
        replyTimeout = settings.replyTimeoutS ?? 5
        transcriptPath = settings.transcript
        workRoot = URL(fileURLWithPath: settings.workRoot ?? NSTemporaryDirectory() + "mlbench-tc3xx", isDirectory: true)
    }

    /// The memories of the device, with their usage by the ELF flashed last.
    public func describe() throws -> BoardDescription {
        lock.lock()
        defer { lock.unlock() }
        return BoardDescription(name: "AURIX \(mapName.uppercased())", architecture: "tricore",
                                memories: flashedUsage ?? map.map { MemoryRegion(name: $0.name, sizeBytes: $0.sizeBytes) },
                                accelerators: [], runners: ["uart-harness"], conditions: [],
                                readiness: "harness banner on \(device)")
    }

    /// After the power cycle the board runs what was flashed last: the UART must be
    /// there, and a harness banner (or an answer to name%) says it is ours. Another
    /// program, or none, is no reason to stop: the deploy flashes the experiment's
    /// program and waits for its harness.
    public func reset(_ request: ResetRequest) throws -> ResetReport {
        lock.lock()
        defer { lock.unlock() }
        harness = nil
        let harness = try connect(step: "reset")
        do {
            return ResetReport(ready: true, log: "harness on \(device): \(try harness.waitReady(timeout: Double(request.timeoutMs) / 1000))")
        } catch let failure as TransportFailure where failure.kind == .timedOut || failure.kind == .garbage {
            return ResetReport(ready: true, log: "no harness answers on \(device) (\(failure.kind.rawValue)); the deploy flashes one")
        } catch let failure as TransportFailure {
            self.harness = nil
            throw failure.pluginFailure
        }
    }

    /// Nothing is controllable at run time (clocks are the ELF's startup code);
    /// observed: the harness and its model, and the memory usage of the flashed ELF.
    public func conditions(_ request: ConditionsRequest) throws -> ConditionsReport {
        if let name = request.apply.keys.sorted().first, request.restore != true {
            throw PluginFailure(.unsupported, "condition '\(name)' cannot be controlled on a TC3xx (its clocks are set by the program's startup code)")
        }
        lock.lock()
        defer { lock.unlock() }
        var observed = ["memory_map": mapName, "device": device]
        if let harness = try? connect(step: "conditions"), let profile = try? harness.profile() {
            observed["harness_model"] = profile.model
            observed["harness_input_bytes"] = String(profile.inputBytes)
            observed["harness_output_bytes"] = String(profile.outputBytes)
            observed["harness_timer"] = profile.timer
        }
        if let run = lastRun ?? sessions.values.first, run.countedInferences > 0 {
            // CCNT, ICNT, M1–M3CNT over the last measured batch, and per inference.
            for (counter, total) in run.lastCounters.sorted(by: { $0.key < $1.key }) {
                observed["counter_\(counter)_per_inference"] = total.map { String(Double($0) / Double(run.countedInferences)) } ?? "not available"
            }
        }
        for region in flashedUsage ?? [] {
            observed["memory_\(region.name)_used_bytes"] = String(region.usedBytes ?? 0)
        }
        return ConditionsReport(applied: [:], observed: observed)
    }

    /// Keeps the files on the host, reads the memory usage of the ELF among them
    /// (a section outside the board's memories refuses the deployment), flashes it
    /// and waits for the harness.
    public func deploy(_ request: DeployRequest) throws -> Deployment {
        let directory = workRoot.appendingPathComponent("run-\(UUID().uuidString.lowercased())", isDirectory: true)
        var elf: String?
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for file in request.files {
                try PlainFileName.check(file.name, step: "deploy")
                let target = directory.appendingPathComponent(file.name).path
                try FileManager.default.copyItem(atPath: file.source, toPath: target)
                if elf == nil, let head = FileHandle(forReadingAtPath: target)?.readData(ofLength: 4), head == Data([0x7f, 0x45, 0x4c, 0x46]) {
                    elf = target
                }
            }
        } catch let failure as PluginFailure {
            try? FileManager.default.removeItem(at: directory)
            throw failure
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw PluginFailure(.invalidRequest, "deploy into \(directory.path): \(error.localizedDescription)")
        }
        guard let elf else {
            try? FileManager.default.removeItem(at: directory)
            throw PluginFailure(.invalidRequest, "deploy: none of the files is an ELF program to flash (\(request.files.map(\.name).joined(separator: ", ")))")
        }
        let usage: [MemoryRegion]
        do {
            usage = try TC3xxMemoryMap.usage(of: try ELFSections.read(elf), map: map, file: URL(fileURLWithPath: elf).lastPathComponent)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error as? PluginFailure ?? PluginFailure(.invalidRequest, "deploy: \(error)")
        }
        try flash(elf)
        lock.lock()
        flashedUsage = usage
        lock.unlock()
        return Deployment(directory: directory.path)
    }

    /// The runner is the board plugin itself, speaking the runner protocol to the
    /// lab and the harness protocol to the board (the command of the launch is not run).
    public func startRunner(_ request: RunnerLaunch) throws -> RunnerSession {
        let directory = try deployment(request.directory)
        lock.lock()
        defer { lock.unlock() }
        let harness = try connect(step: "run")
        let ram = (flashedUsage ?? []).filter { region in !(map.first { $0.name == region.name }?.isFlash ?? true) }
            .reduce(Int64(0)) { $0 + Int64($1.usedBytes ?? 0) }
        let runner = try HarnessRunner(harness: harness, directory: directory, ramBytes: ram)
        let id = UUID().uuidString.lowercased()
        sessions[id] = runner
        return RunnerSession(session: id, greeting: runner.greeting)
    }

    public func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply {
        let runner = try session(request.session)
        lock.lock()
        defer { lock.unlock() }
        return RunnerExchangeReply(message: runner.handle(request.message))
    }

    public func stopRunner(_ request: RunnerStop) throws -> RunnerExit {
        let runner = try session(request.session)
        lock.lock()
        sessions[request.session] = nil
        lastRun = runner
        lock.unlock()
        return RunnerExit(exitStatus: 0, stderr: "")
    }

    /// Outputs are written on the host by the runner side of this plugin: fetching is a copy.
    public func fetch(_ request: FetchRequest) throws {
        try LocalFiles.copy(request.names, from: try deployment(request.directory), to: request.destination)
    }

    /// Removes the deployment's files from the host (the flashed program stays until the next flash).
    public func cleanup(_ request: CleanupRequest) throws {
        let target = try deployment(request.directory)   // outside `try?`: a foreign folder is refused, not ignored
        try? FileManager.default.removeItem(at: target)
    }

    /// A folder this board deployed (or one inside it); nothing else is touched.
    private func deployment(_ directory: String) throws -> URL {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        guard target.path.hasPrefix(workRoot.standardizedFileURL.path + "/run-") else {
            throw PluginFailure(.invalidRequest, "'\(directory)' is not a deployment of board '\(name)'")
        }
        return target
    }

    private func session(_ id: String) throws -> HarnessRunner {
        lock.lock()
        defer { lock.unlock() }
        guard let runner = sessions[id] else { throw PluginFailure(.invalidRequest, "no runner session '\(id)'") }
        return runner
    }

    /// Runs the flasher on `elf`, then waits for the harness to come up.
    private func flash(_ elf: String) throws {
        guard !flasher.isEmpty else {
            throw PluginFailure(.invalidConfiguration, "board '\(name)': setting 'flasher' is empty; the ELF cannot be flashed")
        }
        let command = flasher.map { $0.replacingOccurrences(of: "{elf}", with: elf) }
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(command, timeout: flashTimeout)
        } catch {
            throw PluginFailure(.device, "board '\(name)', step 'deploy': the flasher \(command[0]) failed to run: \(error)")
        }
        guard result.status == 0 else {
            throw PluginFailure(.device, "board '\(name)', step 'deploy': the flasher exited with \(result.status): \((result.stderr + result.stdout).suffix(1000))")
        }
        lock.lock()
        defer { lock.unlock() }
        // The flasher resets the board: the old port may be gone with the old program.
        harness = nil
        do {
            _ = try connect(step: "deploy").waitReady(timeout: max(replyTimeout, 5))
        } catch let failure as TransportFailure {
            throw failure.pluginFailure
        }
    }

    /// The harness on the configured UART, opened once (callers hold the lock).
    private func connect(step: String) throws -> UARTHarness {
        if let harness { return harness }
        do {
            let transcript = try transcriptPath.map { try SerialTranscript(path: $0) }
            let port = try SerialPort(path: device, settings: serial, transcript: transcript)
            let harness = UARTHarness(board: name, port: port, attempts: attempts, timeout: replyTimeout)
            self.harness = harness
            return harness
        } catch {
            throw TransportFailure(kind: .client, board: name, step: step, detail: "\(error)").pluginFailure
        }
    }
}
