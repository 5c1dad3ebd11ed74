import Foundation
import MLBench
import MLBenchCore
import XCTest

/// A test with a lab of its own: a fresh home (sharing the toolchain environments
/// scripts/setup installed) and a folder for experiment files.
class LabTestCase: XCTestCase {
    var home: URL!
    var scratch: URL!

    override func setUpWithError() throws {
        home = try MLBenchBinary.temporaryHome()
        scratch = home.appendingPathComponent("experiments")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: home)
    }

    var sample: URL { MLBenchBinary.repository.appendingPathComponent("Examples/sample") }

    /// Writes an experiment next to the sample (so its relative paths resolve) in the scratch folder.
    func experiment(_ name: String, _ text: String) throws -> String {
        let file = scratch.appendingPathComponent(name)
        try text.replacingOccurrences(of: "SAMPLE", with: sample.path).write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    /// The sample model through ONNX Runtime on the host, compared with itself: the
    /// cheapest real experiment, for tests about the pipeline rather than a toolchain.
    func hostExperiment(_ name: String, measurement: String = "min_iterations: 50, min_time_s: 0.2, max_time_s: 2",
                        extra: String = "") throws -> String {
        try experiment("\(name).yaml", """
            name: \(name)
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: host
            measurement: {\(measurement)}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            \(extra)
            """)
    }

    func stored(_ outcome: MLBenchBinary.Outcome, file: StaticString = #filePath, line: UInt = #line) throws -> ExperimentResult {
        do {
            return try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        } catch {
            XCTFail("mlbench printed no result (status \(outcome.status)):\n\(outcome.output.suffix(3000))", file: file, line: line)
            throw error
        }
    }

    func store() throws -> LabStore { try LabStore(sqlitePath: home.appendingPathComponent("results.sqlite").path) }
}
