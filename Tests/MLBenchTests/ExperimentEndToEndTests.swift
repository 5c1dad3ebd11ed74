import Foundation
import MLBench
import MLBenchCore
import XCTest

/// Real experiments on the host board with the real toolchains, through the
/// `mlbench` binary: the result as stored, and failures stored with a reason.
final class ExperimentEndToEndTests: LabTestCase {

    func testSampleExperimentPreservesSemanticsAndStoresStatistics() throws {
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", sample.appendingPathComponent("experiment.yaml").path], home: home)
        let result = try stored(outcome)
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(result.status, .succeeded)
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0)
        XCTAssertEqual(result.semanticPreservation?.samples, 16)
        XCTAssertEqual(result.toolchain?.name, "tvm")
        XCTAssertEqual(result.reference?.name, "onnxruntime")
        let measurement = try XCTUnwrap(result.measurement)
        XCTAssertGreaterThanOrEqual(measurement.summary.count, 200)
        XCTAssertEqual(measurement.durationsNs.count, measurement.summary.count, "raw timings are kept")
        XCTAssertLessThanOrEqual(measurement.summary.min, measurement.summary.median)
        XCTAssertLessThanOrEqual(measurement.summary.medianInterval.lower, measurement.summary.median)
        XCTAssertGreaterThanOrEqual(measurement.summary.medianInterval.upper, measurement.summary.median)
        XCTAssertGreaterThan(measurement.peakMemoryBytes, 0)
        XCTAssertNotNil(result.checksums["model"])
        XCTAssertNotNil(result.checksums["input:image"])
        XCTAssertNotNil(result.board?.conditions?.observed["kernel"])
        XCTAssertNotNil(result.board?.conditionsAfter?.observed["kernel"], "conditions are observed again after the run")
        XCTAssertEqual(result.attempts, 1)

        // The warm-up trace and its detected end; the rule that ended the run.
        let warmUp = try XCTUnwrap(result.warmUp)
        // This shared 2-core host may switch between speed regimes during warm-up: then the
        // honest answer is "no steady state", flagged, and the warm-up ran to its maximum.
        let classification = try XCTUnwrap(warmUp.analysis.classification)
        if let index = warmUp.analysis.steadyStateIndex {
            XCTAssertEqual(warmUp.noSteadyState, false)
            XCTAssertNotEqual(classification, .noSteadyState)
            XCTAssertLessThan(index, warmUp.durationsNs.count)
        } else {
            XCTAssertEqual(warmUp.noSteadyState, true)
            XCTAssertEqual(classification, .noSteadyState)
            XCTAssertEqual(warmUp.durationsNs.count, MeasurementPlan().maxWarmupIterations)
        }
        XCTAssertNotNil(measurement.stoppingRule)
        XCTAssertTrue(measurement.stoppedBecause.hasPrefix(measurement.stoppingRule?.rawValue ?? "?"), measurement.stoppedBecause)
        // Outliers labelled by position, never removed; the filtered summary is the raw one minus the MAD outliers.
        let outliers = try XCTUnwrap(measurement.outliers)
        XCTAssertEqual(outliers.tukey.count, measurement.summary.outliers)
        XCTAssertEqual(measurement.filteredSummary?.count, measurement.summary.count - outliers.mad.count)
        XCTAssertEqual(measurement.summary.tailBounds?.count, 3)
        XCTAssertNotNil(measurement.summary.meanInterval)
        // The canary ran beside every measured iteration.
        XCTAssertEqual(measurement.canary?.canaryNs.count, measurement.durationsNs.count)
        // The initial condition: TVM held the inputs as its own tensors before timing.
        XCTAssertEqual(measurement.inputPlacement, .init(requested: .device, effective: .device,
                                                         detail: "TVM tensors on tvm.cpu(0), converted once"))
        // Every step is in the log, in order, with its time.
        let stages = result.log.map(\.stage)
        for step in ["inputs", "setup", "reset", "conditions", "build", "deploy", "load", "warm-up", "measure", "filter", "outputs", "compare"] {
            XCTAssertTrue(stages.contains(step), "the log lacks the step '\(step)': \(stages)")
        }
        XCTAssertEqual(result.log.map(\.at), result.log.map(\.at).sorted())

        // What was printed is what was stored, raw timings included.
        let reloaded = try XCTUnwrap(try store().result(id: result.id))
        XCTAssertEqual(reloaded, result)
        XCTAssertEqual(try store().timings(id: result.id, phase: "measure"), measurement.durationsNs)

        // The human summary shows the statistics a user reads.
        let shown = try MLBenchBinary.run(["results", "show", String(result.id.prefix(8))], home: home)
        XCTAssertEqual(shown.status, 0)
        for word in ["median", "p90", "p95", "p99", "std", "CI", "raw", "filtered", "shape", "ratio 1.0000",
                     "inputs placed in device memory before timing"] {
            XCTAssertTrue(shown.stdout.contains(word), "summary lacks '\(word)':\n\(shown.stdout)")
        }
    }

    /// Labels given: accuracy figures for the deployed model and the reference, under
    /// the top-1 agreement metric; labels that do not fit are the user's mistake.
    func testAccuracyAgainstLabelsUnderTopOneAgreement() throws {
        let labels = scratch.appendingPathComponent("labels.npy")
        try NPY.write(Tensor(shape: [16], dtype: "<i8", values: (0..<16).map { Double($0 % 10) }), to: labels)
        let short = scratch.appendingPathComponent("short-labels.npy")
        try NPY.write(Tensor(shape: [8], dtype: "<i8", values: (0..<8).map { Double($0 % 10) }), to: short)
        for (file, fits) in [(labels, true), (short, false)] {
            let path = try experiment("labelled-\(fits).yaml", """
                name: labelled
                model: SAMPLE/model.onnx
                inputs: {image: SAMPLE/inputs/image.npy}
                reference: {toolchain: onnxruntime}
                toolchain: {name: onnxruntime, target: cpu}
                board: host
                measurement: {min_iterations: 50, min_time_s: 0, max_time_s: 2, max_warmup_iterations: 100}
                semantic_preservation:
                  metric: top_k
                  k: 1
                  labels: {file: \(file.path), output: logits, task: classification}
                """)
            let outcome = try MLBenchBinary.run(["run", "--json", "-q", path], home: home)
            let result = try stored(outcome)
            XCTAssertNotNil(result.checksums["labels"])
            if fits {
                XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
                let report = try XCTUnwrap(result.semanticPreservation)
                XCTAssertEqual(report.ratio, 1.0, "ONNX Runtime against itself agrees on every top-1 class")
                let accuracy = try XCTUnwrap(report.accuracy)
                XCTAssertEqual(accuracy.samples, 16)
                let deployed = try XCTUnwrap(accuracy.deployed.classification)
                XCTAssertEqual(deployed, accuracy.reference.classification)
                XCTAssertEqual(deployed.accuracy, Double(deployed.correct) / 16)
                let shown = try MLBenchBinary.run(["results", "show", String(result.id.prefix(8))], home: home)
                XCTAssertTrue(shown.stdout.contains("top-1 indices equal"), shown.stdout)
                XCTAssertTrue(shown.stdout.contains("precision"), shown.stdout)
            } else {
                XCTAssertEqual(result.status, .failed)
                XCTAssertEqual(result.failure?.stage, "compare")
                XCTAssertEqual(result.failure?.kind, .userInput)
                XCTAssertTrue(result.failure?.reason.contains("short-labels.npy") == true, result.failure?.reason ?? "")
            }
        }
    }

    /// A vendor benchmark is asked for; ONNX Runtime's runner has none, which is logged
    /// with the runner's reason while the experiment still succeeds.
    func testNativeBenchmarkOfARunnerWithoutOneIsLoggedNotFatal() throws {
        let path = try experiment("native.yaml", """
            name: native
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: host
            measurement: {min_iterations: 20, min_time_s: 0, max_time_s: 2, native_benchmark_s: 1}
            semantic_preservation: {metric: cosine, threshold: 1.0e-6}
            """)
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home))
        XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
        XCTAssertNil(result.measurement?.nativeBenchmark)
        let entry = try XCTUnwrap(result.log.first { $0.stage == "native benchmark" }, "\(result.log)")
        XCTAssertTrue(entry.message.contains("none recorded"), entry.message)
        XCTAssertTrue(entry.message.contains("the onnxruntime runner has no native benchmark tool"), entry.message)
    }

    func testPerturbedModelIsNotPreserved() throws {
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", sample.appendingPathComponent("experiment-perturbed.yaml").path], home: home)
        let result = try stored(outcome)
        XCTAssertEqual(result.status, .succeeded)
        let ratio = try XCTUnwrap(result.semanticPreservation?.ratio)
        XCTAssertLessThan(ratio, 1.0)
        XCTAssertNotNil(result.checksums["reference_model"], "the reference model is hashed too")
    }

    func testMissingInputFileIsAStoredFailureAndEarlierResultsStay() throws {
        let good = try experiment("good.yaml", """
            name: quick
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: host
            measurement: {min_iterations: 20, min_time_s: 0, max_time_s: 2}
            semantic_preservation: {metric: cosine, threshold: 1.0e-6}
            """)
        let first = try stored(try MLBenchBinary.run(["run", "--json", "-q", good], home: home))
        XCTAssertEqual(first.status, .succeeded, first.failure?.reason ?? "")

        let missing = try experiment("missing.yaml", """
            name: missing-input
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/no-such-file.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: tvm, target: llvm}
            board: host
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            """)
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", missing], home: home)
        XCTAssertEqual(outcome.status, 1, "a stored failure exits with 1")
        let result = try stored(outcome)
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.stage, "inputs")
        XCTAssertTrue(result.failure?.reason.contains("no-such-file.npy") == true, result.failure?.reason ?? "")

        let all = try store().list(limit: 10)
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(try store().result(id: first.id), first, "the earlier result is untouched")
    }

    func testModelTheToolchainRejectsIsAStoredFailure() throws {
        let garbage = scratch.appendingPathComponent("garbage.onnx")
        try Data("this is not an ONNX model".utf8).write(to: garbage)
        let path = try experiment("garbage.yaml", """
            name: garbage-model
            model: garbage.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: tvm, target: llvm}
            board: host
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            """)
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home))
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.stage, "check")
        XCTAssertTrue(result.failure?.reason.contains("cannot build this model") == true, result.failure?.reason ?? "")
    }

    /// A runner that crashes or hangs fails the experiment with a reason; the lab goes on.
    func testCrashingAndHangingRunnersAreStoredFailures() throws {
        let plugins = scratch.appendingPathComponent("plugins")
        let folder = plugins.appendingPathComponent("faulty")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let fixture = MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/faulty-toolchain")
        for name in ["plugin.yaml", "runner.sh"] {
            try FileManager.default.copyItem(at: fixture.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        let compile = try ChildProcess.run(["cc", "-shared", "-fPIC", "-I", MLBenchBinary.repository.appendingPathComponent("Sources/CMLBenchPlugin/include").path,
                                            "-I", MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/include").path,
                                            fixture.appendingPathComponent("faulty.c").path, "-o", folder.appendingPathComponent("libmlbench-faulty.so").path],
                                           timeout: 120)
        XCTAssertEqual(compile.status, 0, compile.stderr)
        let inventory = scratch.appendingPathComponent("lab.yaml")
        try """
            plugin_paths: [plugins]
            boards:
              host: {plugin: host}
            toolchains:
              onnxruntime: {plugin: onnxruntime}
              crashing: {plugin: faulty, settings: {fault: crash}}
              hanging: {plugin: faulty, settings: {fault: hang}}
            """.write(to: inventory, atomically: true, encoding: .utf8)
        for (toolchain, expected) in [("crashing", "signal 11"), ("hanging", "no answer within 2000 ms")] {
            let path = try experiment("\(toolchain).yaml", """
                name: \(toolchain)-runner
                model: SAMPLE/model.onnx
                inputs: {image: SAMPLE/inputs/image.npy}
                reference: {toolchain: onnxruntime}
                toolchain: {name: \(toolchain), target: cpu}
                board: host
                measurement: {request_timeout_s: 2}
                semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
                """)
            let began = Date()
            let outcome = try MLBenchBinary.run(["run", "--json", "-q", "--inventory", inventory.path, path], home: home)
            XCTAssertLessThan(Date().timeIntervalSince(began), 60, "a hung runner is killed, not waited on")
            XCTAssertEqual(outcome.status, 1)
            let result = try stored(outcome)
            XCTAssertEqual(result.status, .failed)
            XCTAssertEqual(result.failure?.stage, "warm-up")
            XCTAssertEqual(result.failure?.kind, .toolchain, "a runner fault is not retried")
            XCTAssertEqual(result.attempts, 1)
            XCTAssertTrue(result.failure?.reason.contains(expected) == true, "\(toolchain): \(result.failure?.reason ?? "")")
        }
        XCTAssertEqual(try store().list(limit: 10).filter { $0.status == .failed }.count, 2)

        // A transient fault (the runner's transport not ready) is retried after a backoff,
        // and the second attempt goes on; this runner then fails to give outputs.
        let path = try experiment("flaky.yaml", """
            name: flaky-runner
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: flaky, target: cpu}
            board: host
            measurement: {request_timeout_s: 5, max_retries: 2, retry_backoff_s: 0.2, min_time_s: 0, max_warmup_iterations: 100}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            """)
        try (String(contentsOf: inventory, encoding: .utf8) + "\n  flaky: {plugin: faulty, settings: {fault: flaky}}\n")
            .write(to: inventory, atomically: true, encoding: .utf8)
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", "--inventory", inventory.path, path], home: home))
        XCTAssertEqual(result.attempts, 2)
        XCTAssertTrue(result.log.contains { $0.stage == "retry" && $0.message.contains("attempt 1 of 3") }, "\(result.log)")
        XCTAssertTrue(result.log.contains { $0.message.contains("failed (transient)") })
        XCTAssertEqual(result.failure?.stage, "outputs")
        XCTAssertEqual(result.failure?.kind, .toolchain)
        XCTAssertNotNil(result.warmUp, "the second attempt warmed up and measured")
    }

    func testMalformedExperimentNamesFileLineAndField() throws {
        let path = try experiment("bad.yaml", """
            name: bad
            model: SAMPLE/model.onnx
            inputs: {image: SAMPLE/inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: tvm, target: llvm}
            board: host
            measurement:
              min_iterations: many
            semantic_preservation: {metric: max_abs, threshold: 1.0e-4}
            """)
        let outcome = try MLBenchBinary.run(["run", path], home: home)
        XCTAssertEqual(outcome.status, 2)
        XCTAssertTrue(outcome.stderr.contains("bad.yaml:8:"), outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("measurement.min_iterations"), outcome.stderr)
        XCTAssertTrue(outcome.stderr.contains("expected an integer"), outcome.stderr)
        XCTAssertEqual(try store().list(limit: 1).count, 0, "a malformed file stores nothing")
    }

    /// The tune step: what it changed is recorded with the state before, the runner
    /// process is pinned and prioritised (read back), and everything is put back at the end.
    func testTuneStepRecordsAppliesAndRestoresConditions() throws {
        let swappiness = try String(contentsOfFile: "/proc/sys/vm/swappiness", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let path = try hostExperiment("tuned", extra: #"conditions: {tune: "true"}"#)
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home))
        XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
        let conditions = try XCTUnwrap(result.board?.conditions)
        let lastCPU = String(ProcessInfo.processInfo.processorCount - 1)
        XCTAssertEqual(conditions.applied["cpus"], lastCPU)
        XCTAssertEqual(result.board?.runnerConditions?["runner_cpus"], lastCPU, "the runner really runs on that CPU only")
        XCTAssertNotNil(result.board?.runnerConditions?["runner_priority"])
        // Every tune condition is either applied or reported unavailable with a reason, never silently skipped.
        for name in ["governor", "swappiness", "drop_caches", "priority", "cpus"] {
            XCTAssertTrue(conditions.applied[name] != nil || conditions.unavailable?[name] != nil, "\(name): \(conditions)")
        }
        if conditions.applied["swappiness"] != nil {
            XCTAssertEqual(conditions.before?["swappiness"], swappiness)
            XCTAssertEqual(result.board?.restored?.applied["swappiness"], swappiness)
        }
        let now = try String(contentsOfFile: "/proc/sys/vm/swappiness", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(now, swappiness, "the host is left as it was found")
        XCTAssertTrue(result.log.contains { $0.stage == "conditions" && $0.message.hasPrefix("restored") })
        // Cool-down: waited for on a board with temperature sensors, said to be impossible without.
        let coolDown = try XCTUnwrap(result.coolDown)
        if CoolDown.hottest(conditions.observed) == nil {
            XCTAssertNil(coolDown.baselineC)
            XCTAssertTrue(coolDown.note.contains("no temperature"), coolDown.note)
        } else {
            XCTAssertFalse(coolDown.trace.isEmpty)
        }
        XCTAssertTrue(result.log.contains { $0.stage == "cool-down" })
    }

    func testUnknownOrBadConditionIsAUserError() throws {
        let path = try hostExperiment("bad-condition", extra: "conditions: {priority: urgent}")
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home))
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.stage, "conditions")
        XCTAssertEqual(result.failure?.kind, .userInput)
        XCTAssertTrue(result.failure?.reason.contains("'priority': 'urgent'") == true, result.failure?.reason ?? "")
    }

    /// The offline scenario gives throughput; the server scenario serves Poisson
    /// arrivals and judges a latency percentile against its target.
    func testOfflineAndServerScenarios() throws {
        func scenario(_ name: String, _ measurement: String) throws -> MLBenchBinary.Outcome {
            let path = try hostExperiment(name, measurement: "min_iterations: 50, min_time_s: 0.2, max_time_s: 2, \(measurement)")
            return try MLBenchBinary.run(["run", "--json", "-q", path], home: home)
        }
        let offline = try stored(try scenario("offline", "scenario: offline, scenario_queries: 300"))
        XCTAssertEqual(offline.status, .succeeded, offline.failure?.reason ?? "")
        let figures = try XCTUnwrap(offline.measurement?.scenario?.offline)
        XCTAssertEqual(figures.queries, 300)
        XCTAssertEqual(figures.durationsNs.count, 300)
        XCTAssertEqual(figures.throughputPerS, 300 / (Double(figures.totalNs) / 1e9), accuracy: 1e-6)
        XCTAssertGreaterThanOrEqual(figures.totalNs, figures.durationsNs.reduce(0, +))

        // 200 queries/s of a model that takes microseconds: a 50 ms p99 target is met with room to spare.
        // Inputs handed over from host memory on every query, as an application would.
        let server = try stored(try scenario("server", "scenario: server, server_rate_per_s: 200, server_target_latency_ms: 50, scenario_queries: 700, input_placement: host"))
        XCTAssertEqual(server.measurement?.inputPlacement?.effective, .host)
        XCTAssertEqual(server.measurement?.inputPlacement?.requested, .host)
        XCTAssertEqual(server.status, .succeeded, server.failure?.reason ?? "")
        let served = try XCTUnwrap(server.measurement?.scenario?.server)
        XCTAssertEqual(served.latenciesNs?.count, 700)
        XCTAssertEqual(served.verdict?.outcome, .meets, "\(served.verdict.map { "\($0)" } ?? "")")
        XCTAssertEqual(served.targetNs, 50_000_000)
        XCTAssertTrue(server.log.contains { $0.stage == "scenario" && $0.message.contains("200.0 queries/s") })

        let missing = try scenario("server-no-target", "scenario: server")
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("server_target_latency_ms"), missing.stderr)
        let misplaced = try scenario("misplaced", "input_placement: gpu")
        XCTAssertEqual(misplaced.status, 2)
        XCTAssertTrue(misplaced.stderr.contains("input_placement"), misplaced.stderr)
    }

    /// Several invocations: a fresh runner process each, warmed up and measured in
    /// turn; the result has each one's median and an interval across them.
    func testInvocationsAreSeparateProcessesWithAnIntervalAcrossThem() throws {
        let path = try hostExperiment("invocations", measurement: "min_iterations: 50, min_time_s: 0.3, max_time_s: 3, invocations: 3")
        let result = try stored(try MLBenchBinary.run(["run", "--json", "-q", path], home: home))
        XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
        let measurement = try XCTUnwrap(result.measurement)
        let invocations = try XCTUnwrap(measurement.invocations)
        XCTAssertEqual(invocations.count, 3)
        XCTAssertEqual(invocations.map(\.iterations).reduce(0, +), measurement.durationsNs.count, "every timing belongs to one invocation")
        XCTAssertTrue(invocations.allSatisfy { $0.warmUpIterations > 0 && $0.iterations >= 50 })
        XCTAssertEqual(result.log.filter { $0.stage == "load" }.count, 3, "each invocation is a new runner that loads the model")
        let between = try XCTUnwrap(measurement.invocationSummary)
        let medians = invocations.map(\.medianNs).sorted()
        XCTAssertEqual(between.medianNs, medians[1], "the median of the three medians")
        XCTAssertLessThanOrEqual(between.interval.lower, between.medianNs)
        XCTAssertGreaterThanOrEqual(between.interval.upper, between.medianNs)
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0, "the outputs still come from the last runner")
    }

    /// Save or discard at the end: a discarded run leaves neither its result nor
    /// files only it needed; an unanswered question keeps the result.
    func testResultCanBeDiscardedAtTheEnd() throws {
        let path = try hostExperiment("trial", measurement: "min_iterations: 50, min_time_s: 0.1, max_time_s: 1")
        let kept = try stored(try MLBenchBinary.run(["run", "--json", "-q", "--ask", path], home: home))
        XCTAssertEqual(try store().list(limit: 10).map(\.id), [kept.id], "no answer keeps the result")
        let blobs = home.appendingPathComponent("blobs")
        func blobCount() -> Int { (FileManager.default.enumerator(atPath: blobs.path)?.allObjects.count) ?? 0 }
        let before = blobCount()

        let trial = try MLBenchBinary.run(["run", "--json", "-q", "--discard", path], home: home)
        XCTAssertEqual(trial.status, 0, trial.stderr)
        let discarded = try stored(trial)
        XCTAssertTrue(trial.stderr.contains("discarded \(discarded.id)"), trial.stderr)
        XCTAssertEqual(try store().list(limit: 10).map(\.id), [kept.id], "only the kept result is stored")
        XCTAssertEqual(blobCount(), before, "the discarded run's own files are gone; the files both runs share stay")
        XCTAssertEqual(try MLBenchBinary.run(["verify", kept.id], home: home).status, 0, "the kept result still verifies")
    }
}
