import Foundation
@testable import MLBench
import XCTest

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
        let error = try loadError(valid.replacingOccurrences(of: "metric: max_abs", with: "metric: l2"))
        XCTAssertEqual(error.field, "semantic_preservation.metric")
        XCTAssertTrue(error.message.contains("max_abs, cosine"), error.message)
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
