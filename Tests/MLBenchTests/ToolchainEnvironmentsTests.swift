import Foundation
import XCTest
@testable import MLBench

/// Finding an installed environment: the one asked for or the newest, and a clear
/// error naming what is installed and how to install what is missing.
final class ToolchainEnvironmentsTests: XCTestCase {
    var home: LabHome!

    override func setUpWithError() throws {
        home = LabHome(root: FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-envs-\(UUID().uuidString)"))
        for version in ["1.9.0", "1.10.1"] {
            let folder = ToolchainEnvironments(home: home).folder("onnxruntime", version)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let record = """
                {"toolchain": "onnxruntime", "version": "\(version)", "packages": [], "python": "/x/bin/python",
                 "installed_at": "2026-11-23T10:00:00Z", "frozen": []}
                """
            try Data(record.utf8).write(to: folder.appendingPathComponent("environment.json"))
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: home.root)
    }

    func testTheVersionAskedForOrTheNewest() throws {
        let environments = ToolchainEnvironments(home: home)
        XCTAssertEqual(try environments.required("onnxruntime", version: nil, what: "ONNX Runtime", install: "i").version, "1.10.1",
                       "versions compare as versions, not as text")
        XCTAssertEqual(try environments.required("onnxruntime", version: "1.9.0", what: "ONNX Runtime", install: "i").version, "1.9.0")
    }

    func testMissingVersionOrToolchainNamesWhatIsInstalledAndTheCommand() {
        let environments = ToolchainEnvironments(home: home)
        XCTAssertThrowsError(try environments.required("onnxruntime", version: "2.0", what: "toolchain 'ort'",
                                                       install: "mlbench toolchains install onnxruntime")) {
            XCTAssertEqual("\($0)", "toolchain environment: version 2.0 of toolchain 'ort' is not installed (installed: 1.10.1, 1.9.0); "
                           + "run `mlbench toolchains install onnxruntime --version 2.0`")
        }
        XCTAssertThrowsError(try environments.required("predictor", version: nil, what: "the predictor", install: "mlbench predictor install")) {
            XCTAssertEqual("\($0)", "toolchain environment: the predictor has no installed environment (installed: none); run `mlbench predictor install`")
        }
    }
}
