import Foundation
import MLBenchCore

/// The performance predictor's tooling: a managed Python environment with
/// scikit-learn and XGBoost, installed and versioned like a toolchain's
/// (`ToolchainEnvironments`, under `<home>/toolchains/predictor/<version>/`),
/// and the scripts in `Prediction/` (the zoo generator, the trainer) that run in it.
public struct Predictor: Sendable {
    public let home: LabHome

    public init(home: LabHome) { self.home = home }

    /// The environment's name among the managed environments.
    public static let environmentName = "predictor"

    /// What the environment holds; its version is scikit-learn's. xgboost-cpu is
    /// XGBoost without the CUDA libraries the plain wheel pulls in.
    public static let environmentSpec = PluginManifest.PythonSpec(
        defaultVersion: "1.9.1",
        packages: ["scikit-learn=={version}", "xgboost-cpu==3.2.0", "scipy", "numpy<3", "onnx==1.23.2"])

    /// The variable that names the folder of the predictor's scripts.
    public static let scriptsVariable = "MLBENCH_PREDICTION_PATH"

    public var environments: ToolchainEnvironments { ToolchainEnvironments(home: home) }

    /// The installed environment of `version`, or the newest; an error saying how to install one otherwise.
    public func environment(version: String? = nil) throws -> ToolchainEnvironments.Record {
        try environments.required(Self.environmentName, version: version, what: "the predictor", install: "mlbench predictor install")
    }

    /// The folder holding `zoo.py` and `train.py`: $MLBENCH_PREDICTION_PATH, else
    /// `mlbench-prediction` beside the executable (where scripts/setup stages them).
    public static func scriptsFolder(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> URL {
        var candidates = [URL]()
        if let path = environment[scriptsVariable], !path.isEmpty { candidates.append(URL(fileURLWithPath: path)) }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent("mlbench-prediction"))
        guard let folder = candidates.first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("train.py").path) }) else {
            throw LabError.environment("the predictor's scripts (train.py, zoo.py) are in none of \(candidates.map(\.path).joined(separator: ", ")); run scripts/setup, or set \(scriptsVariable) to the repository's Prediction folder")
        }
        return folder
    }

    /// Every trained predictor under the lab's predictors folder (those with a report.json), by name.
    public func trained() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: home.predictors.path)) ?? []
        return names.sorted().map { home.predictors.appendingPathComponent($0).path }
            .filter { FileManager.default.fileExists(atPath: URL(fileURLWithPath: $0).appendingPathComponent("report.json").path) }
    }

    /// The predictor folders under `home.predictors` whose report (report.json,
    /// written by train.py) says they speak for `board` and `toolchain`, in name
    /// order. A predictor trained on a table measured with some toolchain options
    /// (`train.py --options`) speaks only for experiments that set each of them alike.
    public func folders(board: String, toolchain: String, options: JSONValue? = nil) -> [String] {
        var given = [String: JSONValue]()
        if case .object(let values)? = options { given = values }
        return trained().compactMap { path in
            let folder = URL(fileURLWithPath: path)
            guard let data = try? Data(contentsOf: folder.appendingPathComponent("report.json")),
                  let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let targets = report["targets"] as? [String: Any] else { return nil }
            let speaks = targets.values.contains { entry in
                guard let predictor = (entry as? [String: Any])?["predictor"] as? [String: Any] else { return false }
                guard predictor["board"] as? String == board, predictor["toolchain"] as? String == toolchain else { return false }
                let recorded = (predictor["options"] as? [String: Any]) ?? [:]
                return recorded.allSatisfy { key, value in
                    guard let data = try? JSONSerialization.data(withJSONObject: value, options: .fragmentsAllowed),
                          let wanted = try? JSONDecoder().decode(JSONValue.self, from: data) else { return false }
                    return given[key] == wanted
                }
            }
            return speaks ? folder.path : nil
        }
    }

    /// Runs one of the predictor's scripts in the environment, passing its
    /// output through; returns its exit status.
    public func runScript(_ name: String, arguments: [String], version: String? = nil) throws -> Int32 {
        let record = try environment(version: version)
        let script = try Self.scriptsFolder().appendingPathComponent(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: record.python)
        process.arguments = [script.path] + arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
