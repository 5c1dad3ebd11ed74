import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The toolchains side by side on the host, through the `mlbench` binary: one
/// model swept through ONNX Runtime, TVM and TFLite in two precisions, the
/// checks that refuse an impossible experiment before any build, and the
/// artifact cache.
final class ToolchainEndToEndTests: LabTestCase {
    func experiment(name: String, model: String? = nil, toolchain: String, target: String, options: String = "{}",
                    threshold: String = "1.0e-4") throws -> String {
        let file = scratch.appendingPathComponent("\(name).yaml")
        try """
            name: \(name)
            model: \(model ?? sample.appendingPathComponent("model.onnx").path)
            inputs: {image: \(sample.appendingPathComponent("inputs/image.npy").path)}
            reference: {toolchain: onnxruntime}
            toolchain: {name: \(toolchain), target: "\(target)", options: \(options)}
            board: host
            measurement: {min_iterations: 50, min_time_s: 0.2, max_time_s: 3}
            semantic_preservation: {metric: max_abs, threshold: \(threshold)}
            """.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    func run(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> ExperimentResult {
        try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home), file: file, line: line)
    }

    /// The sweep of the issue: four results, each with its own latency statistics
    /// and semantic-preservation ratio; only int8 falls below 1.0 under a tight
    /// threshold, and comes near 1.0 under a loose one.
    func testSweepThroughFourToolchainsAndPrecisions() throws {
        let sweep: [(name: String, toolchain: String, target: String, options: String)] = [
            ("sweep-onnxruntime", "onnxruntime", "cpu", "{}"),
            ("sweep-tvm", "tvm", "llvm", "{opt_level: 3}"),
            ("sweep-tflite-float32", "tflite", "cpu", "{precision: float32}"),
            ("sweep-tflite-int8", "tflite", "cpu", "{precision: int8}"),
        ]
        var results = [String: ExperimentResult]()
        for point in sweep {
            let result = try run(try experiment(name: point.name, toolchain: point.toolchain, target: point.target, options: point.options))
            XCTAssertEqual(result.status, .succeeded, "\(point.name): \(result.failure?.reason ?? "")")
            XCTAssertEqual(result.toolchain?.name, point.toolchain)
            XCTAssertGreaterThanOrEqual(result.measurement?.summary.count ?? 0, 50, point.name)
            XCTAssertNotNil(result.measurement?.summary.medianInterval, point.name)
            XCTAssertFalse(result.toolchain?.packages?.isEmpty ?? true, "\(point.name) records its exact packages")
            XCTAssertEqual(result.toolchain?.artifactCache, "built", point.name)
            results[point.name] = result
        }
        XCTAssertEqual(Set(results.values.map(\.id)).count, 4, "four stored results")
        XCTAssertEqual(try store().list(limit: 10).count, 4)
        XCTAssertEqual(results["sweep-onnxruntime"]?.semanticPreservation?.ratio, 1.0)
        XCTAssertEqual(results["sweep-tvm"]?.semanticPreservation?.ratio, 1.0)
        XCTAssertEqual(results["sweep-tflite-float32"]?.semanticPreservation?.ratio, 1.0)
        let int8 = try XCTUnwrap(results["sweep-tflite-int8"])
        XCTAssertLessThan(try XCTUnwrap(int8.semanticPreservation?.ratio), 1.0, "int8 quantization is visible under 1e-4")
        XCTAssertTrue(int8.toolchain?.packages?.contains("ai-edge-litert==2.3.0") == true)
        XCTAssertNotNil(int8.checksums["input:image"])
        XCTAssertTrue(int8.log.contains { $0.stage == "check" && $0.message.contains("calibrates on the experiment's inputs") })
        XCTAssertTrue(int8.toolchain?.compatibility?.contains { $0.code == "layout_conversion" && $0.severity == .warning } == true,
                      "the NCHW -> NHWC conversion is reported")

        // The same int8 build under a loose threshold: a cache hit, and nearly every sample preserved.
        let loose = try run(try experiment(name: "sweep-tflite-int8-loose", toolchain: "tflite", target: "cpu",
                                           options: "{precision: int8}", threshold: "0.5"))
        XCTAssertEqual(loose.toolchain?.artifactCache, "cache hit")
        XCTAssertEqual(loose.toolchain?.artifactSHA256, int8.toolchain?.artifactSHA256)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(loose.semanticPreservation?.ratio), 0.9)
        XCTAssertTrue(loose.log.contains { $0.stage == "build" && $0.message.hasPrefix("cache hit") })
    }

    /// A model with an operator TFLite's converter cannot take: `mlbench check`
    /// names the operator and the toolchain, and `mlbench run` refuses the
    /// experiment before the board is reset or anything is built.
    func testImpossibleExperimentIsRefusedBeforeAnyBuild() throws {
        let model = scratch.appendingPathComponent("bitwise.onnx")
        try makeModel(at: model, """
            from onnx import TensorProto, helper, save
            node = helper.make_node("BitwiseNot", ["x"], ["y"])
            graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 4])],
                                      [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 4])])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
            model.ir_version = 8
            save(model, OUTPUT)
            """)
        let path = try experiment(name: "bitwise-tflite", model: model.path, toolchain: "tflite", target: "cpu")

        let check = try MLBenchBinary.run(["check", path], home: home)
        XCTAssertEqual(check.status, 1, check.output)
        XCTAssertTrue(check.stdout.contains("impossible"), check.stdout)
        XCTAssertTrue(check.stdout.contains("BitwiseNot"), check.stdout)
        XCTAssertTrue(check.stdout.contains("tflite 2.3.0"), check.stdout)

        let json = try MLBenchBinary.run(["check", "--json", path], home: home)
        struct Output: Decodable { var compatible: Bool; var findings: [CompatibilityFinding] }
        let output = try JSONCoding.decode(Output.self, from: json.stdout)
        XCTAssertFalse(output.compatible)
        let error = try XCTUnwrap(output.findings.first { $0.severity == .error })
        XCTAssertEqual(error.code, "unsupported_operator")
        XCTAssertEqual(error.operator, "BitwiseNot")
        XCTAssertEqual(error.toolchain, "tflite")
        XCTAssertEqual(error.board, "host")

        let result = try run(path)
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.stage, "check")
        XCTAssertEqual(result.failure?.kind, .userInput)
        XCTAssertTrue(result.failure?.reason.contains("BitwiseNot") == true, result.failure?.reason ?? "")
        let stages = Set(result.log.map(\.stage))
        for untouched in ["reset", "conditions", "build", "deploy"] {
            XCTAssertFalse(stages.contains(untouched), "the board was touched (\(untouched)): \(result.log.map(\.stage))")
        }
        let artifacts = (try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("artifacts").path)) ?? []
        XCTAssertEqual(artifacts, [], "nothing was built")
    }

    /// A changed byte in a cached artifact is noticed by its hash: the entry is
    /// rebuilt, never deployed.
    func testCorruptedCacheEntryIsRebuilt() throws {
        let path = try experiment(name: "cache-onnxruntime", toolchain: "onnxruntime", target: "cpu")
        let first = try run(path)
        XCTAssertEqual(first.toolchain?.artifactCache, "built")
        let second = try run(path)
        XCTAssertEqual(second.toolchain?.artifactCache, "cache hit")

        let artifacts = home.appendingPathComponent("artifacts")
        let entries = try FileManager.default.contentsOfDirectory(atPath: artifacts.path).filter { !$0.hasPrefix(".") }
        var corrupted = 0
        for entry in entries {
            let model = artifacts.appendingPathComponent(entry).appendingPathComponent("model.onnx")
            guard var bytes = try? Data(contentsOf: model) else { continue }
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: model)
            corrupted += 1
        }
        XCTAssertGreaterThan(corrupted, 0)
        let third = try run(path)
        XCTAssertEqual(third.status, .succeeded, third.failure?.reason ?? "")
        XCTAssertEqual(third.toolchain?.artifactCache, "rebuilt")
        XCTAssertEqual(third.toolchain?.artifactSHA256, first.toolchain?.artifactSHA256, "the rebuilt artifact is the original")
        XCTAssertTrue(third.log.contains { $0.message.contains("does not match its SHA-256") })
    }

    /// Writes an ONNX model with the onnx package of the ONNX Runtime environment.
    private func makeModel(at url: URL, _ script: String) throws {
        let toolchains = MLBenchBinary.setupHome.appendingPathComponent("toolchains/onnxruntime")
        let version = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: toolchains.path).first { !$0.hasPrefix(".") })
        let python = toolchains.appendingPathComponent(version).appendingPathComponent("venv/bin/python").path
        let code = "OUTPUT = \(String(reflecting: url.path))\n" + script
        let result = try ChildProcess.run([python, "-c", code], timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr)
    }
}

/// Two versions of one toolchain side by side (scripts/setup installs ONNX
/// Runtime 1.22.1 beside the default): each experiment runs the version it
/// names and records its exact packages.
final class ToolchainVersionTests: XCTestCase {
    func testAnExperimentRunsTheVersionItNames() throws {
        let home = try MLBenchBinary.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let listed = try MLBenchBinary.run(["toolchains", "list"], home: home)
        guard listed.stdout.contains("1.22.1") else {
            throw XCTSkip("ONNX Runtime 1.22.1 is not installed beside the default (scripts/setup installs it)")
        }
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample")
        func experiment(_ version: String?) throws -> ExperimentResult {
            let file = home.appendingPathComponent("ort-\(version ?? "newest").yaml")
            try """
                name: ort-\(version ?? "newest")
                model: \(sample.appendingPathComponent("model.onnx").path)
                inputs: {image: \(sample.appendingPathComponent("inputs/image.npy").path)}
                reference: {toolchain: onnxruntime}
                toolchain: {name: onnxruntime, target: cpu\(version.map { ", version: \"\($0)\"" } ?? "")}
                board: host
                measurement: {min_iterations: 50, min_time_s: 0.2, max_time_s: 2}
                semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
                """.write(to: file, atomically: true, encoding: .utf8)
            let outcome = try MLBenchBinary.run(["run", "--json", "-q", file.path], home: home)
            return try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        }
        let older = try experiment("1.22.1")
        XCTAssertEqual(older.status, .succeeded, older.failure?.reason ?? "")
        XCTAssertEqual(older.toolchain?.version, "1.22.1")
        XCTAssertTrue(older.toolchain?.packages?.contains("onnxruntime==1.22.1") == true)
        XCTAssertTrue(older.toolchain?.runner?.contains("1.22.1") == true, "the runner ran in the named environment")
        let newest = try experiment(nil)
        XCTAssertEqual(newest.toolchain?.version, newest.reference?.version, "no version named: the newest")
        XCTAssertNotEqual(newest.toolchain?.version, "1.22.1")
        XCTAssertNotEqual(newest.toolchain?.environmentLock, older.toolchain?.environmentLock)

        let missing = try experiment("0.0.1")
        XCTAssertEqual(missing.status, .failed)
        XCTAssertEqual(missing.failure?.kind, .userInput)
        XCTAssertTrue(missing.failure?.reason.contains("0.0.1") == true && missing.failure?.reason.contains("1.22.1") == true,
                      missing.failure?.reason ?? "")
    }
}
