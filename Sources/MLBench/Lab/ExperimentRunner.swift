import Foundation
import MLBenchCore
import OpenSSLDriver

/// Runs one experiment end to end, as the isolation manager does: reset the
/// board, apply conditions, check and build, deploy, warm up until steady
/// state, measure until the stopping rule holds, compare outputs with the
/// reference, clean up, and store the result — a failure too, with its stage
/// and reason.
public final class ExperimentRunner {
    public let lab: Lab
    public let store: ResultStore
    private let progress: (String) -> Void

    public init(lab: Lab, store: ResultStore, progress: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.store = store
        self.progress = progress
    }

    /// A failure inside a stage; it becomes the stored failure.
    struct StageFailure: Error {
        var stage: String
        var reason: String
        var kind: FailureKind

        init(stage: String, reason: String, kind: FailureKind? = nil) {
            self.stage = stage
            self.reason = reason
            self.kind = kind ?? Self.kind(ofStage: stage)
        }

        /// The kind of a failure from the stage it happened in, when the error itself
        /// says nothing more precise.
        static func kind(ofStage stage: String) -> FailureKind {
            let step = stage.hasPrefix("reference ") ? String(stage.dropFirst("reference ".count)) : stage
            switch step {
            case "inputs", "setup", "check", "reference": return .userInput
            case "reset", "conditions", "deploy", "cleanup": return .board
            case "internal": return .internal
            default: return .toolchain
            }
        }

        /// The kind of a plugin's error: a board or transport that is not ready, or
        /// that timed out before the runner was even running, may do better next time.
        static func kind(of failure: PluginFailure, stage: String) -> FailureKind {
            switch failure.code {
            case .notReady: return .transient
            case .timeout where ["reset", "conditions", "deploy"].contains(stage): return .transient
            case .device: return .board
            case .invalidRequest, .invalidConfiguration, .unsupported: return .userInput
            default: return kind(ofStage: stage)
            }
        }
    }

    /// Runs `file` and stores the result, succeeded or failed. Errors storing
    /// the result itself are thrown.
    @discardableResult
    public func run(_ file: ExperimentFile) throws -> ExperimentResult {
        let experiment = file.experiment
        var result = ExperimentResult(
            id: UUID().uuidString.lowercased(), name: experiment.name, status: .failed, failure: nil,
            user: ProcessInfo.processInfo.environment["MLBENCH_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? NSUserName(),
            startedAt: Date(), finishedAt: Date(), experimentText: file.text, experimentPath: file.path,
            checksums: [:], board: nil, toolchain: nil, reference: nil, warmUp: nil, measurement: nil,
            semanticPreservation: nil, log: [])
        let workspace = lab.home.results.appendingPathComponent(result.id, isDirectory: true)
        let plan = experiment.measurement ?? MeasurementPlan()
        var attempt = 0
        while true {
            attempt += 1
            result.attempts = attempt
            var cleanups: [(inout ExperimentResult) -> Void] = []
            var failure: StageFailure?
            do {
                try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
                try execute(file, into: &result, workspace: workspace, cleanups: &cleanups)
                result.status = .succeeded
                result.failure = nil
            } catch let stageFailure as StageFailure {
                failure = stageFailure
            } catch {
                failure = StageFailure(stage: "internal", reason: "\(error)", kind: .internal)
            }
            for cleanup in cleanups.reversed() { cleanup(&result) }
            guard let failure else { break }
            result.failure = .init(stage: failure.stage, reason: failure.reason, kind: failure.kind)
            log(&result, failure.stage, "failed (\(failure.kind.rawValue)): \(failure.reason)")
            guard failure.kind == .transient, attempt <= plan.maxRetries else { break }
            // Exponential backoff: the board or its transport gets time to recover.
            let wait = plan.retryBackoffS * pow(2, Double(attempt - 1))
            log(&result, "retry", String(format: "attempt %d of %d failed with a transient fault; retrying in %.1f s",
                                         attempt, plan.maxRetries + 1, wait))
            Thread.sleep(forTimeInterval: wait)
            // Each attempt starts from a clean record; the log and the input checksums stay.
            (result.board, result.toolchain, result.reference) = (nil, nil, nil)
            (result.warmUp, result.measurement, result.semanticPreservation, result.coolDown) = (nil, nil, nil, nil)
            try? FileManager.default.removeItem(at: workspace)
        }
        result.finishedAt = Date()
        try store.insert(result)
        return result
    }

    private func execute(_ file: ExperimentFile, into result: inout ExperimentResult, workspace: URL,
                         cleanups: inout [(inout ExperimentResult) -> Void]) throws {
        let experiment = file.experiment
        let plan = experiment.measurement ?? MeasurementPlan()
        let metric = try stage("setup") { () -> DistanceMetric in
            guard let metric = DistanceMetric(rawValue: experiment.semanticPreservation.metric) else {
                throw StageFailure(stage: "setup", reason: "unknown metric '\(experiment.semanticPreservation.metric)'")
            }
            return metric
        }

        // Inputs: every file must exist; each is hashed before anything runs.
        log(&result, "inputs", "hashing the model and inputs")
        result.checksums["experiment"] = try stage("inputs") { try lab.home.blobs.put(data: Data(file.text.utf8)) }
        let modelPath = file.resolve(experiment.model)
        result.checksums["model"] = try stage("inputs") { try hashFile(modelPath, role: "model") }
        var inputFiles = [String: String]()
        for (name, path) in experiment.inputs.sorted(by: { $0.key < $1.key }) {
            let resolved = file.resolve(path)
            result.checksums["input:\(name)"] = try stage("inputs") { try hashFile(resolved, role: "input '\(name)'") }
            inputFiles[name] = resolved
        }
        if let labels = experiment.semanticPreservation.labels {
            result.checksums["labels"] = try stage("inputs") { try hashFile(file.resolve(labels.file), role: "labels") }
        }

        // A predicted target: the board's predictors answer; no board is touched.
        if let predicted = experiment.predictedBoard {
            try predict(experiment, board: predicted, model: modelPath, into: &result)
            return
        }

        // The board and the toolchain, from the inventory.
        let board = try stage("setup") { try lab.board(experiment.board) }
        let toolchain = try stage("setup") { try lab.toolchain(experiment.toolchain.name, version: experiment.toolchain.version) }
        let boardDescription = try stage("setup") { try board.describe() }
        result.board = .init(name: experiment.board, plugin: board.plugin.name, pluginVersion: board.plugin.version,
                             description: boardDescription, conditions: nil)
        let toolchainDescription = try stage("setup") { try toolchain.describe() }
        let options = experiment.toolchain.options ?? .object([:])
        result.toolchain = .init(name: experiment.toolchain.name, plugin: toolchain.plugin.name,
                                 pluginVersion: toolchain.plugin.version, version: toolchainDescription.version,
                                 target: experiment.toolchain.target, options: options)
        log(&result, "setup", "board \(experiment.board) (\(boardDescription.architecture)), toolchain \(toolchainDescription.name) \(toolchainDescription.version)")

        // Checks first: an impossible experiment never reaches the board.
        let check = try checkCompatibility(toolchain: toolchain, description: toolchainDescription, model: modelPath,
                                           target: experiment.toolchain.target, options: options, boardName: experiment.board,
                                           board: boardDescription, stagePrefix: "", result: &result)
        result.toolchain?.compatibility = check.findings
        result.toolchain?.packages = toolchain.environment?.frozen
        result.toolchain?.environmentLock = toolchain.environment?.lock

        // 1. Reset, 2. conditions.
        let resetTimeout = lab.inventory.inventory.boards[experiment.board]?.resetTimeoutS ?? 300
        try powerCycle(experiment.board, result: &result)
        let reset = try stage("reset") { try board.reset(ResetRequest(timeoutMs: Int(resetTimeout * 1000))) }
        guard reset.ready else { throw StageFailure(stage: "reset", reason: "the board did not become ready: \(reset.log)") }
        log(&result, "reset", reset.log)
        // Registered before applying: a half-applied tune step is put back too, then
        // the board cools down, however the experiment ends.
        let tuned = !(experiment.conditions ?? [:]).isEmpty
        cleanups.append { [weak self] result in
            if tuned { self?.restoreConditions(board, result: &result) }
            self?.coolDown(board, plan: plan, result: &result)
        }
        let conditions = try stage("conditions") { try board.conditions(ConditionsRequest(apply: experiment.conditions ?? [:])) }
        result.board?.conditions = conditions
        log(&result, "conditions", "applied \(conditions.applied.count), observed \(conditions.observed.count)"
            + (conditions.applied.isEmpty ? "" : ": " + conditions.applied.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
        if let before = conditions.before, !before.isEmpty {
            log(&result, "conditions", "before: " + before.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        for (name, reason) in (conditions.unavailable ?? [:]).sorted(by: { $0.key < $1.key }) {
            log(&result, "conditions", "\(name) not applied: \(reason)")
        }

        // 3. Build (or reuse the cached artifact).
        let artifact = try buildArtifact(toolchain: toolchain, description: toolchainDescription, model: modelPath,
                                         modelHash: result.checksums["model"] ?? "", target: experiment.toolchain.target,
                                         options: options, calibration: check.needsCalibrationData ? inputFiles : nil,
                                         stagePrefix: "", result: &result)
        result.toolchain?.artifactSHA256 = artifact.hash
        result.toolchain?.buildLog = artifact.log
        result.toolchain?.effectiveOptions = artifact.effectiveOptions
        result.toolchain?.artifactCache = artifact.cache

        // 4. Deploy, 5. warm up, 6. measure, 7. outputs.
        let deployedOutputs = workspace.appendingPathComponent("outputs", isDirectory: true)
        let session = try DeployedRunner(board: board, toolchain: toolchain, artifact: artifact, inputs: inputFiles,
                                        target: experiment.toolchain.target, timeout: plan.requestTimeoutS, runner: self)
        cleanups.append { _ in session.close() }
        try session.start(result: &result)
        result.toolchain?.runner = session.greeting
        // The board's probes sample through warm-up and measurement, on the iterations'
        // clock; a probe that fails is recorded with its gap and never stops the run.
        let probes = boardProbes(experiment.board, result: &result)
        // Host-clock series go onto the runner's clock: its offset before the probes
        // start and after the measurement (the drift between), while they still sample.
        let clockBefore = probes == nil ? nil : clockOffset(session, result: &result)
        if let late = probes?.start(), !late.isEmpty {
            log(&result, "measure", "probe(s) \(late.joined(separator: ", ")) gave no sample within 5 s of starting; measuring anyway")
        }
        do {
            try warmUpAndMeasure(session, plan: plan, result: &result)
        } catch {
            recordProbes(probes, alignment: clockBefore.map { ClockAlignment(before: $0, after: nil) }, into: &result)
            throw error
        }
        let clockAfter = clockBefore == nil ? nil : clockOffset(session, result: &result)
        recordProbes(probes, alignment: clockBefore.map { ClockAlignment(before: $0, after: clockAfter) }, into: &result)
        try runScenario(session, plan: plan, result: &result)
        if plan.nativeBenchmarkS > 0 {
            // The vendor's figures are context, not the measurement: a runner without
            // a tool, or a tool that fails, is logged and the experiment goes on.
            do {
                result.measurement?.nativeBenchmark = try session.nativeBenchmark(seconds: plan.nativeBenchmarkS)
                log(&result, "native benchmark", "\(plan.nativeBenchmarkS) s of the toolchain's own benchmark recorded")
            } catch {
                log(&result, "native benchmark", "none recorded: \(error)")
            }
        }
        let outputs = try session.outputs(into: deployedOutputs, result: &result)
        session.close()
        // What the run left behind: clocks, temperatures and load right after measuring.
        if let after = try? board.conditions(ConditionsRequest(apply: [:])) {
            result.board?.conditionsAfter = after
            log(&result, "conditions", "observed \(after.observed.count) conditions after the run")
        }

        // 8. Reference outputs and the comparison.
        let reference = try referenceOutputs(file, workspace: workspace, result: &result, cleanups: &cleanups)
        let report = try stage("compare") { () -> SemanticReport in
            let deployed = try loadTensors(outputs, from: deployedOutputs, label: "deployed output")
            for (name, _) in outputs { result.checksums["output:\(name)"] = try hashFile(deployedOutputs.appendingPathComponent(outputs[name]!).path, role: "output") }
            var report = try SemanticPreservation.compare(reference: reference, deployed: deployed, metric: metric,
                                                          threshold: experiment.semanticPreservation.threshold,
                                                          options: ComparisonOptions(experiment.semanticPreservation))
            if let labels = experiment.semanticPreservation.labels {
                let inputs = try inputFiles.mapValues { try NPY.read(contentsOf: URL(fileURLWithPath: $0)) }
                do {
                    report.accuracy = try AccuracyMetrics.evaluate(labels: labels, of: file, reference: reference, deployed: deployed,
                                                                   predictors: AccuracyMetrics.inputFeatures(inputs))
                } catch let error as AccuracyError {
                    // Labels that do not fit the outputs are the experiment's mistake.
                    throw StageFailure(stage: "compare", reason: "\(error)", kind: .userInput)
                }
            }
            return report
        }
        result.semanticPreservation = report
        log(&result, "compare", "\(report.preservedSamples)/\(report.samples) samples preserved (\(ResultPresenter.criterion(report)))")
        if let accuracy = report.accuracy { log(&result, "compare", "accuracy against \(accuracy.labels) computed for both sides") }
    }

    // MARK: Steps

    /// The offline or server scenario, after the single-stream measurement (whose
    /// median sets where the server's rate search starts).
    private func runScenario(_ session: DeployedRunner, plan: MeasurementPlan, result: inout ExperimentResult) throws {
        switch plan.scenario {
        case .singleStream:
            return
        case .offline:
            let queries = plan.scenarioQueries ?? 1_000
            let reply = try session.offline(queries: queries)
            let throughput = Double(queries) / (Double(max(reply.totalNs, 1)) / 1e9)
            result.measurement?.scenario = .init(scenario: .offline, offline: .init(
                queries: queries, totalNs: reply.totalNs, throughputPerS: throughput, durationsNs: reply.durationsNs))
            log(&result, "scenario", String(format: "offline: %d queries in %@, %.1f queries/s", queries,
                                            ResultPresenter.duration(Double(reply.totalNs)), throughput))
        case .server:
            let queries = plan.scenarioQueries ?? 2_000
            let targetNs = Int64(((plan.serverTargetLatencyMs ?? 0) * 1e6).rounded())
            var server = ExperimentResult.ScenarioRecord.Server(percentile: plan.serverPercentile, targetNs: targetNs,
                                                                queriesPerSchedule: queries)
            var schedules: UInt64 = 0
            // The runner serves each query at its arrival and times it; latencies follow from
            // those times by the one-worker queue, so a load generator that wakes late (a
            // loaded host's scheduler) adds no latency the model did not cause.
            func measure(_ rate: Double) throws -> (latencies: [Int64], served: RunnerServed) {
                schedules += 1
                let arrivals = ServerScenario.arrivals(ratePerS: rate, count: queries, seed: schedules)
                let served = try session.server(arrivalsNs: arrivals, placement: plan.inputPlacement)
                return (ServerScenario.latencies(arrivalsNs: arrivals, serviceNs: served.durationsNs), served)
            }
            if let rate = plan.serverRatePerS {
                let (latencies, served) = try measure(rate)
                server.ratePerS = rate
                server.latenciesNs = latencies
                server.waitsNs = served.waitsNs
                server.verdict = ServerScenario.verdict(latenciesNs: latencies, percentile: plan.serverPercentile, targetNs: targetNs)
                log(&result, "scenario", String(format: "server at %.1f queries/s: p%g %@ against a target of %@: %@ (%d of %d over)",
                                                rate, plan.serverPercentile * 100, ResultPresenter.duration(Double(server.verdict?.percentileNs ?? 0)),
                                                ResultPresenter.duration(Double(targetNs)), server.verdict?.outcome.rawValue ?? "?",
                                                server.verdict?.overTarget ?? 0, queries))
            } else {
                // Start at half the single-stream capacity: the search brackets from there.
                let median = max(result.measurement?.summary.median ?? 1e6, 1)
                let search = try ServerScenario.highestRate(startPerS: 0.5e9 / median, percentile: plan.serverPercentile, targetNs: targetNs,
                                                            steps: plan.serverSearchSteps) { try measure($0).latencies }
                server.search = search
                log(&result, "scenario", search.highestMeetingPerS.map {
                    String(format: "server: highest rate meeting p%g ≤ %@ is %.1f queries/s (%d schedules of %d queries)",
                           plan.serverPercentile * 100, ResultPresenter.duration(Double(targetNs)), $0, search.tried.count, queries)
                } ?? "server: no rate tried met the target (\(search.tried.count) schedules)")
            }
            result.measurement?.scenario = .init(scenario: .server, server: server)
        }
    }

    /// Waits until the board's hottest temperature is back within the plan's band
    /// of what it was before the experiment (see `CoolDown`), and records it.
    private func coolDown(_ board: PluginBoard, plan: MeasurementPlan, result: inout ExperimentResult) {
        guard plan.coolDownTimeoutS > 0, let before = result.board?.conditions else { return }
        guard let baseline = CoolDown.hottest(before.observed) else {
            result.coolDown = .noSensor(bandC: plan.coolDownBandC, timeoutS: plan.coolDownTimeoutS)
            log(&result, "cool-down", result.coolDown!.note)
            return
        }
        let record = CoolDown.wait(baselineC: baseline, bandC: plan.coolDownBandC, timeoutS: plan.coolDownTimeoutS,
                                   pollS: plan.coolDownPollS,
                                   read: { (try? board.conditions(ConditionsRequest())).flatMap { CoolDown.hottest($0.observed) } })
        result.coolDown = record
        log(&result, "cool-down", record.note)
    }

    /// Puts the board's conditions back as they were before the tune step; the
    /// result records what was restored, or why it could not be.
    private func restoreConditions(_ board: PluginBoard, result: inout ExperimentResult) {
        do {
            let restored = try board.conditions(ConditionsRequest(restore: true))
            result.board?.restored = restored
            log(&result, "conditions", "restored" + (restored.applied.isEmpty ? " (nothing was changed)" : ": "
                + restored.applied.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ", ")))
        } catch {
            log(&result, "conditions", "could not restore the board's conditions: \(error)")
        }
    }

    private func powerCycle(_ boardName: String, result: inout ExperimentResult) throws {
        guard let power = lab.inventory.inventory.boards[boardName]?.power else { return }
        try stage("reset") {
            let outlet = try lab.powerSwitch(power.switch)
            try outlet.set(OutletCommand(outlet: power.outlet, on: false))
            Thread.sleep(forTimeInterval: power.offTimeS ?? 5)
            try outlet.set(OutletCommand(outlet: power.outlet, on: true))
        }
        log(&result, "reset", "power-cycled outlet \(power.outlet) of \(power.switch)")
    }

    struct Artifact {
        var directory: URL
        var file: String
        var hash: String
        var log: String
        var effectiveOptions: JSONValue?
        var cache: String
    }

    /// Runs the compatibility checks and ends the experiment on any error,
    /// before the board is touched; warnings are logged and kept in the result.
    private func checkCompatibility(toolchain: PluginToolchain, description: ToolchainDescription, model: String,
                                    target: String, options: JSONValue, boardName: String, board: BoardDescription?,
                                    stagePrefix: String, result: inout ExperimentResult) throws -> CompatibilityCheck {
        let check = try stage(stagePrefix + "check") {
            try CompatibilityCheck.run(model: model, toolchain: toolchain, description: description, target: target,
                                       options: options, boardName: boardName, board: board)
        }
        for finding in check.findings where finding.severity != .error {
            log(&result, stagePrefix + "check", finding.description)
        }
        guard check.compatible else {
            throw StageFailure(stage: stagePrefix + "check", reason: "\(description.name) \(description.version) cannot build this model for '\(target)' on \(boardName): \(check.errorSummary)",
                               kind: .userInput)
        }
        log(&result, stagePrefix + "check", "compatible (\(check.findings.count) finding(s))" + (check.needsCalibrationData ? "; the build calibrates on the experiment's inputs" : ""))
        return check
    }

    /// What a cache entry records: the artifact's file and the SHA-256 of every
    /// file in the entry, so that a changed byte is noticed before it is deployed.
    struct CacheRecord: Codable {
        var artifact: String
        var hash: String
        var log: String
        var effectiveOptions: JSONValue?
        var files: [String: String]?
    }

    /// Builds, or reuses the artifact cached under the SHA-256 of the model, the
    /// toolchain's name, version and environment lock, the plugin version, the
    /// target, the options and (when the build calibrates) the calibration inputs.
    /// A cache entry whose files no longer match their hashes is removed and rebuilt.
    private func buildArtifact(toolchain: PluginToolchain, description: ToolchainDescription, model: String, modelHash: String,
                               target: String, options: JSONValue, calibration: [String: String]?, stagePrefix: String,
                               result: inout ExperimentResult) throws -> Artifact {
        let buildStage = stagePrefix + "build"
        let key = try stage(buildStage) { () -> String in
            var parts = [modelHash, description.name, description.version, toolchain.environment?.lock ?? "no environment",
                         toolchain.plugin.version, target, try JSONCoding.encode(options)]
            for (name, path) in (calibration ?? [:]).sorted(by: { $0.key < $1.key }) {
                parts.append("calibration \(name) \(try SHA256Digest.hex(ofFile: path))")
            }
            return try SHA256Digest.hex(of: Data(parts.joined(separator: "\n").utf8))
        }
        let cached = lab.home.artifacts.appendingPathComponent(key, isDirectory: true)
        let recordFile = cached.appendingPathComponent("artifact.json")
        var cacheOutcome = "built"
        if let data = try? Data(contentsOf: recordFile) {
            let record = try? JSONDecoder().decode(CacheRecord.self, from: data)
            if let record, let problem = Self.damage(of: cached, record) {
                log(&result, buildStage, "cache entry \(key.prefix(12)) is corrupted (\(problem)); removing it and building again")
                try? FileManager.default.removeItem(at: cached)
                cacheOutcome = "rebuilt"
            } else if let record {
                log(&result, buildStage, "cache hit: reusing artifact \(key.prefix(12)), all \(record.files?.count ?? 1) file(s) match their SHA-256")
                return Artifact(directory: cached, file: record.artifact, hash: record.hash, log: record.log,
                                effectiveOptions: record.effectiveOptions, cache: "cache hit")
            } else {
                log(&result, buildStage, "cache entry \(key.prefix(12)) has an unreadable record; removing it and building again")
                try? FileManager.default.removeItem(at: cached)
                cacheOutcome = "rebuilt"
            }
        } else {
            log(&result, buildStage, "cache miss for \(key.prefix(12))")
        }
        log(&result, buildStage, "building with \(description.name) \(description.version) for \(target)")
        let staging = lab.home.artifacts.appendingPathComponent(".\(key)-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        return try stage(buildStage) {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            let built = try toolchain.build(BuildRequest(model: model, target: target, options: options, outputDirectory: staging.path,
                                                         calibrationInputs: calibration))
            let artifactURL = URL(fileURLWithPath: built.artifact)
            guard artifactURL.deletingLastPathComponent().standardizedFileURL.path == staging.standardizedFileURL.path else {
                throw StageFailure(stage: buildStage, reason: "the toolchain put its artifact outside the build folder: \(built.artifact)")
            }
            let hash = try hashFile(built.artifact, role: "artifact")
            let record = CacheRecord(artifact: artifactURL.lastPathComponent, hash: hash, log: built.log,
                                     effectiveOptions: built.effectiveOptions, files: try Self.fileHashes(in: staging))
            try JSONEncoder().encode(record).write(to: staging.appendingPathComponent("artifact.json"))
            // Another run may have built the same artifact meanwhile: theirs is as good.
            if (try? FileManager.default.moveItem(at: staging, to: cached)) == nil, !FileManager.default.fileExists(atPath: recordFile.path) {
                throw StageFailure(stage: buildStage, reason: "cannot place the artifact in the cache \(cached.path)")
            }
            return Artifact(directory: cached, file: record.artifact, hash: hash, log: built.log,
                            effectiveOptions: built.effectiveOptions, cache: cacheOutcome)
        }
    }

    /// SHA-256 of every regular file under `folder` (but the record itself), by relative path.
    static func fileHashes(in folder: URL) throws -> [String: String] {
        var hashes = [String: String]()
        let root = folder.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { return hashes }
        for case let relative as String in walker where relative != "artifact.json" {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                hashes[relative] = try SHA256Digest.hex(ofFile: path)
            }
        }
        return hashes
    }

    /// What is wrong with a cache entry, or nil when every recorded file is there with its hash.
    static func damage(of entry: URL, _ record: CacheRecord) -> String? {
        let expected = record.files ?? [record.artifact: record.hash]
        for (relative, hash) in expected.sorted(by: { $0.key < $1.key }) {
            let path = entry.appendingPathComponent(relative).path
            guard FileManager.default.fileExists(atPath: path) else { return "\(relative) is missing" }
            guard (try? SHA256Digest.hex(ofFile: path)) == hash else { return "\(relative) does not match its SHA-256" }
        }
        return nil
    }

    /// Warm-up until steady state is detected (`WarmUpDetector`: changepoints and
    /// MSER-5 agreeing, on two checks in a row), then measurement until the stopping rule: at least
    /// `min_iterations` and `min_time_s`, and the median's interval narrow enough —
    /// or a maximum reached.
    /// The inventory probes attached to the board, created; one that cannot be
    /// created is recorded as failed rather than failing the experiment. A probe
    /// setting `pid: runner` is given the runner's process id, when the board
    /// reports it (`runner_pid`, as the host board does).
    private func boardProbes(_ board: String, result: inout ExperimentResult) -> ProbeRecorder? {
        let entries = (lab.inventory.inventory.probes ?? [:]).filter { $0.value.board == board }
        guard !entries.isEmpty else { return nil }
        let names = entries.keys.sorted()
        let runnerPID = result.board?.runnerConditions?["runner_pid"].flatMap { Double($0) }
        let probes = names.map { name -> (name: String, probe: any Probe) in
            do {
                var settings = entries[name]?.settings
                if case .object(var members)? = settings, members["pid"] == .string("runner") {
                    guard let runnerPID else {
                        throw LabError.inventory("probe '\(name)': 'pid: runner' needs a board that reports its runner's process id; board '\(board)' does not")
                    }
                    members["pid"] = .number(runnerPID)
                    settings = .object(members)
                }
                return (name, try lab.probe(name, settings: settings))
            } catch {
                return (name, UnavailableProbe(error: error))
            }
        }
        log(&result, "measure", "recording probe(s) \(names.joined(separator: ", ")) during warm-up and measurement")
        return ProbeRecorder(probes: probes)
    }

    /// The runner's clock against the host's, logged; nil (and logged) when the runner
    /// does not answer `clock`: its clock is then taken to be the host's.
    private func clockOffset(_ session: DeployedRunner, result: inout ExperimentResult) -> ClockOffset? {
        do {
            guard let offset = try session.clockOffset() else { return nil }
            log(&result, "measure", String(format: "runner clock − host clock: %.3f ms ± %.3f ms (best round trip %.3f ms of %d)",
                                           Double(offset.offsetNs) / 1e6, Double(offset.uncertaintyNs) / 1e6,
                                           Double(offset.roundTripNs) / 1e6, offset.exchanges))
            return offset
        } catch {
            log(&result, "measure", "the runner's clock is taken to be the host's: it did not answer 'clock' (\(error))")
            return nil
        }
    }

    /// Stops the recording and stores each probe's record on the runner's clock,
    /// logging failures, gaps and rates not met.
    private func recordProbes(_ probes: ProbeRecorder?, alignment: ClockAlignment?, into result: inout ExperimentResult) {
        guard let probes else { return }
        let records = probes.stop(alignment: alignment)
        result.probes = records
        if let alignment {
            result.clock = alignment
            log(&result, "measure", alignment.note)
        }
        if let measurement = result.measurement {
            let energy = records.flatMap { EnergyPerInference.analyze($0, startsNs: measurement.startsNs, durationsNs: measurement.durationsNs) }
            if !energy.isEmpty {
                result.energy = energy
                for record in energy { log(&result, "measure", "energy, \(record.probe).\(record.channel): \(record.note)") }
            }
        }
        for record in records {
            if let failure = record.failure {
                log(&result, "measure", String(format: "probe %@: %d samples, then a gap of %.3f s: %@", record.name, record.samples.count,
                                               record.gap?.seconds ?? 0, failure))
            } else {
                log(&result, "measure", "probe \(record.name): \(record.samples.count) samples on \(record.channels.count) channel(s)")
            }
            for sampling in record.sampling ?? [] where sampling.isWorthNoting {
                log(&result, "measure", "probe \(record.name).\(sampling.channel): \(sampling.note)")
            }
        }
    }

    private func warmUpAndMeasure(_ session: DeployedRunner, plan: MeasurementPlan, result: inout ExperimentResult) throws {
        var starts = [Int64](), durations = [Int64](), canary = [Int64]()
        var canaryComplete = plan.canary
        var split = RuntimeSplit()
        var placement = InputPlacementRecord.Collector(requested: plan.inputPlacement)
        var peak: Int64 = 0
        var reason = ""
        var rule = StoppingRule.maximumIterations
        var invocations = [ExperimentResult.InvocationRecord]()
        var groups = [[Double]]()
        let count = max(1, plan.invocations)
        for invocation in 1...count {
            if invocation > 1 {
                // A fresh runner process: what differs between processes (memory layout,
                // thread placement, JIT decisions) shows up between invocations.
                try session.restart(result: &result)
            }
            var warmUp = [Int64]()
            var detector = WarmUpDetector(minimumIterations: min(plan.minWarmupIterations, plan.maxWarmupIterations))
            while warmUp.count < plan.maxWarmupIterations {
                let batch = try session.run(iterations: min(plan.batchIterations, plan.maxWarmupIterations - warmUp.count), stage: "warm-up",
                                            placement: plan.inputPlacement)
                warmUp += batch.durationsNs
                if detector.add(batch.durationsNs.map(Double.init)) { break }
            }
            let analysis = detector.analysis
            if invocation == 1 {
                result.warmUp = .init(durationsNs: warmUp, analysis: analysis, noSteadyState: analysis.steadyStateIndex == nil)
            }
            let which = count > 1 ? " (invocation \(invocation) of \(count))" : ""
            log(&result, "warm-up", (analysis.steadyStateIndex.map {
                "steady state from iteration \($0) of \(warmUp.count) (\(analysis.classification?.rawValue ?? "?"), MSER-5 at \(analysis.mser5Index.map(String.init) ?? "none"))"
            } ?? "no steady state detected within \(warmUp.count) iterations; measuring anyway, flagged") + which)

            // Each invocation gets its share of the time budget and the full stopping rule.
            let maxTime = plan.maxTimeS / Double(count)
            var own = [Int64]()
            let began = Date()
            while true {
                let batch = try session.run(iterations: plan.batchIterations, stage: "measure", canary: plan.canary,
                                            placement: plan.inputPlacement)
                placement.add(batch)
                starts += batch.startsNs
                durations += batch.durationsNs
                own += batch.durationsNs
                // A runner without a canary answers without one: then there is no correction.
                if let canaryNs = batch.canaryNs, canaryNs.count == batch.durationsNs.count { canary += canaryNs } else { canaryComplete = false }
                split.add(batch)
                peak = max(peak, batch.peakMemoryBytes)
                let elapsed = Date().timeIntervalSince(began)
                if own.count >= plan.maxIterations {
                    (rule, reason) = (.maximumIterations, "maximum iterations (\(plan.maxIterations))")
                    break
                }
                if elapsed >= maxTime {
                    (rule, reason) = (.maximumTime, "maximum time (\(maxTime) s)")
                    break
                }
                if own.count >= plan.minIterations, elapsed >= plan.minTimeS / Double(count) {
                    // A cheaper bootstrap for the stopping decision; the stored summary uses the full one.
                    let sorted = own.map(Double.init).sorted()
                    let interim = Statistics.bootstrapIntervals(sorted: sorted, level: 0.95, resamples: 400,
                                                                seed: Statistics.defaultSeed).median
                    let width = interim.width / max(Statistics.quantile(sorted: sorted, 0.5), 1)
                    if width <= plan.targetRelativeCIWidth {
                        (rule, reason) = (.confidenceInterval, String(format: "confidence interval of the median within %.2f%%", width * 100))
                        break
                    }
                }
            }
            let ownValues = own.map(Double.init)
            groups.append(ownValues)
            invocations.append(.init(warmUpIterations: warmUp.count, steadyStateIndex: analysis.steadyStateIndex, iterations: own.count,
                                     medianNs: Statistics.quantile(sorted: ownValues.sorted(), 0.5), stoppingRule: rule))
        }
        let values = durations.map(Double.init)
        let summary = Statistics.summarize(values)
        let outliers = Statistics.outliers(values)
        let madSet = Set(outliers.mad)
        let kept = values.indices.filter { !madSet.contains($0) }.map { values[$0] }
        let filtered = kept.isEmpty ? nil : Statistics.summarize(kept)
        result.measurement = .init(startsNs: starts, durationsNs: durations, summary: summary, peakMemoryBytes: peak,
                                   stoppedBecause: reason, stoppingRule: rule, outliers: outliers, filteredSummary: filtered,
                                   filter: "without the \(outliers.mad.count) values whose modified z-score exceeds \(Statistics.madThreshold) (MAD rule)")
        log(&result, "measure", "\(durations.count) iterations; stopped on \(reason)")
        if count > 1 {
            let between = Statistics.invocationMedianInterval(groups: groups, seed: Statistics.defaultSeed)
            result.measurement?.invocations = invocations
            result.measurement?.invocationSummary = .init(medianNs: between.estimate, interval: between.interval)
            log(&result, "measure", "\(count) invocations, medians " + invocations.map { ResultPresenter.duration($0.medianNs) }.joined(separator: ", ")
                + "; median of medians \(ResultPresenter.duration(between.estimate)), 95% interval across invocations ["
                + "\(ResultPresenter.duration(between.interval.lower)), \(ResultPresenter.duration(between.interval.upper))]")
        }
        let placed = placement.record
        result.measurement?.inputPlacement = placed
        log(&result, "measure", placed.note)
        if let phases = split.record {
            result.measurement?.phases = phases
            log(&result, "measure", "the runtime's own split kept: \(phases.keys.sorted().joined(separator: ", "))")
        }
        if canaryComplete, !canary.isEmpty {
            let report = Canary.analyze(durations: durations, canary: canary)
            result.measurement?.canary = report
            log(&result, "filter", "canary: \(report.note)")
        } else if plan.canary {
            log(&result, "filter", "no canary correction: the runner does not time a canary workload")
        }
        log(&result, "filter", "\(outliers.tukey.count) Tukey and \(outliers.mad.count) MAD outliers labelled, all kept in the raw series")
    }

    private func referenceOutputs(_ file: ExperimentFile, workspace: URL, result: inout ExperimentResult,
                                  cleanups: inout [(inout ExperimentResult) -> Void]) throws -> [String: Tensor] {
        let reference = file.experiment.reference
        if let outputs = reference.outputs {
            return try stage("reference") {
                var tensors = [String: Tensor]()
                for (name, path) in outputs {
                    let resolved = file.resolve(path)
                    result.checksums["reference:\(name)"] = try hashFile(resolved, role: "reference output '\(name)'")
                    tensors[name] = try NPY.read(contentsOf: URL(fileURLWithPath: resolved))
                }
                return tensors
            }
        }
        guard let name = reference.toolchain else { throw StageFailure(stage: "reference", reason: "no reference given") }
        let modelPath = file.resolve(reference.model ?? file.experiment.model)
        if reference.model != nil {
            result.checksums["reference_model"] = try stage("reference") { try hashFile(modelPath, role: "reference model") }
        }
        let toolchain = try stage("reference") { try lab.toolchain(name, version: nil) }
        let description = try stage("reference") { try toolchain.describe() }
        let board = try stage("reference") { try lab.referenceBoard() }
        let target = description.targets.first ?? "cpu"
        let check = try checkCompatibility(toolchain: toolchain, description: description, model: modelPath, target: target,
                                           options: .object([:]), boardName: "the reference board",
                                           board: try? board.describe(), stagePrefix: "reference ", result: &result)
        var inputs = [String: String]()
        for (input, path) in file.experiment.inputs { inputs[input] = file.resolve(path) }
        let artifact = try buildArtifact(toolchain: toolchain, description: description, model: modelPath,
                                         modelHash: result.checksums["reference_model"] ?? result.checksums["model"] ?? "",
                                         target: target, options: .object([:]), calibration: check.needsCalibrationData ? inputs : nil,
                                         stagePrefix: "reference ", result: &result)
        result.reference = .init(name: name, plugin: toolchain.plugin.name, pluginVersion: toolchain.plugin.version,
                                 version: description.version, target: target, options: .object([:]),
                                 artifactSHA256: artifact.hash, buildLog: nil, runner: nil,
                                 packages: toolchain.environment?.frozen, environmentLock: toolchain.environment?.lock,
                                 artifactCache: artifact.cache)
        let folder = workspace.appendingPathComponent("reference", isDirectory: true)
        let session = try DeployedRunner(board: board, toolchain: toolchain, artifact: artifact, inputs: inputs, target: target,
                                        timeout: (file.experiment.measurement ?? MeasurementPlan()).requestTimeoutS, runner: self,
                                        stagePrefix: "reference ")
        cleanups.append { _ in session.close() }
        try session.start(result: &result)
        result.reference?.runner = session.greeting
        let outputs = try session.outputs(into: folder, result: &result)
        session.close()
        return try stage("reference") {
            for (output, fileName) in outputs {
                result.checksums["reference:\(output)"] = try hashFile(folder.appendingPathComponent(fileName).path, role: "reference output")
            }
            return try loadTensors(outputs, from: folder, label: "reference output")
        }
    }

    // MARK: Helpers

    /// Answers an experiment that targets `predicted:<board>` with the trained
    /// predictors under the lab's predictors folder that speak for that board and
    /// the experiment's toolchain: the result holds the predicted values with
    /// each predictor's version and validation errors, and no measurement.
    private func predict(_ experiment: Experiment, board: String, model: String, into result: inout ExperimentResult) throws {
        let predictor = Predictor(home: lab.home)
        let folders = predictor.folders(board: board, toolchain: experiment.toolchain.name, options: experiment.toolchain.options)
        guard !folders.isEmpty else {
            throw StageFailure(stage: "predict", reason: "no trained predictor under \(lab.home.predictors.path) speaks for board '\(board)' and toolchain '\(experiment.toolchain.name)' with these options; train one with `mlbench predictor train --output \(lab.home.predictors.path)/<name>` on a table of that board and toolchain", kind: .userInput)
        }
        let features: GraphFeatures
        do { features = try GraphFeatures.extract(path: model) } catch {
            throw StageFailure(stage: "predict", reason: "the model cannot be described for the predictors: \(error)", kind: .userInput)
        }
        var targets = [String: Guidance.Prediction]()
        for folder in folders {
            let predictions = try stage("predict") { try predictor.predict(features: features, folder: folder) }
            // The first folder (in name order) that predicts a target speaks for it.
            targets.merge(predictions) { first, _ in first }
        }
        result.prediction = .init(board: board, toolchain: experiment.toolchain.name, targets: targets, predictors: folders)
        for (target, prediction) in targets.sorted(by: { $0.key < $1.key }) {
            let mape = (prediction.validation?["unseen_architectures"]?["mape"] ?? nil).map { String(format: ", MAPE %.1f %% on unseen architectures", $0) } ?? ""
            log(&result, "predict", "\(target) \(prediction.value) (\(prediction.regressor) \(prediction.version)\(mape)); nothing measured, board \(board) not touched")
        }
    }

    func stage<T>(_ name: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as StageFailure {
            throw failure
        } catch let failure as PluginFailure {
            throw StageFailure(stage: name, reason: "\(failure)", kind: StageFailure.kind(of: failure, stage: name))
        } catch let error as PluginError {
            if case .call(_, _, _, let failure) = error {
                throw StageFailure(stage: name, reason: "\(error)", kind: StageFailure.kind(of: failure, stage: name))
            }
            throw StageFailure(stage: name, reason: "\(error)")
        } catch {
            throw StageFailure(stage: name, reason: "\(error)")
        }
    }

    func log(_ result: inout ExperimentResult, _ stage: String, _ message: String) {
        result.log.append(.init(at: Date(), stage: stage, message: message))
        progress("[\(stage)] \(message)")
    }

    /// Keeps the file in the lab's blob store (content-addressed, once per content) and
    /// returns its SHA-256, which the result records: replay and `mlbench verify` use it.
    private func hashFile(_ path: String, role: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw StageFailure(stage: "inputs", reason: "the \(role) file \(path) does not exist")
        }
        return try lab.home.blobs.put(file: path)
    }

    private func loadTensors(_ files: [String: String], from folder: URL, label: String) throws -> [String: Tensor] {
        var tensors = [String: Tensor]()
        for (name, fileName) in files {
            tensors[name] = try NPY.read(contentsOf: folder.appendingPathComponent(fileName))
        }
        return tensors
    }
}

/// A probe the inventory names but that could not be created (its device is
/// missing, its settings are wrong): it fails to start with that error, so the
/// recording names it and keeps the gap.
private final class UnavailableProbe: Probe, @unchecked Sendable {
    let error: Error
    init(error: Error) { self.error = error }
    func describe() throws -> ProbeDescription { throw error }
    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws { throw error }
    func stop() throws {}
}
