import Foundation
@testable import MLBench
import XCTest
import MLBenchCore

/// Experiment and inventory files: mistakes are named by file, line and field.
final class ConfigurationTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    let valid = """
        name: ok
        model: model.onnx
        inputs:
          image: inputs/image.npy
        reference:
          toolchain: onnxruntime
        toolchain:
          name: tvm
          target: llvm
          options: {opt_level: 2}
        board: host
        semantic_preservation:
          metric: max_abs
          threshold: 1.0e-4
        """

    func loadError(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> ConfigurationError {
        let path = try write("experiment.yaml", text)
        do {
            _ = try ExperimentFile.load(path)
        } catch let error as ConfigurationError {
            return error
        }
        XCTFail("the experiment was accepted", file: file, line: line)
        throw XCTSkip("accepted")
    }

    func testValidExperimentResolvesPathsAgainstItsFolder() throws {
        let path = try write("experiment.yaml", valid)
        let file = try ExperimentFile.load(path)
        XCTAssertEqual(file.experiment.toolchain.options?["opt_level"], .number(2))
        XCTAssertEqual(file.resolve(file.experiment.model), folder.appendingPathComponent("model.onnx").standardizedFileURL.path)
        XCTAssertEqual(file.experiment.measurement ?? MeasurementPlan(), MeasurementPlan(), "defaults apply")
    }

    func testUnknownFieldIsNamedWithItsLine() throws {
        let error = try loadError(valid + "\nmeasurment: {min_iterations: 3}\n")
        XCTAssertEqual(error.line, 15)
        XCTAssertEqual(error.field, "measurment")
        XCTAssertTrue(error.message.contains("unknown field"), error.message)
    }

    func testWrongTypeIsNamedWithItsLineAndField() throws {
        let error = try loadError(valid.replacingOccurrences(of: "threshold: 1.0e-4", with: "threshold: small"))
        XCTAssertEqual(error.line, 14)
        XCTAssertEqual(error.field, "semantic_preservation.threshold")
        XCTAssertTrue(error.description.contains("experiment.yaml:14:"), error.description)
    }

    func testMissingRequiredFieldIsNamed() throws {
        let error = try loadError(valid.replacingOccurrences(of: "board: host\n", with: ""))
        XCTAssertTrue(error.message.contains("'board' is required"), error.message)
    }

    func testUnknownMetricListsTheKnownOnes() throws {
        let error = try loadError(valid.replacingOccurrences(of: "metric: max_abs", with: "metric: hamming"))
        XCTAssertEqual(error.field, "semantic_preservation.metric")
        XCTAssertTrue(error.message.contains("max_abs, cosine, l2, psnr, allclose, top_k"), error.message)
    }

    /// `valid` with its `semantic_preservation` block (from line 14) replaced.
    func withCriterion(_ block: String, referenceOutputs: Bool = false) -> String {
        var text = valid.replacingOccurrences(of: "  metric: max_abs\n  threshold: 1.0e-4", with: block)
        if referenceOutputs {
            text = text.replacingOccurrences(of: "  toolchain: onnxruntime\n", with: "  outputs: {logits: ref/logits.npy}\n")
        }
        return text
    }

    func testSemanticPreservationWithToleranceKAndLabels() throws {
        let path = try write("experiment.yaml", withCriterion("""
              metric: top_k
              k: 5
              atol: 1.0e-5
              rtol: 1.0e-3
              labels: {file: labels/classes.npy, output: logits, task: classification}
            """, referenceOutputs: true))
        let file = try ExperimentFile.load(path)
        let criterion = file.experiment.semanticPreservation
        XCTAssertEqual(criterion.metric, "top_k")
        XCTAssertEqual(criterion.threshold, 0, "top_k takes no threshold")
        XCTAssertEqual(criterion.k, 5)
        XCTAssertEqual(criterion.atol, 1e-5)
        XCTAssertEqual(criterion.rtol, 1e-3)
        XCTAssertEqual(criterion.labels, .init(file: "labels/classes.npy", output: "logits", task: .classification))
        XCTAssertEqual(ComparisonOptions(criterion), ComparisonOptions(atol: 1e-5, rtol: 1e-3, k: 5))
        XCTAssertEqual(file.resolve(criterion.labels!.file),
                       folder.appendingPathComponent("labels/classes.npy").standardizedFileURL.path)

        let allclose = try ExperimentFile.load(try write("allclose.yaml", withCriterion("  metric: allclose\n  rtol: 0.01")))
        XCTAssertEqual(allclose.experiment.semanticPreservation.rtol, 0.01)
        XCTAssertNil(allclose.experiment.semanticPreservation.atol)
        let psnr = try ExperimentFile.load(try write("psnr.yaml", withCriterion("  metric: psnr\n  threshold: 40")))
        XCTAssertEqual(psnr.experiment.semanticPreservation.threshold, 40)
        // A criterion without a threshold encodes without one, so that it reloads.
        let json = String(decoding: try JSONEncoder().encode(allclose.experiment.semanticPreservation), as: UTF8.self)
        XCTAssertFalse(json.contains("threshold"), json)
    }

    func testSemanticPreservationCrossFieldRulesNameTheField() throws {
        let noTolerance = try loadError(withCriterion("  metric: allclose"))
        XCTAssertEqual(noTolerance.field, "semantic_preservation.atol")
        XCTAssertTrue(noTolerance.message.contains("'atol' or 'rtol'"), noTolerance.message)

        let unusedThreshold = try loadError(withCriterion("  metric: allclose\n  atol: 0.1\n  threshold: 0.5"))
        XCTAssertEqual(unusedThreshold.field, "semantic_preservation.threshold")
        XCTAssertEqual(unusedThreshold.line, 15)
        XCTAssertTrue(unusedThreshold.message.contains("does not use a threshold"), unusedThreshold.message)

        let topKThreshold = try loadError(withCriterion("  metric: top_k\n  threshold: 0"))
        XCTAssertEqual(topKThreshold.field, "semantic_preservation.threshold")

        let noThreshold = try loadError(withCriterion("  metric: psnr"))
        XCTAssertEqual(noThreshold.field, "semantic_preservation.threshold")
        XCTAssertTrue(noThreshold.message.contains("required for metric 'psnr'"), noThreshold.message)

        let zeroK = try loadError(withCriterion("  metric: top_k\n  k: 0"))
        XCTAssertEqual(zeroK.field, "semantic_preservation.k")
        XCTAssertEqual(zeroK.line, 14)

        let badTask = try loadError(withCriterion("  metric: top_k\n  labels: {file: y.npy, output: logits, task: segmentation}"))
        XCTAssertEqual(badTask.field, "semantic_preservation.labels.task")
        XCTAssertTrue(badTask.message.contains("classification, regression"), badTask.message)

        let noFile = try loadError(withCriterion("  metric: top_k\n  labels: {output: logits, task: regression}"))
        XCTAssertTrue(noFile.message.contains("'file' is required"), noFile.message)

        let wrongOutput = try loadError(withCriterion("  metric: top_k\n  labels: {file: y.npy, output: probs, task: classification}",
                                                      referenceOutputs: true))
        XCTAssertEqual(wrongOutput.field, "semantic_preservation.labels.output")
        XCTAssertTrue(wrongOutput.message.contains("'probs'") && wrongOutput.message.contains("logits"), wrongOutput.message)
    }

    func testLabelsFileIsReadRelativeToTheExperiment() throws {
        let path = try write("experiment.yaml", withCriterion("""
              metric: max_abs
              threshold: 0.1
              labels: {file: labels/y.npy, output: y, task: regression}
            """))
        let file = try ExperimentFile.load(path)
        let labels = try XCTUnwrap(file.experiment.semanticPreservation.labels)
        let outputs = ["y": Tensor(shape: [4, 1], values: [1.5, 2, 2, 4.5])]
        XCTAssertThrowsError(try AccuracyMetrics.evaluate(labels: labels, of: file, reference: outputs, deployed: outputs)) { error in
            guard case .unreadableLabels(let name, _)? = error as? AccuracyError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "labels/y.npy")
        }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("labels"), withIntermediateDirectories: true)
        try NPY.write(Tensor(shape: [4], values: [1, 2, 3, 4]), to: folder.appendingPathComponent("labels/y.npy"))
        let report = try AccuracyMetrics.evaluate(labels: labels, of: file, reference: ["y": Tensor(shape: [4, 1], values: [1, 2, 3, 4])],
                                                  deployed: outputs, predictors: 1)
        XCTAssertEqual(report.reference.regression?.r2, 1)
        XCTAssertEqual(report.deployed.regression?.r2 ?? 0, 0.7, accuracy: 1e-12)
        XCTAssertEqual(report.deployed.regression?.adjustedR2 ?? 0, 0.55, accuracy: 1e-12)
    }

    func testReferenceNeedsExactlyOneSource() throws {
        let both = try loadError(valid.replacingOccurrences(of: "  toolchain: onnxruntime\n", with: "  toolchain: onnxruntime\n  outputs: {y: y.npy}\n"))
        XCTAssertEqual(both.field, "reference")
        XCTAssertEqual(both.line, 6)
    }

    func testYAMLSyntaxErrorHasALine() throws {
        let error = try loadError("name: [unclosed\nmodel: x\n")
        XCTAssertNotNil(error.line)
        XCTAssertTrue(error.message.hasPrefix("YAML syntax"), error.message)
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try ExperimentFile.load(folder.appendingPathComponent("nope.yaml").path)) { error in
            XCTAssertTrue("\(error)".contains("nope.yaml"), "\(error)")
        }
    }

    func testInventoryErrorsNameTheBoard() throws {
        let path = try write("lab.yaml", """
            boards:
              jetson1:
                plugin: jetson
                power: {switch: relay}
            toolchains: {}
            """)
        XCTAssertThrowsError(try InventoryFile.load(path)) { error in
            let error = error as? ConfigurationError
            XCTAssertEqual(error?.field, "boards.jetson1.power")
            XCTAssertEqual(error?.line, 4)
            XCTAssertTrue(error?.message.contains("'outlet' is required") == true, error?.message ?? "")
        }
    }

    /// Docs/schemas/ publishes the schemas the loaders use; they must not drift apart.
    func testPublishedSchemasAreTheOnesInUse() throws {
        for name in Schemas.names {
            let published = MLBenchBinary.repository.appendingPathComponent("Docs/schemas/\(name).schema.json")
            let text = try String(contentsOf: published, encoding: .utf8)
            XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines),
                           Schemas.normalized(Schemas.text(named: name)!).trimmingCharacters(in: .whitespacesAndNewlines),
                           "Docs/schemas/\(name).schema.json is out of date: regenerate it with `mlbench schema \(name)`")
        }
    }

    func testSampleExperimentsFollowTheSchema() throws {
        for name in ["experiment.yaml", "experiment-perturbed.yaml"] {
            XCTAssertNoThrow(try ExperimentFile.load(MLBenchBinary.repository.appendingPathComponent("Examples/sample/\(name)").path))
        }
    }
}
