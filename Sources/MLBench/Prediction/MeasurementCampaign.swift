import Foundation
import MLBenchCore

/// Measures a model zoo on a board with real experiments and writes the
/// feature table the predictors train on: one row per model and input size,
/// the 11 model-level features, the measured latency and peak memory, and the
/// stored result each row comes from.
///
/// Each model is an ordinary experiment run by `ExperimentRunner` (reset,
/// checks, build, warm-up to steady state, stopping rule, semantic
/// preservation against the reference toolchain), stored like any other. The
/// lab's scheduler will take these experiments later; for now they run in turn.
public struct MeasurementCampaign {
    /// `manifest.json` of a zoo (Prediction/zoo.py).
    public struct Manifest: Decodable, Sendable {
        public var seed: Int?
        public var models: [Entry]

        public struct Entry: Decodable, Sendable {
            public var model: String
            public var family: String?
            public var synthetic: Bool?
            public var inputSize: Int?
            /// The ONNX file, relative to the manifest.
            public var path: String
            /// Input name → `.npy` file, relative to the manifest.
            public var input: [String: String]
        }

        public static func load(_ path: String) throws -> Manifest {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw LabError.usage("the zoo manifest '\(path)' cannot be read: \(error.localizedDescription)")
            }
            do { return try JSONCoding.decoder().decode(Manifest.self, from: data) } catch {
                throw LabError.usage("the zoo manifest '\(path)' is not a zoo manifest: \(error)")
            }
        }
    }

    /// Where and how the zoo is measured.
    public struct Plan: Sendable {
        public var board = "host"
        public var toolchain = "onnxruntime"
        public var target = "cpu"
        /// The `measurement` block of every experiment (YAML flow mapping).
        public var measurement = "{min_iterations: 30, min_time_s: 0.3, max_time_s: 5, min_warmup_iterations: 20, max_warmup_iterations: 300, cool_down_timeout_s: 0}"
        /// Only the first N models of the manifest (0: all).
        public var limit = 0

        public init() {}
    }

    /// The table's columns: what `Prediction/train.py` reads, plus where each row comes from.
    public static let header = ["model", "family", "synthetic"] + ModelFeatures.columns + ["latency_ms", "peak_memory_mb", "board", "toolchain", "result", "file"]

    public let lab: Lab
    public let store: ResultStore
    public let plan: Plan
    private let progress: (String) -> Void

    public init(lab: Lab, store: ResultStore, plan: Plan, progress: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.store = store
        self.plan = plan
        self.progress = progress
    }

    /// Measures every model of the manifest at `manifestPath` and writes the
    /// table to `tablePath` (one line written per model, so an interrupted
    /// campaign keeps what it measured). Returns the rows written and the models
    /// that failed, with why.
    public func run(manifestPath: String, tablePath: String) throws -> (rows: Int, failures: [String]) {
        let manifest = try Manifest.load(manifestPath)
        let zoo = URL(fileURLWithPath: manifestPath).deletingLastPathComponent()
        let entries = plan.limit > 0 ? Array(manifest.models.prefix(plan.limit)) : manifest.models
        guard !entries.isEmpty else { throw LabError.usage("the zoo manifest '\(manifestPath)' lists no model") }
        let scratch = lab.home.scratch.appendingPathComponent("campaign-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        FileManager.default.createFile(atPath: tablePath, contents: Data((Self.header.joined(separator: ",") + "\n").utf8))
        guard let table = FileHandle(forWritingAtPath: tablePath) else { throw LabError.usage("cannot write the table '\(tablePath)'") }
        defer { try? table.close() }
        table.seekToEndOfFile()

        let runner = ExperimentRunner(lab: lab, store: store)
        var rows = 0
        var failures = [String]()
        for (index, entry) in entries.enumerated() {
            let model = zoo.appendingPathComponent(entry.path).path
            // Features first: a model the predictor cannot describe is not worth measuring.
            let features: GraphFeatures
            do { features = try GraphFeatures.extract(path: model) } catch {
                failures.append("\(entry.path): \(error)")
                progress("[\(index + 1)/\(entries.count)] \(entry.path): no features: \(error)")
                continue
            }
            let name = "campaign-\(URL(fileURLWithPath: entry.path).deletingPathExtension().lastPathComponent)"
            let inputs = entry.input.map { "\(quoted($0.key)): \(quoted(zoo.appendingPathComponent($0.value).path))" }.joined(separator: ", ")
            let file = scratch.appendingPathComponent("\(name).yaml")
            try """
                name: \(quoted(name))
                model: \(quoted(model))
                inputs: {\(inputs)}
                reference: {toolchain: \(plan.toolchain)}
                toolchain: {name: \(plan.toolchain), target: \(quoted(plan.target))}
                board: \(quoted(plan.board))
                measurement: \(plan.measurement)
                semantic_preservation: {metric: max_abs, threshold: 1.0e-3}
                """.write(to: file, atomically: true, encoding: .utf8)
            let result = try runner.run(try ExperimentFile.load(file.path))
            guard result.status == .succeeded, let measurement = result.measurement else {
                let reason = result.failure.map { "\($0.stage): \($0.reason)" } ?? "no measurement"
                failures.append("\(entry.path): \(reason) (result \(result.id))")
                progress("[\(index + 1)/\(entries.count)] \(entry.path): FAILED \(reason)")
                continue
            }
            // The median of every raw timing: robust to the spikes the summary labels.
            let latencyMs = measurement.summary.median / 1e6
            let peakMiB = Double(measurement.peakMemoryBytes) / 1_048_576
            let cells = [entry.model, entry.family ?? "", String(entry.synthetic ?? false)]
                + features.model.values.map(String.init)
                + [String(format: "%.6f", latencyMs), String(format: "%.3f", peakMiB), plan.board, plan.toolchain, result.id, entry.path]
            table.write(Data((cells.map(csvCell).joined(separator: ",") + "\n").utf8))
            rows += 1
            progress("[\(index + 1)/\(entries.count)] \(entry.path): \(String(format: "%.3f", latencyMs)) ms, \(String(format: "%.1f", peakMiB)) MiB (result \(result.id.prefix(8)))")
        }
        return (rows, failures)
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func csvCell(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
