import Foundation
import MLBench

// The measurement-methodology benchmarks: programs that print figures, not tests.
//   mlbench-bench warm-up [EXPERIMENT]   synthetic traces, then real first runs of EXPERIMENT
//   mlbench-bench noise [EXPERIMENT] [--quiet-trials N] [--noisy-trials N]
//                                        quiet vs injected interference (default 3 and 5 trials)
//   mlbench-bench scheduler [POSTGRES_URL]  queue overhead with SQLite (and PostgreSQL when a URL is given)
// scripts/bench runs both and the runner-overhead benchmark (Benchmarks/overhead.py).

var arguments = Array(CommandLine.arguments.dropFirst())
/// The value of `--name N` (removed from the arguments), or `fallback`.
@MainActor func count(_ name: String, default fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name) else { return fallback }
    guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
        FileHandle.standardError.write(Data("mlbench-bench: \(name) needs a positive whole number\n".utf8))
        exit(2)
    }
    arguments.removeSubrange(index...(index + 1))
    return value
}
let quietTrials = count("--quiet-trials", default: 3)
let noisyTrials = count("--noisy-trials", default: 5)
let which = arguments.first ?? "all"
let experiment = arguments.count > 1 ? arguments[1] : "Examples/sample/experiment.yaml"

do {
    switch which {
    case "warm-up":
        WarmUpBenchmark.run(offline: true)
        WarmUpBenchmark.run(offline: false)
        try realWarmUps(experiment)
    case "noise":
        try NoiseBenchmark.run(experimentPath: experiment, quietTrials: quietTrials, noisyTrials: noisyTrials, seconds: 4)
    case "scheduler":
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-scheduler-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try SchedulerBenchmark.run(store: LabStore(sqlitePath: folder.appendingPathComponent("lab.sqlite").path), backend: "SQLite")
        if arguments.count > 1 {
            try SchedulerBenchmark.run(store: LabStore.open(arguments[1]), backend: "PostgreSQL")
        }
    case "all":
        WarmUpBenchmark.run(offline: true)
        WarmUpBenchmark.run(offline: false)
        try realWarmUps(experiment)
        try NoiseBenchmark.run(experimentPath: experiment, quietTrials: quietTrials, noisyTrials: noisyTrials, seconds: 4)
    default:
        FileHandle.standardError.write(Data("usage: mlbench-bench [warm-up|noise|all] [EXPERIMENT.yaml] [--quiet-trials N] [--noisy-trials N] | scheduler [POSTGRES_URL]\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("mlbench-bench: \(error)\n".utf8))
    exit(1)
}

/// First runs of the experiment's toolchain and of the other installed toolchains on the
/// same model, each from a fresh runner.
func realWarmUps(_ path: String) throws {
    let (runner, folder) = try scratchRunner("warm-up")
    defer { try? FileManager.default.removeItem(at: folder) }
    var results = [(String, ExperimentResult)]()
    let base = try ExperimentFile.load(path)
    for (name, target) in [(base.experiment.toolchain.name, base.experiment.toolchain.target), ("onnxruntime", "cpu"), ("tflite", "cpu")] {
        var file = base
        if name != base.experiment.toolchain.name {
            (file.experiment.toolchain.name, file.experiment.toolchain.target) = (name, target)
            (file.experiment.toolchain.version, file.experiment.toolchain.options) = (nil, nil)
        }
        var plan = file.experiment.measurement ?? MeasurementPlan()
        (plan.minIterations, plan.maxTimeS) = (1000, 4)
        file.experiment.measurement = plan
        results.append((name, try runner.run(file)))
    }
    WarmUpBenchmark.real(results)
}
