import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The TensorRT and Vitis AI plugins, built by this package and staged the way
/// scripts/setup stages them, loaded through the C ABI by the core's own proxy.
/// This machine has neither TensorRT nor Vitis AI: what is checked is that both
/// load, and that without their environment every answer says what is missing.
final class AcceleratorPluginTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-accel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    func testBothPluginsLoadThroughTheABI() throws {
        let catalog = PluginCatalog(searchPath: [try stage(["tensorrt", "vitis-ai"]).path])
        XCTAssertEqual(catalog.problems, [])
        for name in ["tensorrt", "vitis-ai"] {
            let plugin = try catalog.load(name)
            XCTAssertEqual(plugin.version, "1.0.0", name)
            XCTAssertEqual(plugin.factories.map(\.kind), [name])
            XCTAssertEqual(plugin.factories.map(\.role), [.toolchain])
        }
    }

    func testTensorRTWithoutAnEnvironmentSaysHowToInstallOne() throws {
        let plugin = try PluginCatalog(searchPath: [try stage(["tensorrt"]).path]).load("tensorrt")
        XCTAssertThrowsError(try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(plugin))) {
            XCTAssertTrue("\($0)".contains("toolchain 'tensorrt' has no environment; install one with `mlbench toolchains install tensorrt`, or name an interpreter that has it with the setting `python:`"), "\($0)")
        }
        // An environment, or an interpreter named by the operator (JetPack's TensorRT on a
        // Jetson), that lacks TensorRT (and a PATH without trtexec): info says so.
        let python = try Self.python()
        for configuration in [configuration(plugin, environment: EnvironmentInfo(version: "10.16.1.11", root: folder.path, python: python)),
                              configuration(plugin, settings: ["python": .string(python)])] {
            let toolchain = try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration)
            XCTAssertThrowsError(try toolchain.describe()) {
                XCTAssertTrue("\($0)".contains("TensorRT is not installed in "), "\($0)")
            }
        }
    }

    /// The lab needs no managed environment for a toolchain whose inventory entry names
    /// its interpreter (the plugins staged by scripts/setup beside the binary).
    func testLabCheckTakesAnInterpreterSettingInsteadOfAnEnvironment() throws {
        let inventory = folder.appendingPathComponent("inventory.yaml")
        try """
            boards:
              host: {plugin: host}
            toolchains:
              jetpack: {plugin: tensorrt, settings: {python: \(try Self.python())}}
              pip: {plugin: tensorrt}
              vitis: {plugin: vitis-ai, settings: {python: \(try Self.python())}}
            """.write(to: inventory, atomically: true, encoding: .utf8)
        let home = folder.appendingPathComponent("home")
        let outcome = try MLBenchBinary.run(["lab", "check", "--inventory", inventory.path], home: home)
        XCTAssertTrue(outcome.output.contains("toolchains.pip: no environment installed yet (run `mlbench toolchains install tensorrt`)"), outcome.output)
        XCTAssertFalse(outcome.output.contains("toolchains.jetpack"), outcome.output)
        XCTAssertFalse(outcome.output.contains("toolchains.vitis"), outcome.output)
    }

    func testVitisAIWithoutItsImageSaysWhereItComesFrom() throws {
        let plugin = try PluginCatalog(searchPath: [try stage(["vitis-ai"]).path]).load("vitis-ai")
        XCTAssertThrowsError(try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(plugin))) {
            XCTAssertTrue("\($0)".contains("toolchain 'vitis-ai' has no environment: Vitis AI is not on PyPI"), "\($0)")
            XCTAssertTrue("\($0)".contains("set `python:` in its inventory settings"), "\($0)")
        }
        let missing = folder.appendingPathComponent("no-image/python3").path
        XCTAssertThrowsError(try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(
            plugin, settings: ["python": .string(missing)]))) {
            XCTAssertTrue("\($0)".contains("setting 'python': \(missing) is not an executable file"), "\($0)")
        }
        XCTAssertThrowsError(try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(
            plugin, settings: ["python": .string("python3")]))) {
            XCTAssertTrue("\($0)".contains("setting 'python': expected the absolute path"), "\($0)")
        }
        // The `python` setting is taken from the settings PythonToolchain checks; others still are.
        XCTAssertThrowsError(try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(
            plugin, settings: ["python": .string(try Self.python()), "pyhton": .string("x")]))) {
            XCTAssertTrue("\($0)".contains("unknown setting 'pyhton'"), "\($0)")
        }
        // An interpreter without Vitis AI: the toolchain is created, and info says what is missing.
        let toolchain = try PluginToolchain(plugin: plugin, kind: nil, configuration: configuration(
            plugin, settings: ["python": .string(try Self.python())]))
        XCTAssertThrowsError(try toolchain.describe()) {
            XCTAssertTrue("\($0)".contains("Vitis AI is not installed in "), "\($0)")
        }
    }

    // MARK: - Helpers

    private func configuration(_ plugin: LoadedPlugin, settings: [String: JSONValue] = [:],
                               environment: EnvironmentInfo? = nil) -> PluginConfiguration {
        PluginConfiguration(kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(settings),
                            environment: environment)
    }

    /// Plugin folders as scripts/setup stages them: manifest, library, python/ with the kit.
    private func stage(_ plugins: [String]) throws -> URL {
        let manager = FileManager.default
        let products = MLBenchBinary.executable.deletingLastPathComponent()
        let root = folder.appendingPathComponent("plugins")
        for plugin in plugins {
            let target = root.appendingPathComponent(plugin).appendingPathComponent("python")
            try manager.createDirectory(at: target, withIntermediateDirectories: true)
            let source = MLBenchBinary.repository.appendingPathComponent("Plugins/\(plugin)")
            let library = products.appendingPathComponent("libmlbench-\(plugin).so")
            guard manager.fileExists(atPath: library.path) else {
                throw Missing("\(library.path) is not built (swift build --build-tests builds it)")
            }
            try manager.copyItem(at: source.appendingPathComponent("plugin.yaml"), to: target.deletingLastPathComponent().appendingPathComponent("plugin.yaml"))
            try manager.copyItem(at: library, to: target.deletingLastPathComponent().appendingPathComponent(library.lastPathComponent))
            let scripts = source.appendingPathComponent("python")
            for file in try manager.contentsOfDirectory(atPath: scripts.path) where file.hasSuffix(".py") {
                try manager.copyItem(at: scripts.appendingPathComponent(file), to: target.appendingPathComponent(file))
            }
            try manager.copyItem(at: MLBenchBinary.repository.appendingPathComponent("Sources/MLBenchPluginKit/python/mlbench_runner.py"),
                                 to: target.appendingPathComponent("mlbench_runner.py"))
        }
        return root
    }

    /// An interpreter of this machine, absolute (the toolchain scripts need numpy, as on any board).
    private static func python() throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(folder)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Missing("no python3 on PATH: the toolchain scripts need one")
    }

    private struct Missing: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
