import Foundation
import MLBenchCore

/// Guidance before any deployment: every (toolchain, board) pair of the lab
/// is checked with the checks `mlbench check` makes (`CompatibilityCheck`:
/// format, operators, options, memory) and its latency and memory predicted by
/// the trained predictors that speak for that pair; pairs that cannot work or
/// break a constraint are excluded with every reason, the rest ranked by cost.
public struct Guidance: Codable, Sendable {
    /// What ranks the candidates.
    public enum Cost: String, Codable, Sendable, CaseIterable {
        case latency, memory, energy

        /// The predictors' target for this cost (their table's column).
        public var predictionTarget: String {
            switch self {
            case .latency: return "latency_ms"
            case .memory: return "peak_memory_mb"
            case .energy: return "energy_mj"
            }
        }
    }

    /// Limits a candidate must meet (by prediction).
    public struct Constraints: Codable, Sendable {
        public var maxLatencyMs: Double?
        public var maxMemoryMb: Double?

        public init(maxLatencyMs: Double? = nil, maxMemoryMb: Double? = nil) {
            self.maxLatencyMs = maxLatencyMs
            self.maxMemoryMb = maxMemoryMb
        }
    }

    /// A predicted value with where it comes from.
    public struct Prediction: Codable, Sendable, Equatable {
        public var value: Double
        public var regressor: String
        /// The predictor's version (a hash of its table, target, regressor and seed).
        public var version: String
        public var board: String?
        public var toolchain: String?
        /// The predictor's validation errors per test domain (MAPE, ±10 %, ...).
        public var validation: [String: [String: Double?]]?
    }

    /// One (toolchain, target, board) pair and the verdict on it.
    public struct Candidate: Codable, Sendable {
        public var toolchain: String
        public var toolchainVersion: String?
        public var target: String?
        public var board: String
        /// 1 for the best; nil when excluded or when nothing predicts its cost.
        public var rank: Int?
        public var excluded: Bool
        /// Why it is excluded, or what is not known about it.
        public var reasons: [String]
        public var findings: [CompatibilityFinding]
        public var latencyMs: Prediction?
        public var memoryMb: Prediction?
        /// Energy per inference in mJ, where an energy predictor speaks for the pair.
        public var energyMj: Prediction?

        /// The prediction of `cost` for this pair.
        public func predicted(_ cost: Cost) -> Prediction? {
            switch cost {
            case .latency: return latencyMs
            case .memory: return memoryMb
            case .energy: return energyMj
            }
        }
    }

    public var model: String
    public var cost: Cost
    public var constraints: Constraints
    /// Ranked candidates first, then those without a prediction, then the excluded ones.
    public var candidates: [Candidate]

    /// Checks and ranks every pair of the lab's inventory for `model`.
    /// `predictions` maps "board/toolchain" to the predicted targets for it.
    public static func run(model: String, lab: Lab, cost: Cost, constraints: Constraints,
                           predictions: [String: [String: Prediction]]) throws -> Guidance {
        guard FileManager.default.fileExists(atPath: model) else { throw LabError.usage("the model '\(model)' does not exist") }
        var candidates = [Candidate]()
        for boardName in lab.inventory.inventory.boards.keys.sorted() {
            for toolchainName in lab.inventory.inventory.toolchains.keys.sorted() {
                var candidate = Candidate(toolchain: toolchainName, board: boardName, excluded: false, reasons: [], findings: [])
                do {
                    let toolchain = try lab.toolchain(toolchainName, version: nil)
                    let description = try toolchain.describe()
                    candidate.toolchainVersion = description.version
                    // The toolchain's first target is its default (cpu, llvm, ...).
                    let target = description.targets.first ?? ""
                    candidate.target = target
                    let board = try lab.board(boardName)
                    let check = try CompatibilityCheck.run(model: model, toolchain: toolchain, description: description, target: target,
                                                           options: .object([:]), boardName: boardName, board: try board.describe())
                    candidate.findings = check.findings
                    for finding in check.findings where finding.severity == .error {
                        candidate.excluded = true
                        candidate.reasons.append("\(finding.code ?? "error"): \(finding.message)")
                    }
                } catch {
                    candidate.excluded = true
                    candidate.reasons.append("cannot be checked: \(error)")
                }
                let predicted = predictions["\(boardName)/\(toolchainName)"] ?? [:]
                candidate.latencyMs = predicted["latency_ms"]
                candidate.memoryMb = predicted["peak_memory_mb"]
                candidate.energyMj = predicted["energy_mj"]
                if let limit = constraints.maxLatencyMs, let latency = candidate.latencyMs, latency.value > limit {
                    candidate.excluded = true
                    candidate.reasons.append("predicted too slow: \(format(latency.value)) ms > \(format(limit)) ms\(errorNote(latency))")
                }
                if let limit = constraints.maxMemoryMb, let memory = candidate.memoryMb, memory.value > limit {
                    candidate.excluded = true
                    candidate.reasons.append("predicted to need too much memory: \(format(memory.value)) MiB > \(format(limit)) MiB\(errorNote(memory))")
                }
                if !candidate.excluded {
                    if candidate.predicted(cost) == nil {
                        candidate.reasons.append("not ranked: no \(cost.rawValue) predictor for board '\(boardName)' with toolchain '\(toolchainName)'")
                    }
                    if constraints.maxLatencyMs != nil, candidate.latencyMs == nil {
                        candidate.reasons.append("the latency limit cannot be checked: no latency predictor for this pair")
                    }
                    if constraints.maxMemoryMb != nil, candidate.memoryMb == nil {
                        candidate.reasons.append("the memory limit cannot be checked: no memory predictor for this pair")
                    }
                }
                candidates.append(candidate)
            }
        }
        func costOf(_ candidate: Candidate) -> Double? { candidate.predicted(cost)?.value }
        let ranked = candidates.filter { !$0.excluded && costOf($0) != nil }.sorted { costOf($0)! < costOf($1)! }
        let unranked = candidates.filter { !$0.excluded && costOf($0) == nil }
        let excluded = candidates.filter(\.excluded)
        let ordered = ranked.enumerated().map { index, candidate in
            var candidate = candidate
            candidate.rank = index + 1
            return candidate
        } + unranked + excluded
        return Guidance(model: model, cost: cost, constraints: constraints, candidates: ordered)
    }

    private static func format(_ value: Double) -> String { String(format: value < 10 ? "%.3f" : "%.1f", value) }

    /// The predictor's error on unseen architectures, so a verdict near the limit is read with it.
    private static func errorNote(_ prediction: Prediction) -> String {
        guard let mape = prediction.validation?["unseen_architectures"]?["mape"] ?? nil else { return " (predictor \(prediction.version))" }
        return String(format: " (predictor %@ %@, MAPE %.1f %% on unseen architectures)", prediction.regressor, prediction.version, mape)
    }
}

extension Predictor {
    /// Predicts the targets of the model whose features are `features` with the
    /// predictors trained into `folder` (`mlbench predictor train --output`).
    public func predict(features: GraphFeatures, folder: String) throws -> [String: Guidance.Prediction] {
        let record = try environment()
        let script = try Self.scriptsFolder().appendingPathComponent("predict.py")
        let input = home.scratch.appendingPathComponent("features-\(UUID().uuidString).json")
        try FileManager.default.createDirectory(at: home.scratch, withIntermediateDirectories: true)
        try Data(try JSONCoding.encode(features).utf8).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let result = try ChildProcess.run([record.python, script.path, "--predictors", folder, "--features", input.path], timeout: 300)
        guard result.status == 0 else {
            throw LabError.usage("predicting with \(folder) failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        do {
            // A plain decoder: the keys are target and domain names, to keep as they are.
            return try JSONDecoder().decode([String: Guidance.Prediction].self, from: Data(result.stdout.utf8))
        } catch {
            throw LabError.usage("predict.py answered what is not a prediction: \(error)")
        }
    }
}
