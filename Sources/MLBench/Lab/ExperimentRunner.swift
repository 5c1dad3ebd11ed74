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
            var cleanups: [() -> Void] = []
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
            for cleanup in cleanups.reversed() { cleanup() }
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
            (result.warmUp, result.measurement, result.semanticPreservation) = (nil, nil, nil)
            try? FileManager.default.removeItem(at: workspace)
        }
        result.finishedAt = Date()
        try store.insert(result)
        return result
    }

    private func execute(_ file: ExperimentFile, into result: inout ExperimentResult, workspace: URL,
                         cleanups: inout [() -> Void]) throws {
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

        // 1. Reset, 2. conditions.
        let resetTimeout = lab.inventory.inventory.boards[experiment.board]?.resetTimeoutS ?? 300
        try powerCycle(experiment.board, result: &result)
        let reset = try stage("reset") { try board.reset(ResetRequest(timeoutMs: Int(resetTimeout * 1000))) }
        guard reset.ready else { throw StageFailure(stage: "reset", reason: "the board did not become ready: \(reset.log)") }
        log(&result, "reset", reset.log)
        let conditions = try stage("conditions") { try board.conditions(ConditionsRequest(apply: experiment.conditions ?? [:])) }
        result.board?.conditions = conditions
        log(&result, "conditions", "applied \(conditions.applied.count), observed \(conditions.observed.count)")

        // 3. Check and build.
        let artifact = try buildArtifact(toolchain: toolchain, description: toolchainDescription, model: modelPath,
                                         modelHash: result.checksums["model"] ?? "", target: experiment.toolchain.target,
                                         options: options, stagePrefix: "", result: &result)
        result.toolchain?.artifactSHA256 = artifact.hash
        result.toolchain?.buildLog = artifact.log

        // 4. Deploy, 5. warm up, 6. measure, 7. outputs.
        let deployedOutputs = workspace.appendingPathComponent("outputs", isDirectory: true)
        let session = try DeployedRunner(board: board, toolchain: toolchain, artifact: artifact, inputs: inputFiles,
                                        target: experiment.toolchain.target, timeout: plan.requestTimeoutS, runner: self)
        cleanups.append { session.close() }
        try session.start(result: &result)
        result.toolchain?.runner = session.greeting
        try warmUpAndMeasure(session, plan: plan, result: &result)
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
    }

    /// Checks compatibility, then builds — or reuses the artifact cached under
    /// the hash of model, toolchain version, target and options.
    private func buildArtifact(toolchain: PluginToolchain, description: ToolchainDescription, model: String, modelHash: String,
                               target: String, options: JSONValue, stagePrefix: String, result: inout ExperimentResult) throws -> Artifact {
        let check = try stage(stagePrefix + "check") { try toolchain.check(CompatibilityRequest(model: model, target: target, options: options)) }
        guard check.compatible else {
            throw StageFailure(stage: stagePrefix + "check", reason: "\(description.name) \(description.version) cannot build this model for '\(target)': \(check.issues.joined(separator: "; "))")
        }
        let key = try stage(stagePrefix + "build") {
            try SHA256Digest.hex(of: Data([modelHash, description.name, description.version, toolchain.plugin.version, target,
                                           try JSONCoding.encode(options)].joined(separator: "\n").utf8))
        }
        let cached = lab.home.artifacts.appendingPathComponent(key, isDirectory: true)
        let recordFile = cached.appendingPathComponent("artifact.json")
        struct Record: Codable { var artifact: String; var hash: String; var log: String }
        if let data = try? Data(contentsOf: recordFile), let record = try? JSONDecoder().decode(Record.self, from: data) {
            log(&result, stagePrefix + "build", "reusing cached artifact \(key.prefix(12))")
            return Artifact(directory: cached, file: record.artifact, hash: record.hash, log: record.log)
        }
        log(&result, stagePrefix + "build", "building with \(description.name) \(description.version) for \(target)")
        let staging = lab.home.artifacts.appendingPathComponent(".\(key)-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        return try stage(stagePrefix + "build") {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            let built = try toolchain.build(BuildRequest(model: model, target: target, options: options, outputDirectory: staging.path))
            let artifactURL = URL(fileURLWithPath: built.artifact)
            guard artifactURL.deletingLastPathComponent().standardizedFileURL.path == staging.standardizedFileURL.path else {
                throw StageFailure(stage: stagePrefix + "build", reason: "the toolchain put its artifact outside the build folder: \(built.artifact)")
            }
            let hash = try hashFile(built.artifact, role: "artifact")
            let record = Record(artifact: artifactURL.lastPathComponent, hash: hash, log: built.log)
            try JSONEncoder().encode(record).write(to: staging.appendingPathComponent("artifact.json"))
            // Another run may have built the same artifact meanwhile: theirs is as good.
            if (try? FileManager.default.moveItem(at: staging, to: cached)) == nil, !FileManager.default.fileExists(atPath: recordFile.path) {
                throw StageFailure(stage: stagePrefix + "build", reason: "cannot place the artifact in the cache \(cached.path)")
            }
            return Artifact(directory: cached, file: record.artifact, hash: hash, log: built.log)
        }
    }

    /// Warm-up until steady state is detected (`WarmUpDetector`: changepoints and
    /// MSER-5 agreeing, on two checks in a row), then measurement until the stopping rule: at least
    /// `min_iterations` and `min_time_s`, and the median's interval narrow enough —
    /// or a maximum reached.
    private func warmUpAndMeasure(_ session: DeployedRunner, plan: MeasurementPlan, result: inout ExperimentResult) throws {
        var warmUp = [Int64]()
        var detector = WarmUpDetector(minimumIterations: min(plan.minWarmupIterations, plan.maxWarmupIterations))
        while warmUp.count < plan.maxWarmupIterations {
            let batch = try session.run(iterations: min(plan.batchIterations, plan.maxWarmupIterations - warmUp.count), stage: "warm-up")
            warmUp += batch.durationsNs
            if detector.add(batch.durationsNs.map(Double.init)) { break }
        }
        let analysis = detector.analysis
        let noSteadyState = analysis.steadyStateIndex == nil
        result.warmUp = .init(durationsNs: warmUp, analysis: analysis, noSteadyState: noSteadyState)
        log(&result, "warm-up", analysis.steadyStateIndex.map {
            "steady state from iteration \($0) of \(warmUp.count) (\(analysis.classification?.rawValue ?? "?"), MSER-5 at \(analysis.mser5Index.map(String.init) ?? "none"))"
        } ?? "no steady state detected within \(warmUp.count) iterations; measuring anyway, flagged")

        var starts = [Int64](), durations = [Int64](), canary = [Int64]()
        var canaryComplete = plan.canary
        var peak: Int64 = 0
        let began = Date()
        var reason = ""
        var rule = StoppingRule.maximumIterations
        while true {
            let batch = try session.run(iterations: plan.batchIterations, stage: "measure", canary: plan.canary)
            starts += batch.startsNs
            durations += batch.durationsNs
            // A runner without a canary answers without one: then there is no correction.
            if let canaryNs = batch.canaryNs, canaryNs.count == batch.durationsNs.count { canary += canaryNs } else { canaryComplete = false }
            peak = max(peak, batch.peakMemoryBytes)
            let elapsed = Date().timeIntervalSince(began)
            if durations.count >= plan.maxIterations {
                (rule, reason) = (.maximumIterations, "maximum iterations (\(plan.maxIterations))")
                break
            }
            if elapsed >= plan.maxTimeS {
                (rule, reason) = (.maximumTime, "maximum time (\(plan.maxTimeS) s)")
                break
            }
            if durations.count >= plan.minIterations, elapsed >= plan.minTimeS {
                // A cheaper bootstrap for the stopping decision; the stored summary uses the full one.
                let sorted = durations.map(Double.init).sorted()
                let interim = Statistics.bootstrapIntervals(sorted: sorted, level: 0.95, resamples: 400,
                                                            seed: Statistics.defaultSeed).median
                let width = interim.width / max(Statistics.quantile(sorted: sorted, 0.5), 1)
                if width <= plan.targetRelativeCIWidth {
                    (rule, reason) = (.confidenceInterval, String(format: "confidence interval of the median within %.2f%%", width * 100))
                    break
                }
            }
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
                                  cleanups: inout [() -> Void]) throws -> [String: Tensor] {
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
        let artifact = try buildArtifact(toolchain: toolchain, description: description, model: modelPath,
                                         modelHash: result.checksums["reference_model"] ?? result.checksums["model"] ?? "",
                                         target: target, options: .object([:]), stagePrefix: "reference ", result: &result)
        result.reference = .init(name: name, plugin: toolchain.plugin.name, pluginVersion: toolchain.plugin.version,
                                 version: description.version, target: target, options: .object([:]),
                                 artifactSHA256: artifact.hash, buildLog: nil, runner: nil)
        var inputs = [String: String]()
        for (input, path) in file.experiment.inputs { inputs[input] = file.resolve(path) }
        let folder = workspace.appendingPathComponent("reference", isDirectory: true)
        let session = try DeployedRunner(board: board, toolchain: toolchain, artifact: artifact, inputs: inputs, target: target,
                                        timeout: (file.experiment.measurement ?? MeasurementPlan()).requestTimeoutS, runner: self,
                                        stagePrefix: "reference ")
        cleanups.append { session.close() }
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
