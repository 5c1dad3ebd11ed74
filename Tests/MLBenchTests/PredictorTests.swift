import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The predictor's pipeline through the `mlbench` binary: the zoo generated
/// from a seed, a measurement campaign with real experiments on the host, and
/// training with the validation report of every test domain.
final class PredictorTests: LabTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        let environment = MLBenchBinary.setupHome.appendingPathComponent("toolchains/\(Predictor.environmentName)")
        guard FileManager.default.fileExists(atPath: environment.path) else {
            XCTFail("no predictor environment in \(environment.path): run scripts/setup (scripts/test does) first")
            throw XCTSkip("no predictor environment")
        }
    }

    func zoo(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let folder = scratch.appendingPathComponent("zoo")
        let outcome = try MLBenchBinary.run(["predictor", "zoo", "--output", folder.path, "--"] + arguments, home: home)
        XCTAssertEqual(outcome.status, 0, outcome.output, file: file, line: line)
        return folder
    }

    /// The same seed writes the same bytes; synthetic models carry their four
    /// parameters in their names and graphs.
    func testZooIsDeterministicAndSyntheticModelsHaveTheirParameters() throws {
        let folder = try zoo(["--families", "resnet,densenet", "--width", "0.25", "--synthetic", "3", "--sizes", "32,48", "--limit", "1"])
        let manifest = try MeasurementCampaign.Manifest.load(folder.appendingPathComponent("manifest.json").path)
        XCTAssertEqual(manifest.models.count, 6, "resnet, densenet and one synthetic model (--limit 1 per family) at 2 sizes")
        let first = try manifest.models.map { try Data(contentsOf: folder.appendingPathComponent($0.path)) }
        let again = scratch.appendingPathComponent("again")
        XCTAssertEqual(try MLBenchBinary.run(["predictor", "zoo", "--output", again.path, "--", "--families", "resnet,densenet", "--width", "0.25",
                                              "--synthetic", "3", "--sizes", "32,48", "--limit", "1"], home: home).status, 0)
        XCTAssertEqual(first, try manifest.models.map { try Data(contentsOf: again.appendingPathComponent($0.path)) }, "same seed, same bytes")

        let synthetic = try XCTUnwrap(manifest.models.first { $0.synthetic == true && $0.inputSize == 32 })
        let parts = synthetic.model.split(separator: "_").compactMap { Int64($0) }  // basic_model_L_K_F_S
        XCTAssertEqual(parts.count, 4, synthetic.model)
        let features = try GraphFeatures.extract(path: folder.appendingPathComponent(synthetic.path).path)
        XCTAssertEqual(features.model.convLayers, parts[0])
        XCTAssertEqual(features.kernels.first?.kernelShape, [parts[1], parts[1]])
        XCTAssertEqual(features.kernels.first?.outputShape[1], parts[2])
        XCTAssertEqual(features.kernels.first?.strides, [parts[3], parts[3]])
        XCTAssertEqual(features.model.inputSize, 32)
    }

    /// Two zoo models measured with real experiments: a row each, with the
    /// features `mlbench features` computes and the stored result's median latency.
    func testCampaignMeasuresModelsWithRealExperiments() throws {
        let folder = try zoo(["--families", "resnet", "--width", "0.25", "--synthetic", "1", "--sizes", "32", "--limit", "1"])
        let table = scratch.appendingPathComponent("table.csv")
        let outcome = try MLBenchBinary.run(["predictor", "campaign", "--zoo", folder.appendingPathComponent("manifest.json").path,
                                             "--table", table.path, "-q",
                                             "--measurement", "{min_iterations: 20, min_time_s: 0.1, max_time_s: 2, min_warmup_iterations: 10, max_warmup_iterations: 100, cool_down_timeout_s: 0}"],
                                            home: home)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let lines = try String(contentsOf: table, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(lines.first, MeasurementCampaign.header)
        XCTAssertEqual(lines.count, 3, "a header and two rows")
        let store = try store()
        for row in lines.dropFirst() {
            let cell = { (column: String) in row[MeasurementCampaign.header.firstIndex(of: column)!] }
            let features = try GraphFeatures.extract(path: folder.appendingPathComponent(cell("file")).path)
            XCTAssertEqual(ModelFeatures.columns.map { cell($0) }, features.model.values.map(String.init), cell("file"))
            let result = try XCTUnwrap(try store.result(id: cell("result")))
            XCTAssertEqual(result.status, .succeeded)
            let median = try XCTUnwrap(result.measurement?.summary.median)
            XCTAssertEqual(try XCTUnwrap(Double(cell("latency_ms"))), median / 1e6, accuracy: 1e-6)
            XCTAssertGreaterThan(try XCTUnwrap(Double(cell("peak_memory_mb"))), 1)
        }
    }

    /// Training on a table whose latency is a power law of the FLOPs: every
    /// domain is reported with every metric for all five regressors, the seeds
    /// are saved, and the best regressor recovers the law (a broken
    /// feature or target column would not).
    func testTrainReportsEveryMetricForEveryDomain() throws {
        let folder = try zoo(["--families", "resnet,mobilenet,shufflenet", "--width", "0.25", "--synthetic", "6", "--sizes", "32,48,64"])
        let manifest = try MeasurementCampaign.Manifest.load(folder.appendingPathComponent("manifest.json").path)
        var csv = (["model", "synthetic"] + ModelFeatures.columns + ["latency_ms"]).joined(separator: ",") + "\n"
        for entry in manifest.models {
            let features = try GraphFeatures.extract(path: folder.appendingPathComponent(entry.path).path).model
            let latency = 3e-6 * pow(Double(features.flops), 0.9)
            csv += ([entry.model, String(entry.synthetic ?? false)] + features.values.map(String.init) + [String(latency)]).joined(separator: ",") + "\n"
        }
        let table = scratch.appendingPathComponent("table.csv")
        try csv.write(to: table, atomically: true, encoding: .utf8)
        let output = scratch.appendingPathComponent("trained")
        let outcome = try MLBenchBinary.run(["predictor", "train", "--table", table.path, "--output", output.path, "--splits", "3", "--seed", "7"], home: home)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("unseen_architectures"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("Spearman"), outcome.stdout)

        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("report.json"))) as? [String: Any])
        XCTAssertEqual(report["seeds"] as? [Int], [7, 8, 9])
        let target = try XCTUnwrap((report["targets"] as? [String: Any])?["latency_ms"] as? [String: Any])
        let domains = try XCTUnwrap(target["domains"] as? [String: [String: Any]])
        let rows = manifest.models.count
        let expectedCounts = ["random": 3 * (rows - Int((Double(rows) * 0.8).rounded())), "new_input_sizes": rows,
                              "unseen_architectures": rows, "synthetic": manifest.models.filter { $0.synthetic == true }.count]
        for (domain, count) in expectedCounts {
            let regressors = try XCTUnwrap(domains[domain]?["regressors"] as? [String: [String: Any]], domain)
            XCTAssertEqual(Set(regressors.keys), ["poly", "svr", "mlp", "rf", "xgb"], domain)
            for (name, metrics) in regressors {
                for key in ["mape", "rmspe", "p95_ape", "within_5", "within_10", "spearman"] {
                    XCTAssertNotNil(metrics[key] as? Double, "\(domain) \(name) \(key)")
                }
                XCTAssertEqual(metrics["count"] as? Int, count, "\(domain) \(name)")
            }
        }
        func best(_ domain: String, _ metric: String, _ better: (Double, Double) -> Bool) throws -> Double {
            let regressors = try XCTUnwrap(domains[domain]?["regressors"] as? [String: [String: Any]])
            return try XCTUnwrap(regressors.values.compactMap { $0[metric] as? Double }.min(by: better))
        }
        XCTAssertLessThan(try best("random", "mape", <), 5, "a power law of FLOPs is linear in the log-space fit")
        XCTAssertGreaterThan(try best("unseen_architectures", "spearman", >), 0.95, "unseen architectures rank as their FLOPs do")
        let predictor = try XCTUnwrap(target["predictor"] as? [String: Any])
        XCTAssertNotNil(predictor["version"] as? String)
        XCTAssertTrue(FileManager.default.fileExists(atPath: output.appendingPathComponent("predictor-latency_ms.pkl").path))
    }

    func testTrainRefusesABadTableNamingLineAndColumn() throws {
        let table = scratch.appendingPathComponent("bad.csv")
        try ((["model"] + ModelFeatures.columns + ["latency_ms"]).joined(separator: ",") + "\n"
            + "a," + ModelFeatures.columns.map { _ in "1" }.joined(separator: ",") + ",2.5\n"
            + "b," + ModelFeatures.columns.map { $0 == "neurons" ? "many" : "1" }.joined(separator: ",") + ",2.5\n")
            .write(to: table, atomically: true, encoding: .utf8)
        let outcome = try MLBenchBinary.run(["predictor", "train", "--table", table.path, "--output", scratch.path], home: home)
        XCTAssertEqual(outcome.status, 2, outcome.output)
        XCTAssertTrue(outcome.stderr.contains("bad.csv:3: column 'neurons' is 'many', not a number"), outcome.stderr)

        try "model,flops,latency_ms\na,1,1\n".write(to: table, atomically: true, encoding: .utf8)
        let missing = try MLBenchBinary.run(["predictor", "train", "--table", table.path, "--output", scratch.path], home: home)
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("the header lacks activations, neurons"), missing.stderr)
    }
}

/// `mlbench guide`: the lab's (toolchain, board) pairs checked before any
/// deployment, excluded with their reasons, the rest ranked by prediction.
final class GuideTests: LabTestCase {
    struct Output: Decodable {
        var candidates: [Guidance.Candidate]
        func pair(_ toolchain: String) throws -> Guidance.Candidate { try XCTUnwrap(candidates.first { $0.toolchain == toolchain }) }
    }

    func guide(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Output {
        let outcome = try MLBenchBinary.run(["guide", "--json"] + arguments, home: home)
        XCTAssertEqual(outcome.status, 0, outcome.output, file: file, line: line)
        return try JSONCoding.decode(Output.self, from: outcome.stdout)
    }

    func testAToolchainMissingAnOperatorAndABoardTooSmallAreExcludedWithWhy() throws {
        let bitwise = home.appendingPathComponent("bitwise.onnx")
        try MLBenchBinary.makeModel(at: bitwise, MLBenchBinary.bitwiseNotModel)
        let operators = try guide([bitwise.path])
        let tflite = try operators.pair("tflite")
        XCTAssertTrue(tflite.excluded)
        XCTAssertTrue(tflite.reasons.contains { $0.hasPrefix("unsupported_operator:") && $0.contains("BitwiseNot") }, "\(tflite.reasons)")
        XCTAssertFalse(try operators.pair("onnxruntime").excluded, "ONNX Runtime runs BitwiseNot")

        // Activations of 1.7 TiB: more than the host's memory, for every toolchain.
        let huge = home.appendingPathComponent("huge.onnx")
        try MLBenchBinary.makeModel(at: huge, """
            from onnx import TensorProto, helper, save
            graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 60000, 60000])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 60000, 60000])])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
            model.ir_version = 8
            save(model, OUTPUT)
            """)
        let memory = try guide([huge.path])
        XCTAssertEqual(memory.candidates.count, 3)
        for candidate in memory.candidates {
            XCTAssertTrue(candidate.excluded, candidate.toolchain)
            XCTAssertTrue(candidate.reasons.contains { $0.hasPrefix("memory:") && $0.contains("more than the board's largest memory") },
                          "\(candidate.reasons)")
        }
    }

    /// Two predictors (ONNX Runtime and TVM on the host) trained on tables whose
    /// latency is a law of the FLOPs, TVM's twice as fast: TVM ranks first; a
    /// latency limit between the two predictions excludes ONNX Runtime, naming the
    /// predictor; TFLite, which no predictor speaks for, is listed unranked.
    func testTheRestIsRankedByPredictionAndALimitExcludesTheSlowOne() throws {
        let zoo = home.appendingPathComponent("zoo")
        XCTAssertEqual(try MLBenchBinary.run(["predictor", "zoo", "--output", zoo.path, "--", "--families", "resnet,mobilenet",
                                              "--width", "0.25", "--synthetic", "4", "--sizes", "16,32,48"], home: home).status, 0)
        let manifest = try MeasurementCampaign.Manifest.load(zoo.appendingPathComponent("manifest.json").path)
        let features = try manifest.models.map { try GraphFeatures.extract(path: zoo.appendingPathComponent($0.path).path) }
        var folders = [String]()
        for (toolchain, scale) in [("onnxruntime", 2e-6), ("tvm", 1e-6)] {
            var csv = (["model", "board", "toolchain"] + ModelFeatures.columns + ["latency_ms"]).joined(separator: ",") + "\n"
            for (entry, graph) in zip(manifest.models, features) {
                csv += ([entry.model, "host", toolchain] + graph.model.values.map(String.init)
                        + [String(scale * pow(Double(graph.model.flops), 0.9))]).joined(separator: ",") + "\n"
            }
            let table = home.appendingPathComponent("\(toolchain).csv")
            try csv.write(to: table, atomically: true, encoding: .utf8)
            let folder = home.appendingPathComponent("trained-\(toolchain)").path
            let trained = try MLBenchBinary.run(["predictor", "train", "--table", table.path, "--output", folder, "--splits", "1",
                                                     "--regressor", "poly"], home: home)
            XCTAssertEqual(trained.status, 0, trained.output)
            folders.append(folder)
        }
        let arguments = [sample.appendingPathComponent("model.onnx").path] + folders.flatMap { ["--predictor", $0] }
        let ranked = try guide(arguments)
        XCTAssertEqual(ranked.candidates.map(\.toolchain), ["tvm", "onnxruntime", "tflite"])
        XCTAssertEqual(ranked.candidates.map(\.rank), [1, 2, nil])
        XCTAssertTrue(try ranked.pair("tflite").reasons.contains { $0.contains("no latency predictor for board 'host' with toolchain 'tflite'") })
        let fast = try XCTUnwrap(try ranked.pair("tvm").latencyMs?.value)
        let slow = try XCTUnwrap(try ranked.pair("onnxruntime").latencyMs?.value)
        XCTAssertLessThan(fast, slow)

        let limited = try guide(arguments + ["--max-latency-ms", String((fast + slow) / 2)])
        let onnxruntime = try limited.pair("onnxruntime")
        XCTAssertTrue(onnxruntime.excluded)
        XCTAssertTrue(onnxruntime.reasons.contains { $0.hasPrefix("predicted too slow:") && $0.contains("predictor") }, "\(onnxruntime.reasons)")
        XCTAssertEqual(try limited.pair("tvm").rank, 1)
    }
}
