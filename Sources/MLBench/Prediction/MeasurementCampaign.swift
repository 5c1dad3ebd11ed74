import Foundation
import MLBenchCore

/// Measures a model zoo on a board with real experiments and writes the
/// feature table the predictors train on: one row per model and input size,
/// the 11 model-level features, the measured latency and peak memory, and the
/// stored result each row comes from.
///
/// Each model is an ordinary experiment run by `ExperimentRunner` (reset,
/// checks, build, warm-up to steady state, stopping rule, semantic
/// preservation against the reference toolchain), stored like any other: run
/// in turn here (`run`), or queued as one series for the lab's workers
/// (`submit`) and gathered into the table when they are done (`collect`).
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
    public static let header = ["model", "family", "synthetic"] + ModelFeatures.columns + ["latency_ms", "peak_memory_mb", "energy_mj", "board", "toolchain", "result", "file"]

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
            let (name, text) = experiment(entry, model: model, zoo: zoo)
            let file = scratch.appendingPathComponent("\(name).yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let result = try runner.run(try ExperimentFile.load(file.path))
            switch row(entry, features: features, result: result) {
            case .success(let cells):
                table.write(Data((cells.map(csvCell).joined(separator: ",") + "\n").utf8))
                rows += 1
                progress("[\(index + 1)/\(entries.count)] \(entry.path): \(cells[ModelFeatures.columns.count + 3]) ms, \(cells[ModelFeatures.columns.count + 4]) MiB (result \(result.id.prefix(8)))")
            case .failure(let reason):
                failures.append("\(entry.path): \(reason.description)")
                progress("[\(index + 1)/\(entries.count)] \(entry.path): FAILED \(reason.description)")
            }
        }
        return (rows, failures)
    }

    /// Submits every model of the manifest to the lab's queue as one series
    /// instead of running it here: workers run them on the board like any queued
    /// experiment, and `collect` writes the table from their results. Returns the
    /// queued experiments and the models that could not be described, with why.
    public func submit(manifestPath: String, series: String, user: String, to queue: LabStore) throws -> (queued: [QueuedExperiment], failures: [String]) {
        let manifest = try Manifest.load(manifestPath)
        let zoo = URL(fileURLWithPath: manifestPath).deletingLastPathComponent()
        let entries = plan.limit > 0 ? Array(manifest.models.prefix(plan.limit)) : manifest.models
        var queued = [QueuedExperiment]()
        var failures = [String]()
        for entry in entries {
            let model = zoo.appendingPathComponent(entry.path).path
            do { _ = try GraphFeatures.extract(path: model) } catch {
                failures.append("\(entry.path): no features: \(error)")
                continue
            }
            let (name, text) = experiment(entry, model: model, zoo: zoo)
            queued.append(try queue.submit(Submission(user: user, name: name, board: plan.board, series: series, definition: text,
                                                      directory: zoo.path), at: Date()))
        }
        return (queued, failures)
    }

    /// Writes the table from the finished experiments of a series `submit` queued:
    /// a row per model whose experiment succeeded; the others are listed as still
    /// pending (queued, running, suspended) or failed, with why.
    public func collect(manifestPath: String, series: String, tablePath: String, from queue: LabStore) throws -> (rows: Int, pending: [String], failures: [String]) {
        let manifest = try Manifest.load(manifestPath)
        let zoo = URL(fileURLWithPath: manifestPath).deletingLastPathComponent()
        let entries = plan.limit > 0 ? Array(manifest.models.prefix(plan.limit)) : manifest.models
        // The latest submission of each name wins: a model queued again replaces its earlier try.
        var byName = [String: QueuedExperiment]()
        for queued in try queue.experiments(state: nil) where queued.series == series {
            if let earlier = byName[queued.name], earlier.sequence > queued.sequence { continue }
            byName[queued.name] = queued
        }
        guard !byName.isEmpty else { throw LabError.usage("the queue holds no experiment of the series '\(series)'") }
        var lines = [Self.header.joined(separator: ",")]
        var pending = [String]()
        var failures = [String]()
        for entry in entries {
            let model = zoo.appendingPathComponent(entry.path).path
            let (name, _) = experiment(entry, model: model, zoo: zoo)
            guard let queued = byName[name] else {
                failures.append("\(entry.path): not in the series '\(series)'")
                continue
            }
            guard queued.state == .succeeded || queued.state == .failed else {
                pending.append("\(entry.path): \(queued.state.rawValue)")
                continue
            }
            guard let id = queued.resultID, let result = try store.result(id: id) else {
                failures.append("\(entry.path): \(queued.state.rawValue) without a stored result\(queued.note.map { " (\($0))" } ?? "")")
                continue
            }
            let features = try GraphFeatures.extract(path: model)
            switch row(entry, features: features, result: result) {
            case .success(let cells): lines.append(cells.map(csvCell).joined(separator: ","))
            case .failure(let reason): failures.append("\(entry.path): \(reason.description)")
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: tablePath, atomically: true, encoding: .utf8)
        return (lines.count - 1, pending, failures)
    }

    /// The experiment that measures one model of the zoo: its name and YAML text
    /// (absolute paths, so that it runs from anywhere, a queue worker included).
    private func experiment(_ entry: Manifest.Entry, model: String, zoo: URL) -> (name: String, text: String) {
        let name = "campaign-\(URL(fileURLWithPath: entry.path).deletingPathExtension().lastPathComponent)"
        let inputs = entry.input.map { "\(quoted($0.key)): \(quoted(zoo.appendingPathComponent($0.value).path))" }.joined(separator: ", ")
        return (name, """
            name: \(quoted(name))
            model: \(quoted(model))
            inputs: {\(inputs)}
            reference: {toolchain: \(plan.toolchain)}
            toolchain: {name: \(plan.toolchain), target: \(quoted(plan.target))}
            board: \(quoted(plan.board))
            measurement: \(plan.measurement)
            semantic_preservation: {metric: max_abs, threshold: 1.0e-3}
            """)
    }

    struct RowFailure: Error, CustomStringConvertible { var description: String }

    /// A model's table row from its stored result, or why there is none.
    private func row(_ entry: Manifest.Entry, features: GraphFeatures, result: ExperimentResult) -> Result<[String], RowFailure> {
        guard result.status == .succeeded, let measurement = result.measurement else {
            let reason = result.failure.map { "\($0.stage): \($0.reason)" } ?? "no measurement"
            return .failure(RowFailure(description: "\(reason) (result \(result.id))"))
        }
        // The median of every raw timing: robust to the spikes the summary labels.
        let latencyMs = measurement.summary.median / 1e6
        let peakMiB = Double(measurement.peakMemoryBytes) / 1_048_576
        // Energy per inference where the board has a power probe: its first channel with a median, in mJ.
        let energy = result.energy?.lazy.compactMap(\.medianJ).first.map { String(format: "%.6f", $0 * 1000) } ?? ""
        return .success([entry.model, entry.family ?? "", String(entry.synthetic ?? false)]
            + features.model.values.map(String.init)
            + [String(format: "%.6f", latencyMs), String(format: "%.3f", peakMiB), energy, plan.board, plan.toolchain, result.id, entry.path])
    }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func csvCell(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
