import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The parts of the compatibility checks that need no toolchain: findings as
/// they cross the plugin boundary, model formats, and memory against the board.
final class CompatibilityCheckTests: XCTestCase {
    func testFindingsDecodeFromObjectsAndFromPlainStrings() throws {
        let report = try JSONCoding.decode(CompatibilityReport.self, from: """
            {"compatible": false, "issues": ["the model is broken",
              {"severity": "warning", "code": "layout_conversion", "message": "NCHW to NHWC"},
              {"severity": "error", "code": "unsupported_operator", "operator": "BitwiseNot", "message": "cannot convert BitwiseNot"}],
             "needs_calibration_data": true, "footprint": {"weights_bytes": 10, "activations_bytes": 20}}
            """)
        XCTAssertEqual(report.issues.map(\.severity), [.error, .warning, .error])
        XCTAssertEqual(report.issues[0].message, "the model is broken", "a plugin with only words is read as an error")
        XCTAssertEqual(report.issues[2].operator, "BitwiseNot")
        XCTAssertEqual(report.needsCalibrationData, true)
        XCTAssertEqual(report.footprint, ModelFootprint(weightsBytes: 10, activationsBytes: 20))
        // An old plugin's reply, without the new fields, still reads.
        let old = try JSONCoding.decode(CompatibilityReport.self, from: #"{"compatible": true, "issues": []}"#)
        XCTAssertNil(old.needsCalibrationData)
        XCTAssertNil(old.footprint)
        XCTAssertThrowsError(try JSONCoding.decode(CompatibilityReport.self, from: #"{"compatible": false, "issues": [{"severity": "fatal", "message": "x"}]}"#))
    }

    func testFindingDescriptionNamesOperatorToolchainAndBoard() {
        let finding = CompatibilityFinding(severity: .error, code: "unsupported_operator", operator: "Frobnicate",
                                           message: "cannot convert it", toolchain: "tflite", toolchainVersion: "2.3.0", board: "jetson-1")
        XCTAssertEqual(finding.description, "error [unsupported_operator]: cannot convert it (operator Frobnicate, tflite 2.3.0, board jetson-1)")
        XCTAssertTrue(FindingSeverity.error > .warning && FindingSeverity.warning > .info)
    }

    func testModelFormatFromFileNameAndFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("formats-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let savedModel = folder.appendingPathComponent("saved")
        try FileManager.default.createDirectory(at: savedModel, withIntermediateDirectories: true)
        try Data().write(to: savedModel.appendingPathComponent("saved_model.pb"))
        let files = ["m.onnx": "onnx", "m.tflite": "tflite", "m.keras": "keras", "m.h5": "keras", "m.xmodel": "xmodel", "m.bin": nil]
        for (name, format) in files {
            try Data([1]).write(to: folder.appendingPathComponent(name))
            XCTAssertEqual(CompatibilityCheck.modelFormat(at: folder.appendingPathComponent(name).path), format, name)
        }
        XCTAssertEqual(CompatibilityCheck.modelFormat(at: savedModel.path), "savedmodel")
        XCTAssertNil(CompatibilityCheck.modelFormat(at: folder.path), "a folder without saved_model.pb")
        XCTAssertNil(CompatibilityCheck.modelFormat(at: folder.appendingPathComponent("missing.onnx").path))
    }

    func testMemoryAgainstTheBoard() {
        let mcu = [MemoryRegion(name: "flash", sizeBytes: 4 << 20), MemoryRegion(name: "sram", sizeBytes: 512 << 10)]
        let tooBig = CompatibilityCheck.memoryFindings(ModelFootprint(weightsBytes: 6 << 20, activationsBytes: 1 << 20), memories: mcu)
        XCTAssertEqual(tooBig.map(\.severity), [.error])
        XCTAssertEqual(tooBig.first?.code, "memory")
        XCTAssertTrue(tooBig.first?.message.contains("7.0 MiB") == true && tooBig.first?.message.contains("'flash'") == true,
                      tooBig.first?.message ?? "")

        let ram = [MemoryRegion(name: "ram", sizeBytes: 8 << 30, usedBytes: (8 << 30) - (100 << 20))]
        let tight = CompatibilityCheck.memoryFindings(ModelFootprint(weightsBytes: 150 << 20, activationsBytes: 10 << 20), memories: ram)
        XCTAssertEqual(tight.map(\.severity), [.warning], "fits the board, not what is free now")
        XCTAssertEqual(CompatibilityCheck.memoryFindings(ModelFootprint(weightsBytes: 1 << 20, activationsBytes: 1 << 20), memories: ram), [])
        XCTAssertEqual(CompatibilityCheck.memoryFindings(ModelFootprint(), memories: ram), [], "nothing known, nothing said")
        XCTAssertEqual(CompatibilityCheck.memoryFindings(ModelFootprint(weightsBytes: 1), memories: []), [])
    }
}
