import Foundation
import MLBenchCore

/// The checks made before any build, so that an impossible experiment never
/// reaches a board: the model's format against what the toolchain accepts, the
/// toolchain's own verdict on operators, options, target and layout, and the
/// model's footprint against the board's memories.
///
/// `mlbench check` prints the findings; the experiment runner makes the same
/// checks before it resets the board, and stops on any error.
public struct CompatibilityCheck: Sendable {
    /// What the checks found, each finding naming its toolchain, version and board.
    public var findings: [CompatibilityFinding]
    /// Whether the build needs the experiment's inputs as calibration data.
    public var needsCalibrationData: Bool
    /// What the toolchain says the model needs in memory.
    public var footprint: ModelFootprint?
    /// The model format the file was recognised as.
    public var format: String?

    /// True when no finding is an error.
    public var compatible: Bool { !findings.contains { $0.severity == .error } }

    /// The errors, in one line, for a failure reason.
    public var errorSummary: String {
        findings.filter { $0.severity == .error }.map(\.description).joined(separator: "; ")
    }

    /// Runs every check. Plugin failures are thrown; what is wrong with the
    /// experiment comes back as findings.
    public static func run(model: String, toolchain: any Toolchain, description: ToolchainDescription,
                           target: String, options: JSONValue, boardName: String, board: BoardDescription?) throws -> CompatibilityCheck {
        let context = { (finding: CompatibilityFinding) -> CompatibilityFinding in
            var finding = finding
            finding.toolchain = finding.toolchain ?? description.name
            finding.toolchainVersion = finding.toolchainVersion ?? description.version
            finding.board = finding.board ?? boardName
            return finding
        }
        let format = modelFormat(at: model)
        if let format, !description.formats.contains(format) {
            // Asking the toolchain would only produce a parse error further from the point.
            let finding = CompatibilityFinding(
                severity: .error, code: "unsupported_format",
                message: "the model '\(model)' is \(format), which \(description.name) does not take (it takes: \(description.formats.joined(separator: ", ")))")
            return CompatibilityCheck(findings: [context(finding)], needsCalibrationData: false, footprint: nil, format: format)
        }
        let report = try toolchain.check(CompatibilityRequest(model: model, target: target, options: options))
        var findings = report.issues
        if !report.compatible, !findings.contains(where: { $0.severity == .error }) {
            findings.append(CompatibilityFinding(severity: .error, code: "model",
                                                 message: "the toolchain says the model cannot be built, without saying why"))
        }
        if let footprint = report.footprint, let board {
            findings += memoryFindings(footprint, memories: board.memories)
        }
        return CompatibilityCheck(findings: findings.map(context), needsCalibrationData: report.needsCalibrationData ?? false,
                                  footprint: report.footprint, format: format)
    }

    /// The format of a model file or folder, from its name and, for folders, its contents;
    /// nil when it cannot be told (the toolchain then decides).
    public static func modelFormat(at path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        if isDirectory.boolValue {
            let pb = URL(fileURLWithPath: path).appendingPathComponent("saved_model.pb").path
            return FileManager.default.fileExists(atPath: pb) ? "savedmodel" : nil
        }
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "onnx": return "onnx"
        case "tflite": return "tflite"
        case "keras", "h5": return "keras"
        case "xmodel": return "xmodel"
        case "engine", "plan": return "tensorrt-engine"
        case "pb": return "tensorflow-graph"
        default: return nil
        }
    }

    /// Weights and activations against the board's memories: an error when the
    /// model cannot fit even the largest memory, a warning when it needs more
    /// than what that memory has free now.
    public static func memoryFindings(_ footprint: ModelFootprint, memories: [MemoryRegion]) -> [CompatibilityFinding] {
        let needed = (footprint.weightsBytes ?? 0) + (footprint.activationsBytes ?? 0)
        guard needed > 0, let largest = memories.max(by: { $0.sizeBytes < $1.sizeBytes }) else { return [] }
        let parts = "weights \(bytes(footprint.weightsBytes ?? 0)) + activations \(bytes(footprint.activationsBytes ?? 0))"
        if needed > largest.sizeBytes {
            return [CompatibilityFinding(
                severity: .error, code: "memory",
                message: "the model needs \(bytes(needed)) (\(parts)), more than the board's largest memory '\(largest.name)' of \(bytes(largest.sizeBytes))")]
        }
        if let used = largest.usedBytes, used < largest.sizeBytes, needed > largest.sizeBytes - used {
            return [CompatibilityFinding(
                severity: .warning, code: "memory",
                message: "the model needs \(bytes(needed)) (\(parts)), more than the \(bytes(largest.sizeBytes - used)) now free in '\(largest.name)'")]
        }
        return []
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

extension CompatibilityCheck {
    /// The checks of an experiment file, as `mlbench check` and a submission make
    /// them: the board and toolchain of the experiment, from the lab's inventory.
    /// Nothing is reset, built or deployed.
    public static func run(experiment file: ExperimentFile, lab: Lab) throws -> CompatibilityCheck {
        let experiment = file.experiment
        let model = file.resolve(experiment.model)
        guard FileManager.default.fileExists(atPath: model) else {
            throw LabError.usage("the model '\(model)' named by \(file.path) does not exist")
        }
        let toolchain = try lab.toolchain(experiment.toolchain.name, version: experiment.toolchain.version)
        // A predicted target touches no board: the memory check is left to the predictors.
        let board = experiment.predictedBoard == nil ? try lab.board(experiment.board).describe() : nil
        return try run(model: model, toolchain: toolchain, description: try toolchain.describe(),
                       target: experiment.toolchain.target, options: experiment.toolchain.options ?? .object([:]),
                       boardName: experiment.board, board: board)
    }
}
