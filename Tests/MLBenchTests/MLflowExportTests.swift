import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import MLBench
import MLBenchCore
import XCTest

/// `mlbench results mlflow` against a real MLflow tracking server (scripts/mlflow starts
/// one; scripts/test passes its URL in MLBENCH_TEST_MLFLOW): a real stored result, with
/// probe samples, logged as a run and read back through MLflow's own REST API.
///
/// Without the variable the tests are skipped with a message, except under CI=true,
/// where a missing server is a failure.
final class MLflowExportTests: XCTestCase {
    static let variable = "MLBENCH_TEST_MLFLOW"

    private func server() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment[Self.variable], !url.isEmpty { return url }
        if environment["CI"] == "true" {
            XCTFail("\(Self.variable) is not set under CI: scripts/test must start MLflow (scripts/mlflow) so that the export is tested")
        }
        throw XCTSkip("\(Self.variable) is not set (scripts/test starts a server with scripts/mlflow)")
    }

    func testAStoredResultIsLoggedAsARunAndReadsBackThroughMLflow() throws {
        let url = try server()
        let home = try MLBenchBinary.temporaryHome()
        addTeardownBlock { try? FileManager.default.removeItem(at: home) }
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample").path
        let inventory = home.appendingPathComponent("inventory.yaml")
        try """
            boards:
              host: {plugin: host}
            toolchains:
              onnxruntime: {plugin: onnxruntime}
            probes:
              memory: {plugin: host-probes, kind: rss, board: host, settings: {interval_ms: 20}}
            """.write(to: inventory, atomically: true, encoding: .utf8)
        let experimentFile = home.appendingPathComponent("export.yaml")
        try """
            name: mlflow-export
            model: \(sample)/model.onnx
            inputs: {image: \(sample)/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu, options: {intra_op_threads: 1}}
            board: host
            measurement: {min_iterations: 60, min_time_s: 0.5, max_time_s: 3}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            """.write(to: experimentFile, atomically: true, encoding: .utf8)
        let run = try MLBenchBinary.run(["run", "--json", "-q", experimentFile.path, "--inventory", inventory.path], home: home)
        XCTAssertEqual(run.status, 0, run.stderr)
        let result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(run.stdout.utf8))
        XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
        let measurement = try XCTUnwrap(result.measurement)
        let warmUp = try XCTUnwrap(result.warmUp)

        // A fresh experiment name: the server may hold runs of earlier test runs.
        let experiment = "mlbench-test-\(UUID().uuidString.prefix(8))"
        let export = try MLBenchBinary.run(["results", "mlflow", String(result.id.prefix(12)), "--tracking-uri", url,
                                            "--experiment", experiment, "--inventory", inventory.path], home: home)
        XCTAssertEqual(export.status, 0, export.output)
        XCTAssertTrue(export.stdout.hasPrefix("logged \(result.id) as run "), export.stdout)

        // Read back through MLflow's REST API.
        let client = try MLflowClient(trackingURI: url, environment: [:])
        let experimentID = try XCTUnwrap((try client.call("experiments/get-by-name", query: ["experiment_name": experiment])["experiment"]
            as? [String: Any])?["experiment_id"] as? String)
        let runs = try XCTUnwrap(try client.call("runs/search", body: ["experiment_ids": [experimentID]])["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 1)
        let info = try XCTUnwrap(runs[0]["info"] as? [String: Any])
        let runID = try XCTUnwrap(info["run_id"] as? String)
        XCTAssertTrue(export.stdout.contains("/#/experiments/\(experimentID)/runs/\(runID)"), export.stdout)
        XCTAssertEqual(info["status"] as? String, "FINISHED")
        XCTAssertEqual(info["run_name"] as? String, "mlflow-export")
        let data = try XCTUnwrap(runs[0]["data"] as? [String: Any])
        func pairs(_ key: String) -> [String: Any] {
            Dictionary(((data[key] as? [[String: Any]]) ?? []).map { ($0["key"] as! String, $0["value"]!) }, uniquingKeysWith: { a, _ in a })
        }
        let tags = pairs("tags"), params = pairs("params"), metrics = pairs("metrics")
        XCTAssertEqual(tags["mlbench.result_id"] as? String, result.id)
        XCTAssertEqual(tags["mlflow.user"] as? String, result.user)
        // The definition, flattened; the board; the toolchain with its exact versions.
        XCTAssertEqual(params["experiment.measurement.min_iterations"] as? String, "60")
        XCTAssertEqual(params["experiment.toolchain.options.intra_op_threads"] as? String, "1")
        XCTAssertEqual(params["experiment.semantic_preservation.metric"] as? String, "max_abs")
        XCTAssertEqual(params["board"] as? String, "host")
        XCTAssertEqual(params["toolchain"] as? String, "onnxruntime")
        XCTAssertEqual(params["toolchain.version"] as? String, result.toolchain?.version)
        XCTAssertEqual(params["toolchain.plugin_version"] as? String, result.toolchain?.pluginVersion)
        XCTAssertEqual(params["reference.version"] as? String, result.reference?.version)
        XCTAssertEqual(params["sha256.model"] as? String, result.checksums["model"])
        // Latency statistics in ms, throughput, semantic preservation.
        XCTAssertEqual(try XCTUnwrap(metrics["latency_median_ms"] as? Double), measurement.summary.median / 1e6, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(metrics["latency_p99_ms"] as? Double), measurement.summary.p99 / 1e6, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(metrics["iterations"] as? Double), Double(measurement.durationsNs.count))
        XCTAssertEqual(try XCTUnwrap(metrics["throughput_per_s"] as? Double), 1e9 / measurement.summary.mean, accuracy: 1e-6)
        XCTAssertEqual(metrics["preservation_ratio"] as? Double, result.semanticPreservation?.ratio)

        // Every measured iteration's latency as a history, in order.
        let history = try XCTUnwrap(try client.call("metrics/get-history", query: ["run_id": runID, "metric_key": "latency_ms",
                                                                                  "max_results": "25000"])["metrics"] as? [[String: Any]])
        XCTAssertEqual(history.count, measurement.durationsNs.count)
        let byStep = Dictionary(history.map { (($0["step"] as? Int) ?? Int("\($0["step"]!)")!, $0["value"] as! Double) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byStep.count, measurement.durationsNs.count, "one value per step")
        XCTAssertEqual(try XCTUnwrap(byStep[5]), Double(measurement.durationsNs[5]) / 1e6, accuracy: 1e-9)
        let warmUpHistory = try XCTUnwrap(try client.call("metrics/get-history", query: ["run_id": runID, "metric_key": "warmup_latency_ms",
                                                                                        "max_results": "25000"])["metrics"] as? [Any])
        XCTAssertEqual(warmUpHistory.count, warmUp.durationsNs.count)

        // Artifacts: the bundle, the definition, the raw samples (the probe's too).
        func listed(_ path: String?) throws -> [String] {
            var query = ["run_id": runID]
            query["path"] = path
            return ((try client.call("artifacts/list", query: query)["files"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }.sorted()
        }
        XCTAssertEqual(try listed(nil), ["experiment.yaml", "result.json", "samples"])
        XCTAssertEqual(try listed("samples"), ["samples/latency.csv", "samples/probe-memory.csv", "samples/warmup.csv"])
        let artifactURI = try XCTUnwrap(info["artifact_uri"] as? String)
        let root = try MLflowExport.proxiedArtifactRoot(artifactURI)
        let download = try HTTPExchange.send(URLRequest(url: URL(string: "\(url)/api/2.0/mlflow-artifacts/artifacts/\(root)/result.json")!), peer: url)
        XCTAssertEqual(download.status, 200)
        XCTAssertEqual(try ResultCoding.decoder.decode(ExperimentResult.self, from: download.body), result, "the bundle as stored")
        let samples = try HTTPExchange.send(URLRequest(url: URL(string: "\(url)/api/2.0/mlflow-artifacts/artifacts/\(root)/samples/latency.csv")!), peer: url)
        XCTAssertEqual(samples.text.split(separator: "\n").count, measurement.durationsNs.count + 1, "a header and one line per iteration")

        // Exporting again finds the run instead of logging a second one.
        let again = try MLBenchBinary.run(["results", "mlflow", result.id, "--tracking-uri", url, "--experiment", experiment], home: home)
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.stdout.contains("was logged before as run \(runID)"), again.stdout)
        XCTAssertEqual((try client.call("runs/search", body: ["experiment_ids": [experimentID]])["runs"] as? [Any])?.count, 1)

        // A deleted experiment is named as such, and nothing is logged to it.
        try client.call("experiments/delete", body: ["experiment_id": experimentID])
        let deleted = try MLBenchBinary.run(["results", "mlflow", result.id, "--tracking-uri", url, "--experiment", experiment, "--again"], home: home)
        XCTAssertEqual(deleted.status, 2)
        XCTAssertTrue(deleted.stderr.contains("the MLflow experiment '\(experiment)' is deleted"), deleted.stderr)
    }

    /// What the user sees when the server is not there, or refuses a call.
    func testUnreachableServerAndMLflowErrorsAreNamed() throws {
        let url = try server()
        let home = try MLBenchBinary.temporaryHome()
        addTeardownBlock { try? FileManager.default.removeItem(at: home) }
        // A port nothing listens on: bound, then closed.
        let socket = try XCTUnwrap(try? ChildProcess.run(["/usr/bin/env", "python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"], timeout: 30))
        let port = socket.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let store = try LabStore(sqlitePath: home.appendingPathComponent("results.sqlite").path)
        let result = ExperimentResult(id: "0123456789abcdef", name: "stored", status: .failed,
                                      failure: .init(stage: "build", reason: "no such operator", kind: .toolchain), user: "tester",
                                      startedAt: Date(timeIntervalSince1970: 1_700_000_000), finishedAt: Date(timeIntervalSince1970: 1_700_000_010),
                                      experimentText: "name: stored\n", experimentPath: "/tmp/stored.yaml", checksums: [:], log: [])
        try store.insert(result)
        let noServer = try MLBenchBinary.run(["results", "mlflow", "0123"], home: home, environment: ["MLFLOW_TRACKING_URI": ""])
        XCTAssertEqual(noServer.status, 2)
        XCTAssertTrue(noServer.stderr.contains("no MLflow tracking server: give --tracking-uri"), noServer.stderr)
        let notURL = try MLBenchBinary.run(["results", "mlflow", "0123", "--tracking-uri", "localhost:5000"], home: home)
        XCTAssertEqual(notURL.status, 2)
        XCTAssertTrue(notURL.stderr.contains("the MLflow tracking URI 'localhost:5000' is not an http(s) URL"), notURL.stderr)
        let unknown = try MLBenchBinary.run(["results", "mlflow", "fedc", "--tracking-uri", url], home: home)
        XCTAssertTrue(unknown.stderr.contains("no result with id 'fedc'"), unknown.stderr)
        let refused = try MLBenchBinary.run(["results", "mlflow", "0123", "--tracking-uri", "http://127.0.0.1:\(port)"], home: home)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("cannot reach the MLflow tracking server http://127.0.0.1:\(port)"), refused.stderr)

        // MLflow's own error code and message, as the server sent them.
        let client = try MLflowClient(trackingURI: url, environment: [:])
        XCTAssertThrowsError(try client.call("runs/get", query: ["run_id": "0000000000000000"])) { error in
            let error = error as? MLflowError
            XCTAssertEqual(error?.code, "RESOURCE_DOES_NOT_EXIST")
            XCTAssertEqual(error?.description, "MLflow runs/get answered HTTP 404 RESOURCE_DOES_NOT_EXIST: Run with id=0000000000000000 not found")
        }
    }
}
