import Foundation
import Yams

/// A series or parameter sweep: one experiment fanned out over every compatible board and
/// every combination of swept values, each as its own queued experiment whose definition
/// names its board and values (so that it runs, and replays, on its own).
public enum Sweep {
    /// A swept parameter: a dotted path in the experiment file (`measurement.min_iterations`,
    /// `toolchain.options.opt_level`) and the values it takes, each a YAML scalar.
    public struct Parameter: Sendable, Equatable {
        public var path: [String]
        public var values: [String]

        /// Reads `PATH=V1,V2,...`.
        public init(parsing text: String) throws {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw LabError.usage("--set '\(text)' is not PATH=VALUE[,VALUE...] (e.g. measurement.min_iterations=100,1000)")
            }
            path = parts[0].split(separator: ".").map(String.init)
            values = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !path.contains(where: \.isEmpty), !values.contains(where: \.isEmpty) else {
                throw LabError.usage("--set '\(text)': empty key or value")
            }
        }
    }

    /// One experiment of the sweep.
    public struct Point: Sendable, Equatable {
        public var board: String
        /// The swept values, by dotted path.
        public var values: [String: String]
        /// The definition with its board and values set.
        public var definition: String
    }

    /// The boards an experiment written for `board` can run on: boards of the inventory
    /// driven by the same plugin (and kind) as `board`, registered and not retired.
    public static func compatibleBoards(with board: String, inventory: Inventory, registry: [LabBoard]) throws -> [String] {
        guard let entry = inventory.boards[board] else {
            throw LabError.usage("the experiment's board '\(board)' is not in the inventory (known: \(inventory.boards.keys.sorted().joined(separator: ", ")))")
        }
        let registered = Dictionary(uniqueKeysWithValues: registry.map { ($0.name, $0) })
        return inventory.boards.filter { name, other in
            other.plugin == entry.plugin && other.kind == entry.kind && registered[name].map { $0.health != .retired } == true
        }.keys.sorted()
    }

    /// Every (board, combination of values) of the sweep, in a stable order.
    public static func expand(_ definition: String, boards: [String], parameters: [Parameter]) throws -> [Point] {
        guard var document = try Yams.load(yaml: definition) as? [String: Any] else {
            throw LabError.usage("the experiment is not a YAML mapping, so it cannot be swept")
        }
        var combinations: [[(Parameter, String)]] = [[]]
        for parameter in parameters {
            combinations = combinations.flatMap { prefix in parameter.values.map { prefix + [(parameter, $0)] } }
        }
        var points = [Point]()
        for board in boards {
            for combination in combinations {
                document["board"] = board
                var values = [String: String]()
                for (parameter, value) in combination {
                    try set(&document, parameter.path[...], to: Yams.load(yaml: value) ?? value, whole: parameter.path)
                    values[parameter.path.joined(separator: ".")] = value
                }
                points.append(Point(board: board, values: values, definition: try Yams.dump(object: document, sortKeys: true)))
            }
        }
        return points
    }

    private static func set(_ mapping: inout [String: Any], _ path: ArraySlice<String>, to value: Any, whole: [String]) throws {
        guard let key = path.first else { return }
        if path.count == 1 {
            mapping[key] = value
            return
        }
        var inner: [String: Any]
        switch mapping[key] {
        case nil: inner = [:]
        case let existing as [String: Any]: inner = existing
        default:
            throw LabError.usage("cannot sweep '\(whole.joined(separator: "."))': '\(key)' holds a value, not a mapping")
        }
        try set(&inner, path.dropFirst(), to: value, whole: whole)
        mapping[key] = inner
    }
}
