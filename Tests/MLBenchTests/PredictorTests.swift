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

    /// The campaign through the lab's queue: one queued experiment per model as
    /// a series, pending until a worker runs them, then gathered into the table
    /// from the results the queue links.
    func testCampaignThroughTheQueue() throws {
        let folder = try zoo(["--families", "resnet", "--width", "0.25", "--synthetic", "1", "--sizes", "32", "--limit", "1"])
        let manifest = folder.appendingPathComponent("manifest.json").path
        let table = scratch.appendingPathComponent("queued.csv")
        let measurement = "{min_iterations: 20, min_time_s: 0.1, max_time_s: 2, min_warmup_iterations: 10, max_warmup_iterations: 100, cool_down_timeout_s: 0}"
        XCTAssertEqual(try MLBenchBinary.run(["boards", "register", "host", "--host", "bench-1"], home: home).status, 0)
        XCTAssertEqual(try MLBenchBinary.run(["boards", "health", "host", "good"], home: home).status, 0)
        let queued = try MLBenchBinary.run(["predictor", "campaign", "--zoo", manifest, "--table", table.path, "--queue", "zoo-1",
                                            "--measurement", measurement], home: home)
        XCTAssertEqual(queued.status, 0, queued.output)
        XCTAssertTrue(queued.stdout.contains("queued 2 experiment(s) as series 'zoo-1'"), queued.stdout)
        let early = try MLBenchBinary.run(["predictor", "campaign", "--zoo", manifest, "--table", table.path, "--collect", "zoo-1"], home: home)
        XCTAssertEqual(early.status, 0, early.output)
        XCTAssertTrue(early.stdout.contains("wrote 0 row(s)") && early.stdout.contains("2 still pending"), early.stdout)

        let worker = try MLBenchBinary.run(["worker", "--host", "bench-1", "--drain", "--",
                                            MLBenchBinary.executable.path, "run", "--quiet", "--id-only"], home: home, timeout: 300)
        XCTAssertEqual(worker.status, 0, worker.stderr)
        let collected = try MLBenchBinary.run(["predictor", "campaign", "--zoo", manifest, "--table", table.path, "--collect", "zoo-1"], home: home)
        XCTAssertEqual(collected.status, 0, collected.output)
        let rows = try csv(table)
        XCTAssertEqual(rows.count, 2)
        let queue = try store().experiments(state: nil).filter { $0.series == "zoo-1" }
        XCTAssertEqual(Set(rows.compactMap { $0["result"] }), Set(queue.compactMap(\.resultID)), "each row is the result the queue links")
        for row in rows {
            let features = try GraphFeatures.extract(path: folder.appendingPathComponent(row["file"]!).path)
            XCTAssertEqual(ModelFeatures.columns.map { row[$0] }, features.model.values.map { String($0) })
            XCTAssertGreaterThan(Double(row["latency_ms"]!) ?? 0, 0)
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

    /// Reads a CSV written by the predictor's scripts (no quoted cells) as header → column.
    func csv(_ url: URL) throws -> [[String: String]] {
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = try XCTUnwrap(lines.first)
        return lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    /// The kernel campaign on real models with ONNX Runtime's profiler: every
    /// kernel of the Swift feature extraction gets a row in order, and the
    /// kernels ONNX Runtime runs fused (Conv+BN+activation, swish as one
    /// Sigmoid+Mul) all receive time, which they would not if the fusion rule
    /// disagreed with the runtime's. Then the kernel-level predictor, trained on
    /// those kernels with times set to a known law, predicts the unseen
    /// architectures' latencies (the law's sum plus a per-kernel and a fixed
    /// overhead) within 5 %. The zoo's kernel samples (chains of random
    /// blocks) are measured alike and train the kernel regressors only.
    func testKernelCampaignTimesEveryKernelAndTheKernelPredictorSumsThem() throws {
        let folder = try zoo(["--families", "resnet,mobilenet,shufflenet,efficientnet,densenet", "--width", "0.25", "--limit", "2",
                              "--synthetic", "6", "--sizes", "32,48", "--kernel-samples", "12"])
        let kernels = scratch.appendingPathComponent("kernels.csv")
        let models = scratch.appendingPathComponent("models.csv")
        let measured = try MLBenchBinary.run(["predictor", "kernels", "--zoo", folder.appendingPathComponent("manifest.json").path,
                                              "--kernels", kernels.path, "--models", models.path, "--budget", "0.02"], home: home)
        XCTAssertEqual(measured.status, 0, measured.output)
        var kernelRows = try csv(kernels)
        let modelRows = try csv(models)
        let manifest = try MeasurementCampaign.Manifest.load(folder.appendingPathComponent("manifest.json").path)
        XCTAssertEqual(modelRows.map { $0["file"] }, manifest.models.map { Optional($0.path) })
        var sawSwish = false, sawLoneBatchNorm = false
        for entry in manifest.models {
            let features = try GraphFeatures.extract(path: folder.appendingPathComponent(entry.path).path)
            let rows = kernelRows.filter { $0["file"] == entry.path }
            XCTAssertEqual(rows.map { $0["kind"]! }, features.kernels.map { $0.kind }, entry.path)
            for row in rows where row["kind"]!.hasPrefix("Conv") || row["kind"] == "Sigmoid+Mul" {
                XCTAssertGreaterThan(Double(row["latency_ms"]!) ?? 0, 0, "\(entry.path) kernel \(row["kernel"]!) \(row["kind"]!) got no time")
            }
            sawSwish = sawSwish || rows.contains { $0["kind"] == "Sigmoid+Mul" }
            sawLoneBatchNorm = sawLoneBatchNorm || rows.contains { $0["kind"] == "BatchNormalization+Relu" }
            let model = try XCTUnwrap(modelRows.first { $0["file"] == entry.path })
            XCTAssertGreaterThan(Double(model["latency_ms"]!) ?? 0, 0)
            XCTAssertEqual(model["threads"], "1")
        }
        // Layout: which kernels ran in ONNX Runtime's blocked NCHWc layout (it has one on CPUs with AVX2
        // or AVX-512) and what their layout conversions cost, a part of their time.
        for row in kernelRows {
            XCTAssertTrue(["0", "1"].contains(row["blocked"]), "\(row["file"]!) kernel \(row["kernel"]!): blocked '\(row["blocked"] ?? "none")'")
            let reorder = try XCTUnwrap(Double(row["reorder_ms"] ?? ""), "\(row["file"]!): reorder_ms")
            XCTAssertTrue(reorder >= 0 && reorder <= Double(row["latency_ms"]!)! + 1e-9, "\(row["file"]!) kernel \(row["kernel"]!): reorder \(reorder) ms")
        }
        if (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx2") == true {
            XCTAssertTrue(kernelRows.contains { $0["blocked"] == "1" }, "convolutions run blocked on an AVX2 CPU")
            XCTAssertTrue(kernelRows.contains { (Double($0["reorder_ms"]!) ?? 0) > 0 }, "a blocked kernel next to the NCHW graph input pays a conversion")
        }
        XCTAssertTrue(sawSwish, "EfficientNet's swish is one Sigmoid+Mul kernel, as ONNX Runtime fuses it")
        XCTAssertTrue(sawLoneBatchNorm, "DenseNet's BatchNormalization takes its Relu, which ONNX Runtime fuses with it in its blocked layout")

        // A known law: each kernel 1e-6 · FLOPs^0.9 ms; a model 1.2 × its kernels' sum + 3 µs per kernel + 20 µs.
        var sums = [String: (Double, Int)]()
        for index in kernelRows.indices {
            let time = 1e-6 * pow(Double(kernelRows[index]["flops"]!)!, 0.9)
            kernelRows[index]["latency_ms"] = String(time)
            kernelRows[index]["reorder_ms"] = "0"  // the law has no layout conversions
            let file = kernelRows[index]["file"]!
            sums[file] = ((sums[file]?.0 ?? 0) + time, (sums[file]?.1 ?? 0) + 1)
        }
        let kernelHeader = try String(contentsOf: kernels, encoding: .utf8).split(separator: "\n")[0].split(separator: ",").map(String.init)
        try ([kernelHeader.joined(separator: ",")] + kernelRows.map { row in kernelHeader.map { row[$0]! }.joined(separator: ",") })
            .joined(separator: "\n").write(to: kernels, atomically: true, encoding: .utf8)
        var table = (["model", "synthetic", "file"] + ModelFeatures.columns + ["latency_ms"]).joined(separator: ",") + "\n"
        for row in modelRows where row["family"] != "kernel" {
            let (sum, count) = try XCTUnwrap(sums[row["file"]!])
            table += ([row["model"]!, row["synthetic"]!, row["file"]!] + ModelFeatures.columns.map { row[$0]! }
                      + [String(1.2 * sum + 0.003 * Double(count) + 0.02)]).joined(separator: ",") + "\n"
        }
        let tablePath = scratch.appendingPathComponent("law.csv")
        try table.write(to: tablePath, atomically: true, encoding: .utf8)
        let output = scratch.appendingPathComponent("trained")
        let trained = try MLBenchBinary.run(["predictor", "train", "--table", tablePath.path, "--kernels", kernels.path, "--output", output.path,
                                             "--splits", "2", "--regressor", "poly"], home: home)
        XCTAssertEqual(trained.status, 0, trained.output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("report.json"))) as? [String: Any])
        let target = try XCTUnwrap((report["targets"] as? [String: Any])?["latency_ms"] as? [String: Any])
        let unseen = try XCTUnwrap(((target["domains"] as? [String: Any])?["unseen_architectures"] as? [String: Any])?["regressors"] as? [String: [String: Any]])
        let kernel = try XCTUnwrap(unseen["kernel"], "the kernel-level predictor is reported beside the model-level ones")
        XCTAssertEqual(kernel["count"] as? Int, manifest.models.filter { $0.family != "kernel" }.count, "kernel samples are never tested")
        for key in ["mape", "rmspe", "p95_ape", "within_5", "within_10", "spearman"] { XCTAssertNotNil(kernel[key] as? Double, key) }
        XCTAssertLessThan(try XCTUnwrap(kernel["mape"] as? Double), 5, trained.stdout)
        XCTAssertTrue(trained.stdout.contains("kernel"), trained.stdout)
    }

    /// A predictor trained for the host with ONNX Runtime at one intra-op
    /// thread answers an experiment on `predicted:host`: the stored result is
    /// marked predicted, carries the predictor's version and validation errors,
    /// and no board record, measurement or build. Other options, or no predictor
    /// for the board, fail naming why. A predicted search runs one such
    /// experiment per option set within its budget.
    func testPredictedTargetCarriesThePredictorAndTouchesNoBoard() throws {
        let folder = try zoo(["--families", "resnet,mobilenet", "--width", "0.25", "--synthetic", "4", "--sizes", "16,32,48"])
        let manifest = try MeasurementCampaign.Manifest.load(folder.appendingPathComponent("manifest.json").path)
        // Energy per inference (mJ) three times the latency (ms): a board drawing 3 W.
        var table = (["model", "board", "toolchain"] + ModelFeatures.columns + ["latency_ms", "energy_mj"]).joined(separator: ",") + "\n"
        for entry in manifest.models {
            let features = try GraphFeatures.extract(path: folder.appendingPathComponent(entry.path).path).model
            let latency = 2e-6 * pow(Double(features.flops), 0.9)
            table += ([entry.model, "host", "onnxruntime"] + features.values.map(String.init)
                      + [String(latency), String(3 * latency)]).joined(separator: ",") + "\n"
        }
        let tablePath = scratch.appendingPathComponent("host.csv")
        try table.write(to: tablePath, atomically: true, encoding: .utf8)
        let predictors = home.appendingPathComponent("predictors/host-onnxruntime")
        let trained = try MLBenchBinary.run(["predictor", "train", "--table", tablePath.path, "--output", predictors.path, "--splits", "1",
                                             "--regressor", "poly", "--options", #"{"intra_op_threads": 1}"#], home: home)
        XCTAssertEqual(trained.status, 0, trained.output)
        let saved = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: predictors.appendingPathComponent("report.json"))) as? [String: Any])
        let predictor = try XCTUnwrap(((saved["targets"] as? [String: Any])?["latency_ms"] as? [String: Any])?["predictor"] as? [String: Any])

        func predicted(_ name: String, board: String, options: String) throws -> String {
            try experiment("\(name).yaml", """
                name: \(name)
                model: SAMPLE/model.onnx
                inputs: {image: SAMPLE/inputs/image.npy}
                reference: {toolchain: onnxruntime}
                toolchain: {name: onnxruntime, target: cpu, options: \(options)}
                board: \(board)
                semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
                """)
        }
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", try predicted("one", board: "predicted:host", options: "{intra_op_threads: 1}")], home: home)
        let result = try stored(outcome)
        XCTAssertEqual(result.status, .succeeded, outcome.output)
        let prediction = try XCTUnwrap(result.prediction, "the result is marked predicted")
        XCTAssertEqual(prediction.board, "host")
        XCTAssertEqual(prediction.predictors, [predictors.path])
        let latency = try XCTUnwrap(prediction.targets["latency_ms"])
        XCTAssertEqual(latency.version, predictor["version"] as? String)
        XCTAssertEqual(latency.regressor, "poly")
        XCTAssertNotNil(latency.validation?["random"]?["mape"] ?? nil, "the predictor's validation errors come with the value")
        // The value is the predictor's: what `mlbench guide` predicts for the same model with the same folder.
        let guided = try MLBenchBinary.run(["guide", "--json", sample.appendingPathComponent("model.onnx").path, "--predictor", predictors.path], home: home)
        let candidates = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(guided.stdout.utf8)) as? [String: Any])?["candidates"] as? [[String: Any]], guided.output)
        let onnxruntime = try XCTUnwrap(candidates.first { $0["toolchain"] as? String == "onnxruntime" })
        XCTAssertEqual(try XCTUnwrap((onnxruntime["latency_ms"] as? [String: Any])?["value"] as? Double), latency.value, accuracy: 1e-12)
        // Without --predictor, guide asks the predictors trained into the lab's predictors folder.
        let byDefault = try MLBenchBinary.run(["guide", "--json", sample.appendingPathComponent("model.onnx").path], home: home)
        XCTAssertEqual(byDefault.status, guided.status, byDefault.output)
        XCTAssertEqual(byDefault.stdout, guided.stdout)
        XCTAssertNil(result.board, "no board was touched")
        XCTAssertNil(result.measurement)
        XCTAssertNil(result.toolchain?.artifactSHA256)
        let text = try MLBenchBinary.run(["results", "show", result.id], home: home)
        XCTAssertTrue(text.stdout.contains("PREDICTED"), text.output)

        let queued = try MLBenchBinary.run(["queue", "submit", try predicted("queued", board: "predicted:host", options: "{intra_op_threads: 1}")], home: home)
        XCTAssertNotEqual(queued.status, 0)
        XCTAssertTrue(queued.output.contains("touches no board and is not queued"), queued.output)

        let otherOptions = try stored(try MLBenchBinary.run(["run", "--json", "-q", try predicted("two", board: "predicted:host", options: "{intra_op_threads: 2}")], home: home))
        XCTAssertEqual(otherOptions.status, .failed)
        XCTAssertTrue(otherOptions.failure?.reason.contains("speaks for board 'host' and toolchain 'onnxruntime' with these options") ?? false, "\(String(describing: otherOptions.failure))")
        let noBoard = try stored(try MLBenchBinary.run(["run", "--json", "-q", try predicted("three", board: "predicted:jetson", options: "{intra_op_threads: 1}")], home: home))
        XCTAssertEqual(noBoard.failure?.stage, "predict")
        XCTAssertTrue(noBoard.failure?.reason.contains("board 'jetson'") ?? false, "\(String(describing: noBoard.failure))")

        // A predicted search: one predicted experiment per option set, within the budget;
        // the set the predictor does not speak for has no cost and says why.
        let search = try MLBenchBinary.run(["guide", "--search", "grid", "--experiment", try predicted("search", board: "host", options: "{}"),
                                            "--space", "intra_op_threads=1,2", "--budget", "2", "--predicted", "--json"], home: home)
        XCTAssertEqual(search.status, 0, search.output)
        let report = try JSONCoding.decode(OptionSearch.Report.self, from: search.stdout)
        XCTAssertEqual(report.evaluations.map { $0.options["intra_op_threads"] }, [.number(1), .number(2)])
        XCTAssertEqual(try XCTUnwrap(report.evaluations[0].cost), latency.value, accuracy: 1e-9)
        XCTAssertNil(report.evaluations[1].cost)
        XCTAssertTrue(report.evaluations[1].reason?.contains("with these options") ?? false, "\(report.evaluations[1])")
        XCTAssertEqual(report.best, 0)

        // Energy as the cost: the energy predictor's value, about three times the latency.
        let energy = try XCTUnwrap(prediction.targets["energy_mj"], "an energy_mj column trains an energy predictor")
        XCTAssertEqual(energy.value, 3 * latency.value, accuracy: 0.2 * 3 * latency.value)
        let byEnergy = try MLBenchBinary.run(["guide", "--search", "grid", "--experiment", try predicted("energy", board: "host", options: "{}"),
                                              "--space", "intra_op_threads=1", "--budget", "1", "--predicted", "--cost", "energy", "--json"], home: home)
        XCTAssertEqual(byEnergy.status, 0, byEnergy.output)
        XCTAssertEqual(try XCTUnwrap(try JSONCoding.decode(OptionSearch.Report.self, from: byEnergy.stdout).evaluations.first?.cost), energy.value, accuracy: 1e-9)
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

    /// A measured search: each option set is a real experiment on the host,
    /// stored with the options it ran with; the cost is its median latency and
    /// the lowest is marked best. The model-based strategy names why it chose.
    func testAMeasuredSearchRunsAnExperimentPerOptionSet() throws {
        let template = try hostExperiment("search", measurement: "min_iterations: 20, min_time_s: 0.05, max_time_s: 1, min_warmup_iterations: 10, max_warmup_iterations: 100, cool_down_timeout_s: 0")
        let outcome = try MLBenchBinary.run(["guide", "--search", "model", "--experiment", template, "--space", "intra_op_threads=1,2",
                                             "--space", "graph_optimization_level=basic,all", "--budget", "3", "--json"], home: home)
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let report = try JSONCoding.decode(OptionSearch.Report.self, from: outcome.stdout)
        XCTAssertEqual(report.points, 4)
        XCTAssertEqual(report.evaluations.count, 3, "the budget")
        XCTAssertEqual(Set(report.evaluations.map(\.options)).count, 3)
        XCTAssertTrue(report.evaluations[2].chosenBecause.hasPrefix("surrogate:"), report.evaluations[2].chosenBecause)
        let store = try store()
        for evaluation in report.evaluations {
            let result = try XCTUnwrap(try store.result(id: try XCTUnwrap(evaluation.result)))
            XCTAssertEqual(result.status, .succeeded)
            XCTAssertEqual(result.toolchain?.options, .object(evaluation.options), "the stored result ran with the point's options")
            XCTAssertEqual(try XCTUnwrap(evaluation.cost), try XCTUnwrap(result.measurement?.summary.median) / 1e6, accuracy: 1e-9)
        }
        let best = try XCTUnwrap(report.best)
        XCTAssertEqual(report.evaluations[best].cost, report.evaluations.compactMap(\.cost).min())
    }
}
