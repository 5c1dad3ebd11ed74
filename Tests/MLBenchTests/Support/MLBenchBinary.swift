import Foundation
import MLBenchCore
import XCTest

/// The real `mlbench` executable, run as a user would run it. Tests drive it
/// as a subprocess so that what they check is what ships: the binary, the
/// staged plugins found through manifests, the toolchain environments.
enum MLBenchBinary {
    /// The repository root.
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL

    /// The `mlbench` executable in the products folder, which holds the test
    /// bundle too (or the test runner, found through /proc/self/exe); nil when
    /// it was not built.
    static let builtExecutable: URL? = {
        var starts = [Bundle(for: Marker.self).bundleURL]
        if let runner = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: runner))
        }
        for start in starts {
            var folder = start.standardizedFileURL
            while folder.path != "/" {
                let candidate = folder.appendingPathComponent("mlbench")
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isFolder), !isFolder.boolValue,
                   FileManager.default.isExecutableFile(atPath: candidate.path) {
                    return candidate
                }
                folder.deleteLastPathComponent()
            }
        }
        return nil
    }()

    static var executable: URL { builtExecutable ?? Bundle(for: Marker.self).bundleURL.deletingLastPathComponent().appendingPathComponent("mlbench") }

    /// The lab home that scripts/setup fills: toolchain environments live there.
    static var setupHome: URL {
        if let home = ProcessInfo.processInfo.environment["MLBENCH_HOME"] { return URL(fileURLWithPath: home) }
        return repository.appendingPathComponent(".mlbench")
    }

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// Runs `mlbench ARGUMENTS` with MLBENCH_HOME set to `home`; `through` is a
    /// command line that starts it (an emulated bench around it).
    static func run(_ arguments: [String], home: URL, environment extra: [String: String] = [:], timeout: Double = 600,
                    through: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> Outcome {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            XCTFail("mlbench is not built at \(executable.path)", file: file, line: line)
            throw XCTSkip("no mlbench binary")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_HOME"] = home.path
        environment.removeValue(forKey: "MLBENCH_INVENTORY")
        environment.removeValue(forKey: "MLBENCH_PLUGIN_PATH")
        environment.merge(extra) { _, new in new }
        let result = try ChildProcess.run(through + [executable.path] + arguments, environment: environment, timeout: timeout)
        return Outcome(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    /// A fresh lab home whose toolchain environments are those scripts/setup
    /// installed (linked, not copied), with an empty store.
    static func temporaryHome(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let toolchains = setupHome.appendingPathComponent("toolchains")
        guard FileManager.default.fileExists(atPath: toolchains.path) else {
            XCTFail("no toolchain environments in \(toolchains.path): run scripts/setup (scripts/test does) first", file: file, line: line)
            return home
        }
        try FileManager.default.createSymbolicLink(at: home.appendingPathComponent("toolchains"), withDestinationURL: toolchains)
        return home
    }

    /// Runs a Python `script` with the onnx package (the ONNX Runtime
    /// environment scripts/setup installs); `OUTPUT` holds the path of `url`.
    static func makeModel(at url: URL, _ script: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let toolchains = setupHome.appendingPathComponent("toolchains/onnxruntime")
        let version = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: toolchains.path).first { !$0.hasPrefix(".") },
                                    "no ONNX Runtime environment in \(toolchains.path): run scripts/setup", file: file, line: line)
        let python = toolchains.appendingPathComponent(version).appendingPathComponent("venv/bin/python").path
        let code = "OUTPUT = \(String(reflecting: url.path))\n" + script
        let result = try ChildProcess.run([python, "-c", code], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
    }

    /// A model whose only operator, BitwiseNot, TFLite's converter cannot take
    /// (ONNX Runtime runs it): for the checks that refuse a toolchain.
    static let bitwiseNotModel = """
        from onnx import TensorProto, helper, save
        node = helper.make_node("BitwiseNot", ["x"], ["y"])
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 4])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        save(model, OUTPUT)
        """

    private final class Marker {}
}
