import Foundation
import MLBenchCore

/// A runner on a board, for one experiment: deploys the artifact, the runner
/// and the inputs, and speaks the runner wire protocol through the board.
final class DeployedRunner {
    let board: PluginBoard
    let toolchain: PluginToolchain
    let artifact: ExperimentRunner.Artifact
    let inputs: [String: String]
    let target: String
    let timeoutMs: Int
    let runner: ExperimentRunner
    let stagePrefix: String
    private(set) var greeting = ""
    private var deployment: Deployment?
    private var session: String?

    init(board: PluginBoard, toolchain: PluginToolchain, artifact: ExperimentRunner.Artifact, inputs: [String: String],
         target: String, timeout: Double, runner: ExperimentRunner, stagePrefix: String = "") throws {
        self.board = board
        self.toolchain = toolchain
        self.artifact = artifact
        self.inputs = inputs
        self.target = target
        timeoutMs = Int(timeout * 1000)
        self.runner = runner
        self.stagePrefix = stagePrefix
    }

    /// Deploys everything, starts the runner and loads the artifact and inputs.
    func start(result: inout ExperimentResult) throws {
        let spec = try runner.stage(stagePrefix + "deploy") { try toolchain.runner(RunnerRequest(artifact: artifact.file, target: target)) }
        var files = [DeployFile]()
        // The whole artifact folder: some artifacts have sidecar files.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: artifact.directory.path)) ?? [] where name != "artifact.json" {
            files.append(DeployFile(source: artifact.directory.appendingPathComponent(name).path, name: name))
        }
        for path in spec.files { files.append(DeployFile(source: path, name: URL(fileURLWithPath: path).lastPathComponent)) }
        var deployedInputs = [String: String]()
        for (index, (name, path)) in inputs.sorted(by: { $0.key < $1.key }).enumerated() {
            let deployedName = "input-\(index).npy"
            files.append(DeployFile(source: path, name: deployedName))
            deployedInputs[name] = deployedName
        }
        let deployment = try runner.stage(stagePrefix + "deploy") { try board.deploy(DeployRequest(files: files)) }
        self.deployment = deployment
        runner.log(&result, stagePrefix + "deploy", "\(files.count) files deployed to \(deployment.directory)")
        // The board as deployed: one that flashes a program reports each memory's use by it now.
        if stagePrefix.isEmpty, let described = try? board.describe() { result.board?.description = described }
        launchSpec = (spec, deployedInputs)
        try launch(result: &result)
    }

    /// Stops the runner process and starts a fresh one on the same deployment, which
    /// loads the artifact again: a new invocation, with its own warm-up.
    func restart(result: inout ExperimentResult) throws {
        stopRunner()
        try launch(result: &result)
    }

    private var launchSpec: (spec: RunnerSpec, inputs: [String: String])?

    /// Starts the runner on the deployment and loads the artifact and inputs.
    private func launch(result: inout ExperimentResult) throws {
        guard let (spec, deployedInputs) = launchSpec, let deployment else {
            throw ExperimentRunner.StageFailure(stage: stagePrefix + "run", reason: "nothing deployed")
        }
        let started = try runner.stage(stagePrefix + "run") {
            try board.startRunner(RunnerLaunch(command: spec.command, environment: spec.environment,
                                               directory: deployment.directory, startTimeoutMs: timeoutMs))
        }
        session = started.session
        greeting = started.greeting
        if let applied = started.applied, !applied.isEmpty {
            if stagePrefix.isEmpty { result.board?.runnerConditions = applied }
            runner.log(&result, stagePrefix + "run", "runner process: "
                       + applied.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        let hello = try runner.stage(stagePrefix + "run") { () -> RunnerGreeting in
            do {
                return try JSONCoding.decode(RunnerGreeting.self, from: started.greeting)
            } catch {
                throw ExperimentRunner.StageFailure(stage: stagePrefix + "run", reason: "the runner's first line is not a greeting: \(started.greeting.prefix(200))")
            }
        }
        guard hello.protocolVersion == RunnerProtocol.version else {
            throw ExperimentRunner.StageFailure(stage: stagePrefix + "run", reason: "the runner speaks protocol \(hello.protocolVersion), mlbench \(RunnerProtocol.version)")
        }
        let loaded: RunnerLoaded = try request(.load(artifact: artifact.file, inputs: deployedInputs), stage: stagePrefix + "load")
        runner.log(&result, stagePrefix + "load", "\(hello.runtime) \(hello.runtimeVersion) loaded the artifact in \(loaded.loadNs / 1_000_000) ms; \(loaded.samples) samples")
    }

    /// The runner's clock against the host's from `count` `clock` exchanges (the one
    /// with the smallest round trip wins); throws when the runner does not answer `clock`.
    func clockOffset(exchanges count: Int = 16) throws -> ClockOffset? {
        var exchanges = [ClockExchange]()
        for _ in 0..<count {
            let sent = monotonicNanoseconds()
            let reply: RunnerClock = try request(.clock, stage: stagePrefix + "clock")
            exchanges.append(ClockExchange(sentNs: sent, runnerNs: reply.nowNs, receivedNs: monotonicNanoseconds()))
        }
        return ClockOffset.estimate(exchanges)
    }

    func run(iterations: Int, stage: String, canary: Bool = false, placement: InputPlacement) throws -> RunnerTimings {
        try request(.run(iterations: iterations, canary: canary, placement: placement), stage: stagePrefix + stage)
    }

    /// Serves queries arriving at `arrivalsNs` (the server scenario).
    func server(arrivalsNs: [Int64], placement: InputPlacement) throws -> RunnerServed {
        // The schedule itself lasts until its last arrival: the timeout allows for it.
        let scheduleMs = Int((arrivalsNs.last ?? 0) / 1_000_000)
        return try request(.server(arrivalsNs: arrivalsNs, placement: placement), stage: stagePrefix + "scenario",
                           timeoutMs: timeoutMs + scheduleMs)
    }

    /// Runs `queries` inferences back to back (the offline scenario).
    func offline(queries: Int) throws -> RunnerOffline {
        try request(.offline(queries: queries), stage: stagePrefix + "scenario")
    }

    /// The vendor tool's own figures for the loaded artifact, as the runner reports them.
    func nativeBenchmark(seconds: Int) throws -> JSONValue {
        // The tool runs for `seconds`, then parses and reports: allow for both.
        let reply: JSONValue = try request(.nativeBenchmark(seconds: seconds), stage: stagePrefix + "native benchmark",
                                           timeoutMs: max(timeoutMs, (seconds * 2 + 300) * 1000))
        guard case .object(var figures) = reply else { return reply }
        figures.removeValue(forKey: "ok")
        return .object(figures)
    }

    /// Runs every sample once and fetches the outputs into `folder`; returns output name → file name.
    func outputs(into folder: URL, result: inout ExperimentResult) throws -> [String: String] {
        let reply: RunnerOutputs = try request(.outputs(directory: "outputs"), stage: stagePrefix + "outputs")
        guard let deployment else { throw ExperimentRunner.StageFailure(stage: stagePrefix + "outputs", reason: "nothing deployed") }
        try runner.stage(stagePrefix + "outputs") {
            try board.fetch(FetchRequest(directory: deployment.directory + "/outputs", names: Array(reply.outputs.values).sorted(),
                                         destination: folder.path))
        }
        runner.log(&result, stagePrefix + "outputs", "fetched \(reply.outputs.count) outputs: \(reply.order.joined(separator: ", "))")
        return reply.outputs
    }

    /// Stops the runner and removes the deployment; safe to call more than once.
    func close() {
        stopRunner()
        if let deployment {
            try? board.cleanup(CleanupRequest(directory: deployment.directory))
            self.deployment = nil
        }
    }

    private func stopRunner() {
        if let session {
            _ = try? board.exchange(RunnerExchange(session: session, message: (try? JSONCoding.encode(RunnerCommand.quit)) ?? "", timeoutMs: 5000))
            _ = try? board.stopRunner(RunnerStop(session: session))
            self.session = nil
        }
    }

    private func request<Reply: Decodable>(_ command: RunnerCommand, stage: String, timeoutMs: Int? = nil) throws -> Reply {
        guard let session else { throw ExperimentRunner.StageFailure(stage: stage, reason: "the runner is not started") }
        return try runner.stage(stage) {
            let line = try board.exchange(RunnerExchange(session: session, message: try JSONCoding.encode(command),
                                                         timeoutMs: timeoutMs ?? self.timeoutMs)).message
            let status: RunnerStatus
            do {
                status = try JSONCoding.decode(RunnerStatus.self, from: line)
            } catch {
                throw ExperimentRunner.StageFailure(stage: stage, reason: "the runner answered something unreadable: \(line.prefix(300))")
            }
            guard status.ok else {
                throw ExperimentRunner.StageFailure(stage: stage, reason: "the runner refused '\(command.op)': \(status.error ?? "no reason given")")
            }
            return try JSONCoding.decode(Reply.self, from: line)
        }
    }
}
