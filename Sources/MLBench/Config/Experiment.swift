import Foundation
import MLBenchCore

/// An experiment definition: what to deploy, where, how to measure it and how
/// to judge that the deployed model still computes what the reference computes.
/// Written as YAML; `ExperimentSchema.json` is its published JSON Schema.
public struct Experiment: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    /// The model file, relative to the experiment file.
    public var model: String
    /// Model input name → `.npy` file holding every sample stacked on axis 0.
    public var inputs: [String: String]
    public var reference: Reference
    public var toolchain: ToolchainChoice
    /// The inventory name of the board, or `predicted:<board>`: the board's
    /// trained predictors answer instead of the board (see `predictedBoard`).
    public var board: String
    /// Controllable conditions to apply to the board (governor, cpus, ...).
    public var conditions: [String: String]?
    public var measurement: MeasurementPlan?
    public var semanticPreservation: SemanticCriterion

    /// The prefix of a predicted target.
    public static let predictedPrefix = "predicted:"

    /// The board named after `predicted:`, when the experiment targets its
    /// predictors rather than the board itself (nothing is reset, built or run).
    public var predictedBoard: String? {
        board.hasPrefix(Self.predictedPrefix) ? String(board.dropFirst(Self.predictedPrefix.count)) : nil
    }

    enum CodingKeys: String, CodingKey {
        case name, description, model, inputs, reference, toolchain, board, conditions, measurement
        case semanticPreservation = "semantic_preservation"
    }

    /// Where the reference outputs come from: files, or a reference toolchain
    /// run on the host.
    public struct Reference: Codable, Sendable, Equatable {
        /// Output name → `.npy` file, stacked like the inputs.
        public var outputs: [String: String]?
        /// The reference toolchain (e.g. onnxruntime) that computes them.
        public var toolchain: String?
        /// The model the reference runs; the experiment's model when absent.
        public var model: String?
    }

    public struct ToolchainChoice: Codable, Sendable, Equatable {
        /// The inventory name of the toolchain.
        public var name: String
        /// The environment version; the newest installed when absent.
        public var version: String?
        public var target: String
        public var options: JSONValue?
    }

    /// How to judge that the deployed model computes what the reference computes
    /// (`semantic_preservation` in the file). See `DistanceMetric` for the metrics.
    public struct SemanticCriterion: Codable, Sendable, Equatable {
        /// A `DistanceMetric` raw value: max_abs, cosine, l2, psnr, allclose, top_k.
        public var metric: String
        /// The largest distance (max_abs, cosine, l2) or the lowest PSNR in dB (psnr) of a
        /// preserved sample. Required in the file for those metrics; allclose and top_k do
        /// not use it and refuse it, and it reads as 0 for them.
        public var threshold: Double
        /// allclose's absolute tolerance (0 when absent).
        public var atol: Double?
        /// allclose's relative tolerance, relative to |reference| (0 when absent).
        public var rtol: Double?
        /// top_k's k (1 when absent).
        public var k: Int?
        /// Labels to measure accuracy against, for the deployed and the reference outputs.
        public var labels: Labels?

        public init(metric: String, threshold: Double, atol: Double? = nil, rtol: Double? = nil, k: Int? = nil,
                    labels: Labels? = nil) {
            self.metric = metric
            self.threshold = threshold
            self.atol = atol
            self.rtol = rtol
            self.k = k
            self.labels = labels
        }

        enum CodingKeys: String, CodingKey {
            case metric, threshold, atol, rtol, k, labels
        }

        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            metric = try container.decode(String.self, forKey: .metric)
            // Absent only for allclose and top_k (checked by `ExperimentFile.load`).
            threshold = try container.decodeIfPresent(Double.self, forKey: .threshold) ?? 0
            atol = try container.decodeIfPresent(Double.self, forKey: .atol)
            rtol = try container.decodeIfPresent(Double.self, forKey: .rtol)
            k = try container.decodeIfPresent(Int.self, forKey: .k)
            labels = try container.decodeIfPresent(Labels.self, forKey: .labels)
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(metric, forKey: .metric)
            if DistanceMetric(rawValue: metric)?.usesThreshold ?? true {
                try container.encode(threshold, forKey: .threshold)
            }
            try container.encodeIfPresent(atol, forKey: .atol)
            try container.encodeIfPresent(rtol, forKey: .rtol)
            try container.encodeIfPresent(k, forKey: .k)
            try container.encodeIfPresent(labels, forKey: .labels)
        }

        /// Ground truth for one output: `file` (a `.npy`, relative to the experiment file)
        /// holds one label per sample, stacked like the inputs.
        public struct Labels: Codable, Sendable, Equatable {
            public var file: String
            /// The model output the labels are for.
            public var output: String
            public var task: AccuracyTask

            public init(file: String, output: String, task: AccuracyTask) {
                self.file = file
                self.output = output
                self.task = task
            }
        }
    }
}

/// How long to warm up and measure, and when to stop.
public struct MeasurementPlan: Codable, Sendable, Equatable {
    public var minIterations: Int = 50
    public var maxIterations: Int = 100_000
    public var minTimeS: Double = 1
    public var maxTimeS: Double = 60
    /// Stop once the median's confidence interval is this narrow, relative to the median.
    public var targetRelativeCIWidth: Double = 0.02
    /// Iterations per runner request.
    public var batchIterations: Int = 25
    /// Warm-up ends when steady state is detected, or at this many iterations.
    public var maxWarmupIterations: Int = 2_000
    /// Warm-up iterations observed at least before steady state can be confirmed.
    public var minWarmupIterations: Int = 150
    /// How long one runner request may take before the runner is declared hung.
    public var requestTimeoutS: Double = 120
    /// How many times an experiment that failed with a transient fault is started again.
    public var maxRetries: Int = 2
    /// The wait before the first retry; it doubles before each further one.
    public var retryBackoffS: Double = 5
    /// Time a fixed reference workload after every measured iteration, to flag and
    /// leave out disturbed periods (runners without one ignore it).
    public var canary: Bool = true
    /// Seconds of the vendor's own benchmark tool (trtexec, xdputil benchmark) run
    /// on the deployed artifact after measuring, reported beside mlbench's figures;
    /// 0 (the default) runs none.
    public var nativeBenchmarkS: Int = 0
    /// After the experiment, wait until the board's hottest temperature is within
    /// this many °C of its temperature before the experiment, polling every
    /// `cool_down_poll_s`, for at most `cool_down_timeout_s` (0 turns cool-down off).
    public var coolDownBandC: Double = 2
    public var coolDownTimeoutS: Double = 300
    public var coolDownPollS: Double = 2
    /// How queries reach the model (LoadGen's scenarios). Single-stream is always
    /// measured; offline adds throughput, server adds latency under Poisson arrivals.
    public var scenario: Scenario = .singleStream
    /// Queries of the offline run, or of each server schedule (default 1000 offline, 2000 server).
    public var scenarioQueries: Int?
    /// Server: the latency target of the percentile below, in milliseconds (required).
    public var serverTargetLatencyMs: Double?
    public var serverPercentile: Double = 0.99
    /// Server: the arrival rate; without one, the highest rate that meets the target is searched.
    public var serverRatePerS: Double?
    /// Server: bisection steps of that search.
    public var serverSearchSteps: Int = 5
    /// Runner processes started one after the other, each warmed up and measured with
    /// its share of the time budget; above 1 the result gets an interval across them.
    public var invocations: Int = 1
    /// Where the runner keeps the inputs while iterations are timed: placed once in
    /// the runtime's device memory (the default: the runtime alone), or handed over
    /// from host memory on every iteration (copies included). A runner that cannot
    /// place them on the device says so, and the result records what was done.
    public var inputPlacement: InputPlacement = .device

    enum CodingKeys: String, CodingKey {
        case minIterations = "min_iterations", maxIterations = "max_iterations"
        case minTimeS = "min_time_s", maxTimeS = "max_time_s"
        case targetRelativeCIWidth = "target_relative_ci_width"
        case batchIterations = "batch_iterations"
        case maxWarmupIterations = "max_warmup_iterations"
        case minWarmupIterations = "min_warmup_iterations"
        case requestTimeoutS = "request_timeout_s"
        case maxRetries = "max_retries", retryBackoffS = "retry_backoff_s"
        case canary
        case nativeBenchmarkS = "native_benchmark_s"
        case coolDownBandC = "cool_down_band_c", coolDownTimeoutS = "cool_down_timeout_s", coolDownPollS = "cool_down_poll_s"
        case scenario, scenarioQueries = "scenario_queries"
        case serverTargetLatencyMs = "server_target_latency_ms", serverPercentile = "server_percentile"
        case serverRatePerS = "server_rate_per_s", serverSearchSteps = "server_search_steps"
        case invocations
        case inputPlacement = "input_placement"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = MeasurementPlan()
        minIterations = try container.decodeIfPresent(Int.self, forKey: .minIterations) ?? defaults.minIterations
        maxIterations = try container.decodeIfPresent(Int.self, forKey: .maxIterations) ?? defaults.maxIterations
        minTimeS = try container.decodeIfPresent(Double.self, forKey: .minTimeS) ?? defaults.minTimeS
        maxTimeS = try container.decodeIfPresent(Double.self, forKey: .maxTimeS) ?? defaults.maxTimeS
        targetRelativeCIWidth = try container.decodeIfPresent(Double.self, forKey: .targetRelativeCIWidth) ?? defaults.targetRelativeCIWidth
        batchIterations = try container.decodeIfPresent(Int.self, forKey: .batchIterations) ?? defaults.batchIterations
        maxWarmupIterations = try container.decodeIfPresent(Int.self, forKey: .maxWarmupIterations) ?? defaults.maxWarmupIterations
        minWarmupIterations = try container.decodeIfPresent(Int.self, forKey: .minWarmupIterations) ?? defaults.minWarmupIterations
        requestTimeoutS = try container.decodeIfPresent(Double.self, forKey: .requestTimeoutS) ?? defaults.requestTimeoutS
        maxRetries = try container.decodeIfPresent(Int.self, forKey: .maxRetries) ?? defaults.maxRetries
        retryBackoffS = try container.decodeIfPresent(Double.self, forKey: .retryBackoffS) ?? defaults.retryBackoffS
        canary = try container.decodeIfPresent(Bool.self, forKey: .canary) ?? defaults.canary
        nativeBenchmarkS = try container.decodeIfPresent(Int.self, forKey: .nativeBenchmarkS) ?? defaults.nativeBenchmarkS
        coolDownBandC = try container.decodeIfPresent(Double.self, forKey: .coolDownBandC) ?? defaults.coolDownBandC
        coolDownTimeoutS = try container.decodeIfPresent(Double.self, forKey: .coolDownTimeoutS) ?? defaults.coolDownTimeoutS
        coolDownPollS = try container.decodeIfPresent(Double.self, forKey: .coolDownPollS) ?? defaults.coolDownPollS
        scenario = try container.decodeIfPresent(Scenario.self, forKey: .scenario) ?? defaults.scenario
        scenarioQueries = try container.decodeIfPresent(Int.self, forKey: .scenarioQueries)
        serverTargetLatencyMs = try container.decodeIfPresent(Double.self, forKey: .serverTargetLatencyMs)
        serverPercentile = try container.decodeIfPresent(Double.self, forKey: .serverPercentile) ?? defaults.serverPercentile
        serverRatePerS = try container.decodeIfPresent(Double.self, forKey: .serverRatePerS)
        serverSearchSteps = try container.decodeIfPresent(Int.self, forKey: .serverSearchSteps) ?? defaults.serverSearchSteps
        invocations = try container.decodeIfPresent(Int.self, forKey: .invocations) ?? defaults.invocations
        inputPlacement = try container.decodeIfPresent(InputPlacement.self, forKey: .inputPlacement) ?? defaults.inputPlacement
        if scenario == .server, serverTargetLatencyMs == nil {
            throw DecodingError.dataCorruptedError(forKey: .serverTargetLatencyMs, in: container,
                                                   debugDescription: "the server scenario needs server_target_latency_ms")
        }
    }
}

/// An experiment as loaded from its file: paths resolved against the file's folder.
public struct ExperimentFile: Sendable {
    public var path: String
    public var experiment: Experiment
    /// The file's text, stored with the result so that it can be replayed.
    public var text: String

    /// Where relative paths resolve; the file's folder unless the experiment was copied
    /// elsewhere to run (a queued experiment's definition keeps its submitter's folder).
    public var baseDirectory: URL?

    public var directory: URL { baseDirectory ?? URL(fileURLWithPath: path).deletingLastPathComponent() }

    /// Resolves a path written in the experiment against the experiment's folder.
    public func resolve(_ relative: String) -> String {
        relative.hasPrefix("/") ? relative : directory.appendingPathComponent(relative).standardizedFileURL.path
    }

    /// Loads, validates against the schema, and checks the cross-field rules. Relative
    /// paths resolve against `relativeTo`, else the file's folder.
    public static func load(_ path: String, relativeTo base: String? = nil) throws -> ExperimentFile {
        let document = try YAMLDocument(contentsOf: path)
        let experiment = try document.decode(Experiment.self, schema: try Schemas.experimentValue())
        let reference = experiment.reference
        if (reference.outputs == nil) == (reference.toolchain == nil) {
            throw document.error(at: ["reference"], "give exactly one of 'outputs' (files) or 'toolchain' (a reference toolchain)")
        }
        if reference.outputs != nil, reference.model != nil {
            throw document.error(at: ["reference", "model"], "only a reference toolchain runs a model; remove 'model' or use 'toolchain'")
        }
        try checkSemanticPreservation(experiment, document)
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return ExperimentFile(path: URL(fileURLWithPath: path).standardizedFileURL.path, experiment: experiment, text: text,
                              baseDirectory: base.map { URL(fileURLWithPath: $0, isDirectory: true).standardizedFileURL })
    }

    /// The rules of `semantic_preservation` that the schema cannot say.
    private static func checkSemanticPreservation(_ experiment: Experiment, _ document: YAMLDocument) throws {
        let criterion = experiment.semanticPreservation
        let field = ["semantic_preservation"]
        guard let metric = DistanceMetric(rawValue: criterion.metric) else {
            throw document.error(at: field + ["metric"], "'\(criterion.metric)' is not a known metric")
        }
        let hasThreshold = document.node(at: field + ["threshold"]) != nil
        if metric.usesThreshold, !hasThreshold {
            throw document.error(at: field + ["threshold"], "is required for metric '\(metric.rawValue)'")
        }
        if !metric.usesThreshold, hasThreshold {
            let uses = metric == .allclose ? "'atol' and 'rtol'" : "'k'"
            throw document.error(at: field + ["threshold"], "metric '\(metric.rawValue)' does not use a threshold; it uses \(uses) instead: remove 'threshold'")
        }
        if metric == .allclose, criterion.atol == nil, criterion.rtol == nil {
            throw document.error(at: field + ["atol"], "metric 'allclose' needs 'atol' or 'rtol' (or both)")
        }
        if let k = criterion.k, k < 1 {
            throw document.error(at: field + ["k"], "top_k needs k ≥ 1, found \(k)")
        }
        if let labels = criterion.labels {
            if labels.file.isEmpty {
                throw document.error(at: field + ["labels", "file"], "needs a .npy file of labels")
            }
            if let outputs = experiment.reference.outputs, outputs[labels.output] == nil {
                throw document.error(at: field + ["labels", "output"],
                                     "'\(labels.output)' is not one of the reference outputs: \(outputs.keys.sorted().joined(separator: ", "))")
            }
        }
    }
}
