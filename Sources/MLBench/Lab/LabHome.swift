import Foundation

/// The lab's data folder: the result store, toolchain environments and the
/// artifact cache. `MLBENCH_HOME`, else ~/.local/share/mlbench.
public struct LabHome: Sendable {
    public let root: URL

    public static let variable = "MLBENCH_HOME"

    public init(root: URL) { self.root = root }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> LabHome {
        if let path = environment[variable], !path.isEmpty {
            return LabHome(root: URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL)
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return LabHome(root: URL(fileURLWithPath: home).appendingPathComponent(".local/share/mlbench", isDirectory: true))
    }

    public var database: URL { root.appendingPathComponent("results.sqlite") }
    public var toolchains: URL { root.appendingPathComponent("toolchains", isDirectory: true) }
    public var artifacts: URL { root.appendingPathComponent("artifacts", isDirectory: true) }
    /// Per-result files (outputs, logs): results/<id>/.
    public var results: URL { root.appendingPathComponent("results", isDirectory: true) }
    /// Trained predictors (`mlbench predictor train --output <predictors>/<name>`), which
    /// answer experiments that target `predicted:<board>`.
    public var predictors: URL { root.appendingPathComponent("predictors", isDirectory: true) }
    public var scratch: URL { root.appendingPathComponent("tmp", isDirectory: true) }
    /// Content-addressed copies of models, inputs, outputs and definitions.
    public var blobs: BlobStore { BlobStore(root: root.appendingPathComponent("blobs", isDirectory: true)) }
    /// The key that signs result bundles, and the public keys of other trusted bench hosts.
    public var keys: URL { root.appendingPathComponent("keys", isDirectory: true) }

    public func prepare() throws {
        for folder in [root, toolchains, artifacts, results, scratch] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
    }
}
