import Foundation
import MLBenchCore

/// Measures every fused kernel of every model of a zoo with ONNX Runtime's
/// profiler, for the kernel-level latency predictor (nn-Meter, LitePred).
///
/// The kernels are this project's (`GraphFeatures.kernels`, whose fusion rule
/// follows ONNX Runtime's CPU fusions); `Prediction/kernels.py`, run in the
/// installed ONNX Runtime toolchain environment, times each model end to end and
/// node by node, maps ONNX Runtime's profile events onto those kernels and
/// writes two tables: one row per kernel (its shapes, FLOPs, parameters and
/// time) and one row per model (the 11 model-level features, the end-to-end
/// latency, the kernels' sum and what no kernel claimed), each time the chosen
/// percentile of runs interleaved between a plain and a profiling session. Unlike
/// `MeasurementCampaign`, these are not stored experiments: the profiler is a
/// session option the runner protocol does not carry.
public struct KernelCampaign {
    /// How the zoo is measured.
    public struct Plan: Sendable {
        /// The board the table speaks for (the host: the profiler runs here).
        public var board = "host"
        /// The ONNX Runtime environment's version; the newest installed when nil.
        public var version: String?
        /// ONNX Runtime's intra-op threads; one keeps a shared machine's noise out of the kernels.
        public var threads = 1
        /// Seconds of runs per model and pass (end to end, profiled).
        public var budgetSeconds = 0.4
        /// The percentile of the runs recorded, end to end and per kernel: the 10th
        /// is the time without other processes' interference on a shared machine.
        public var percentile = 10.0
        /// End-to-end times by the calling thread's CPU time ("cpu": one thread only; the
        /// wall time less other processes' turns on a shared machine) or by the wall clock.
        public var clock = "cpu"
        /// Only the first N models of the manifest (0: all).
        public var limit = 0

        public init() {}
    }

    /// One model as kernels.py reads it.
    struct Job: Encodable {
        var model: String
        var family: String?
        var synthetic: Bool
        var path: String
        var onnx: String
        var inputs: [String: String]
        var features: [String: Int64]
        var kernels: [KernelFeatures]
    }

    public let home: LabHome
    public let plan: Plan

    public init(home: LabHome, plan: Plan) {
        self.home = home
        self.plan = plan
    }

    /// Describes every model of the manifest, then measures them (kernels.py's
    /// progress goes to standard output). Returns kernels.py's exit status and
    /// the models that could not be described, with why.
    public func run(manifestPath: String, kernelsPath: String, modelsPath: String) throws -> (status: Int32, failures: [String]) {
        let manifest = try MeasurementCampaign.Manifest.load(manifestPath)
        let zoo = URL(fileURLWithPath: manifestPath).deletingLastPathComponent()
        let entries = plan.limit > 0 ? Array(manifest.models.prefix(plan.limit)) : manifest.models
        guard !entries.isEmpty else { throw LabError.usage("the zoo manifest '\(manifestPath)' lists no model") }
        let environment = try ToolchainEnvironments(home: home).required("onnxruntime", version: plan.version, what: "ONNX Runtime",
                                                                          install: "mlbench toolchains install onnxruntime")
        var failures = [String]()
        var jobs = [Job]()
        for entry in entries {
            let model = zoo.appendingPathComponent(entry.path).path
            do {
                let features = try GraphFeatures.extract(path: model)
                jobs.append(Job(model: entry.model, family: entry.family, synthetic: entry.synthetic ?? entry.model.hasPrefix("basic_model"),
                                path: entry.path, onnx: model, inputs: entry.input.mapValues { zoo.appendingPathComponent($0).path },
                                features: Dictionary(uniqueKeysWithValues: zip(ModelFeatures.columns, features.model.values)),
                                kernels: features.kernels))
            } catch {
                failures.append("\(entry.path): no features: \(error)")
            }
        }
        guard !jobs.isEmpty else { return (2, failures) }
        try FileManager.default.createDirectory(at: home.scratch, withIntermediateDirectories: true)
        let jobsFile = home.scratch.appendingPathComponent("kernel-jobs-\(UUID().uuidString).json")
        try JSONCoding.encoder().encode(jobs).write(to: jobsFile)
        defer { try? FileManager.default.removeItem(at: jobsFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: environment.python)
        process.arguments = [try Predictor.scriptsFolder().appendingPathComponent("kernels.py").path,
                             "--jobs", jobsFile.path, "--kernels", kernelsPath, "--models", modelsPath,
                             "--threads", String(plan.threads), "--budget-s", String(plan.budgetSeconds), "--percentile", String(plan.percentile), "--clock", plan.clock, "--board", plan.board,
                             "--toolchain-version", environment.version]
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, failures)
    }
}
