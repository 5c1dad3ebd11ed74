import Foundation
import MLBenchCore

/// The option space of a toolchain: each option with the values to try
/// (`intra_op_threads=1,2`, `graph_optimization_level=basic,all`).
public struct OptionSpace: Sendable, Equatable {
    public struct Dimension: Sendable, Equatable {
        public var name: String
        public var values: [JSONValue]
    }

    public var dimensions: [Dimension]

    public init(dimensions: [Dimension]) { self.dimensions = dimensions }

    /// Parses `name=value,value,...` specifications; a value is a number, true
    /// or false, or else a string. Errors name the specification that is wrong.
    public static func parse(_ specifications: [String]) throws -> OptionSpace {
        var dimensions = [Dimension]()
        for specification in specifications {
            let parts = specification.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw LabError.usage("the option space '\(specification)' is not name=value,value,...")
            }
            guard !dimensions.contains(where: { $0.name == parts[0] }) else {
                throw LabError.usage("the option '\(parts[0])' is given twice in the option space")
            }
            let values = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { text -> JSONValue in
                let value = text.trimmingCharacters(in: .whitespaces)
                if value == "true" || value == "false" { return .bool(value == "true") }
                if let number = Double(value) { return .number(number) }
                return .string(value)
            }
            guard !values.contains(.string("")), Set(values).count == values.count else {
                throw LabError.usage("the option space '\(specification)' has an empty or repeated value")
            }
            dimensions.append(Dimension(name: parts[0], values: values))
        }
        guard !dimensions.isEmpty else { throw LabError.usage("the option space is empty: give at least one name=value,value") }
        return OptionSpace(dimensions: dimensions)
    }

    /// Every combination, the last option varying fastest (grid order).
    public var points: [[String: JSONValue]] {
        dimensions.reduce([[:]]) { partial, dimension in
            partial.flatMap { point in dimension.values.map { point.merging([dimension.name: $0]) { _, new in new } } }
        }
    }
}

/// Search strategies over an option space with a budget of evaluations:
/// `grid` tries the points in order, `random` in a seeded random order, and
/// `model` first tries a few random points, then picks each next point by a
/// surrogate of the cost (an additive model of log cost over the options'
/// values, fitted on what was evaluated) at its lowest confidence bound —
/// predicted cost less its uncertainty, so values never tried are explored and
/// good ones exploited.
public struct OptionSearch {
    public enum Strategy: String, Codable, Sendable, CaseIterable {
        case grid, random, model
    }

    /// What evaluating one point gave: its cost (nil when it could not be had),
    /// the stored result, and why it has no cost.
    public struct Outcome: Sendable {
        public var cost: Double?
        public var result: String?
        public var reason: String?

        public init(cost: Double?, result: String? = nil, reason: String? = nil) {
            self.cost = cost
            self.result = result
            self.reason = reason
        }
    }

    /// One evaluated point, in the order evaluated.
    public struct Evaluation: Codable, Sendable {
        public var options: [String: JSONValue]
        public var cost: Double?
        public var result: String?
        public var reason: String?
        /// Why the strategy chose it ("grid order", "random draw", "surrogate: ...").
        public var chosenBecause: String
    }

    public struct Report: Codable, Sendable {
        public var strategy: Strategy
        public var budget: Int
        public var seed: UInt64
        public var points: Int
        public var evaluations: [Evaluation]
        /// The index in `evaluations` of the lowest cost.
        public var best: Int?
    }

    /// Evaluates at most `budget` points of `space` chosen by `strategy`.
    public static func run(space: OptionSpace, strategy: Strategy, budget: Int, seed: UInt64 = 0,
                           evaluate: ([String: JSONValue]) throws -> Outcome) throws -> Report {
        guard budget >= 1 else { throw LabError.usage("the search budget must be at least 1 evaluation, got \(budget)") }
        let points = space.points
        var random = Xoshiro256StarStar(seed: seed)
        var order = Array(points.indices)
        if strategy != .grid {
            // Fisher–Yates with the project's seeded generator: the same seed, the same order everywhere.
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, random.next(below: i + 1)) }
        }
        var evaluations = [Evaluation]()
        var done = Set<Int>()
        var costs = [Int: Double]()
        // The model-based strategy's initial design: a third of the budget, at least two points.
        let initial = strategy == .model ? min(budget, max(2, budget / 3)) : budget
        while evaluations.count < min(budget, points.count) {
            let index: Int
            let because: String
            if evaluations.count < initial {
                index = order.first { !done.contains($0) }!
                because = strategy == .grid ? "grid order" : strategy == .random ? "random draw" : "initial random design"
            } else {
                let surrogate = Surrogate(space: space, points: points, costs: costs)
                let untried = points.indices.filter { !done.contains($0) }
                // A value that failed every time it was tried would look unexplored to the
                // surrogate (it has no cost) and be chosen again and again: its points wait
                // until nothing else is left.
                let failing = Set(done.filter { costs[$0] == nil }.flatMap { index in
                    points[index].filter { surrogate.levels[$0.key]?[$0.value] == nil }.map { "\($0.key)=\($0.value)" }
                })
                let promising = untried.filter { index in !points[index].contains { failing.contains("\($0.key)=\($0.value)") } }
                let candidates = promising.isEmpty ? untried : promising
                let scored = candidates.map { ($0, surrogate.estimate(points[$0])) }
                let (chosen, estimate) = scored.min { $0.1.mean - $0.1.spread < $1.1.mean - $1.1.spread }!
                index = chosen
                because = String(format: "surrogate: expected cost %.4g (×/÷ %.2f), the lowest bound of %d untried", exp(estimate.mean), exp(estimate.spread), candidates.count)
            }
            done.insert(index)
            let outcome = try evaluate(points[index])
            if let cost = outcome.cost, cost > 0 { costs[index] = cost }
            evaluations.append(Evaluation(options: points[index], cost: outcome.cost, result: outcome.result, reason: outcome.reason, chosenBecause: because))
        }
        let best = evaluations.indices.filter { evaluations[$0].cost != nil }.min { evaluations[$0].cost! < evaluations[$1].cost! }
        return Report(strategy: strategy, budget: budget, seed: seed, points: points.count, evaluations: evaluations, best: best)
    }

    /// An additive model of log cost: the mean, plus for every option the
    /// deviation of its value's mean from it. The spread (one standard error of
    /// the sum) is large for values never evaluated.
    struct Surrogate {
        var mean: Double
        var deviation: Double
        var levels: [String: [JSONValue: (mean: Double, count: Int)]]

        init(space: OptionSpace, points: [[String: JSONValue]], costs: [Int: Double]) {
            let logs = costs.mapValues { log($0) }
            let average = logs.isEmpty ? 0 : logs.values.reduce(0, +) / Double(logs.count)
            mean = average
            let variance = logs.count > 1 ? logs.values.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(logs.count - 1) : 1
            // Never certain: at least a 5 % spread, the noise of a shared machine.
            deviation = max(variance.squareRoot(), 0.05)
            levels = [:]
            for dimension in space.dimensions {
                var table = [JSONValue: (mean: Double, count: Int)]()
                for value in dimension.values {
                    let matching = logs.filter { points[$0.key][dimension.name] == value }.map(\.value)
                    if !matching.isEmpty { table[value] = (matching.reduce(0, +) / Double(matching.count), matching.count) }
                }
                levels[dimension.name] = table
            }
        }

        func estimate(_ point: [String: JSONValue]) -> (mean: Double, spread: Double) {
            var total = mean
            var variance = 0.0
            for (name, value) in point {
                if let level = levels[name]?[value] {
                    total += level.mean - mean
                    variance += deviation * deviation / Double(level.count)
                } else {
                    // A value never tried: the model knows nothing of it, two deviations either way.
                    variance += 4 * deviation * deviation
                }
            }
            return (total, variance.squareRoot())
        }
    }
}

extension OptionSearch {
    /// Evaluates a point as an experiment: `template` with the point's options
    /// merged into its toolchain options, run by `ExperimentRunner` and stored
    /// like any other. Measured on the template's board, or, with `predicted`,
    /// on `predicted:<board>` (the board's predictors answer; nothing is touched).
    /// The cost is the median latency (ms), the peak memory (MiB) or the median
    /// energy per inference (mJ, the first power channel that has one).
    public static func experiments(template: ExperimentFile, lab: Lab, store: ResultStore, cost: Guidance.Cost,
                                   predicted: Bool) -> ([String: JSONValue]) throws -> Outcome {
        let runner = ExperimentRunner(lab: lab, store: store)
        return { point in
            var experiment = template.experiment
            if case .object(let current)? = experiment.toolchain.options {
                experiment.toolchain.options = .object(current.merging(point) { _, new in new })
            } else {
                experiment.toolchain.options = .object(point)
            }
            let board = experiment.predictedBoard ?? experiment.board
            experiment.board = predicted ? Experiment.predictedPrefix + board : board
            experiment.name += " [" + point.sorted { $0.key < $1.key }.map { "\($0.key)=\(describe($0.value))" }.joined(separator: ", ") + "]"
            // Written out and loaded again: validated like a file, and stored with its own text for replay.
            try FileManager.default.createDirectory(at: lab.home.scratch, withIntermediateDirectories: true)
            let path = lab.home.scratch.appendingPathComponent("search-\(UUID().uuidString).json")
            try JSONCoding.encoder().encode(experiment).write(to: path)
            defer { try? FileManager.default.removeItem(at: path) }
            let result = try runner.run(try ExperimentFile.load(path.path, relativeTo: template.directory.path))
            guard result.status == .succeeded else {
                return Outcome(cost: nil, result: result.id, reason: result.failure.map { "\($0.stage): \($0.reason)" } ?? "failed")
            }
            if let prediction = result.prediction {
                guard let value = prediction.targets[cost.predictionTarget]?.value else {
                    return Outcome(cost: nil, result: result.id, reason: "no \(cost.predictionTarget) predictor for board '\(prediction.board)' with toolchain '\(prediction.toolchain)'")
                }
                return Outcome(cost: value, result: result.id)
            }
            switch cost {
            case .latency:
                return Outcome(cost: result.measurement.map { $0.summary.median / 1e6 }, result: result.id)
            case .memory:
                return Outcome(cost: result.measurement.map { Double($0.peakMemoryBytes) / 1_048_576 }, result: result.id)
            case .energy:
                guard let joules = result.energy?.lazy.compactMap(\.medianJ).first else {
                    return Outcome(cost: nil, result: result.id, reason: "no energy measured: the board has no power probe in the inventory")
                }
                return Outcome(cost: joules * 1000, result: result.id)
            }
        }
    }

    /// A value as the search prints it: 4, not 4.0.
    public static func describe(_ value: JSONValue) -> String {
        switch value {
        case .number(let number) where number == number.rounded(): return String(Int64(number))
        case .number(let number): return String(number)
        case .string(let text): return text
        case .bool(let flag): return String(flag)
        default: return (try? JSONCoding.encode(value)) ?? "?"
        }
    }
}
