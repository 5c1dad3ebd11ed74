import Foundation
import MLBenchCore

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
    func hashFile(_ path: String, role: String) throws -> String {
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
