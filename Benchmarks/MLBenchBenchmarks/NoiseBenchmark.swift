import Foundation
import MLBench

/// The sample model on the host, its runner pinned to the last core, measured quietly and
/// then under injected interference (a busy process on that same core, switched on and
/// off in bursts): how far our estimate and the naive one land from the quiet median, and
/// how often our interval covers it.
enum NoiseBenchmark {
    struct Trial {
        var result: ExperimentResult
        /// The median of the invocations' medians (with their interval across invocations).
        var ours: Double
        var interval: ConfidenceInterval
        var rawMedian: Double
        /// The seed method: 250 iterations, the first 50 discarded, the mean of the rest.
        var naive: Double
        var disturbed: Int
    }

    static func run(experimentPath: String, quietTrials: Int, noisyTrials: Int, seconds: Double) throws {
        print("\n== Noise: \(experimentPath) on the host, \(quietTrials) quiet and \(noisyTrials) disturbed trials of ≤ \(seconds) s")
        let (runner, folder) = try scratchRunner("noise")
        defer { try? FileManager.default.removeItem(at: folder) }
        var file = try ExperimentFile.load(experimentPath)
        var plan = file.experiment.measurement ?? MeasurementPlan()
        plan.minIterations = 250
        plan.minTimeS = min(plan.minTimeS, seconds / 2)
        plan.maxTimeS = seconds
        // Several runner processes per trial: the interval then reflects what changes
        // between processes, which one long run cannot see (Kalibera & Jones).
        plan.invocations = 5
        file.experiment.measurement = plan
        // The runner on one core, quiet or not, and the hog on the same core: the
        // interference the methodology has to see through (a co-scheduled process).
        let core = ProcessInfo.processInfo.activeProcessorCount - 1
        file.experiment.conditions = (file.experiment.conditions ?? [:]).merging(["cpus": String(core)]) { $1 }

        var quiet = [Trial]()
        for _ in 0..<quietTrials { quiet.append(try trial(runner, file)) }
        let quietMedian = Statistics.quantile(sorted: quiet.map(\.rawMedian).sorted(), 0.5)
        print(String(format: "   quiet median (median of %d trials' medians): %@", quietTrials, ResultPresenter.duration(quietMedian)))

        let interference = Interference(processes: 1, cpu: core, onS: 0.15, offS: 0.35)
        try interference.start()
        var noisy = [Trial]()
        defer { interference.stop() }
        for _ in 0..<noisyTrials { noisy.append(try trial(runner, file)) }
        interference.stop()

        var rows = [["trial", "ours", "error", "raw median", "error", "naive (mean 50..<250)", "error", "CI covers quiet", "disturbed"]]
        func error(_ value: Double) -> String { String(format: "%+.1f%%", 100 * (value - quietMedian) / quietMedian) }
        for (label, trials) in [("quiet", quiet), ("noisy", noisy)] {
            for (i, t) in trials.enumerated() {
                rows.append(["\(label) \(i + 1)", ResultPresenter.duration(t.ours), error(t.ours), ResultPresenter.duration(t.rawMedian),
                             error(t.rawMedian), ResultPresenter.duration(t.naive), error(t.naive),
                             t.interval.contains(quietMedian) ? "yes" : "no", "\(t.disturbed)"])
            }
        }
        print(ResultPresenter.table(rows))
        func meanAbsError(_ values: [Double]) -> Double {
            values.map { abs($0 - quietMedian) / quietMedian }.reduce(0, +) / Double(max(1, values.count)) * 100
        }
        let covered = noisy.filter { $0.interval.contains(quietMedian) }.count
        let coverage = Double(covered) / Double(max(1, noisy.count)) * 100
        let (low, high) = wilsonInterval(successes: covered, trials: noisy.count)
        print(String(format: "   under interference: our mean |error| %.1f%% (raw median %.1f%%), naive %.1f%%; our interval covers the quiet median in %d of %d trials, %.0f%% (95%% Wilson interval %.0f–%.0f%%)",
                     meanAbsError(noisy.map(\.ours)), meanAbsError(noisy.map(\.rawMedian)), meanAbsError(noisy.map(\.naive)),
                     covered, noisy.count, coverage, low * 100, high * 100))
        print("   Goal: our error ≤ 2 % where the naive error is ≥ 10 %; coverage ≥ 90 %.")
    }

    /// The 95 % Wilson score interval of a proportion: how far a coverage seen in a
    /// few trials can be from the true one.
    static func wilsonInterval(successes: Int, trials: Int) -> (Double, Double) {
        guard trials > 0 else { return (0, 1) }
        let z = 1.959964, n = Double(trials), p = Double(successes) / n
        let centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        let half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()
        return (max(0, centre - half), min(1, centre + half))
    }

    static func trial(_ runner: ExperimentRunner, _ file: ExperimentFile) throws -> Trial {
        let result = try runner.run(file)
        guard let measurement = result.measurement, let warmUp = result.warmUp else {
            throw BenchmarkError("the experiment failed at \(result.failure?.stage ?? "?"): \(result.failure?.reason ?? "?")")
        }
        let first = (warmUp.durationsNs + measurement.durationsNs).prefix(250).dropFirst(50).map(Double.init)
        let corrected = measurement.canary.flatMap { $0.disturbedIterations > 0 ? $0.correctedSummary : nil }
        let summary = corrected ?? measurement.summary
        // Across invocations when there are several; else within the one run.
        let ours = measurement.invocationSummary.map { ($0.medianNs, $0.interval) } ?? (summary.median, summary.medianInterval)
        return Trial(result: result, ours: ours.0, interval: ours.1, rawMedian: measurement.summary.median,
                     naive: first.reduce(0, +) / Double(max(1, first.count)), disturbed: measurement.canary?.disturbedIterations ?? 0)
    }
}

/// Busy processes, pinned to `cpu` when given, stopped and continued in bursts (on
/// `onS`, off `offS`) from a thread of this process; all killed by `stop`.
final class Interference: @unchecked Sendable {
    let processes: Int
    let cpu: Int?
    let onS: Double
    let offS: Double
    private var pids: [pid_t] = []
    private let lock = NSLock()
    private var running = false

    init(processes: Int, cpu: Int? = nil, onS: Double, offS: Double) {
        self.processes = processes
        self.cpu = cpu
        self.onS = onS
        self.offS = offS
    }

    func start() throws {
        for _ in 0..<processes {
            let process = Process()
            // taskset (util-linux) pins the busy loop before it starts.
            process.executableURL = URL(fileURLWithPath: cpu == nil ? "/bin/sh" : "/usr/bin/taskset")
            process.arguments = (cpu.map { ["-c", String($0), "/bin/sh"] } ?? []) + ["-c", "while :; do :; done"]
            try process.run()
            pids.append(process.processIdentifier)
        }
        running = true
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                Thread.sleep(forTimeInterval: onS)
                for pid in pids { kill(pid, SIGSTOP) }
                Thread.sleep(forTimeInterval: offS)
                for pid in pids { kill(pid, SIGCONT) }
            }
        }
        thread.start()
    }

    func stop() {
        lock.withLock { running = false }
        for pid in pids {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids.removeAll()
    }
}

/// An experiment runner on the lab's home (toolchain environments, artifact cache) whose
/// results go to a store of their own in a temporary folder, not the user's; the caller
/// removes the folder.
func scratchRunner(_ name: String) throws -> (ExperimentRunner, URL) {
    let lab = Lab(home: LabHome.fromEnvironment(), inventory: .embeddedDefault)
    try lab.home.prepare()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let store = try LabStore(sqlitePath: folder.appendingPathComponent("\(name).sqlite").path)
    return (ExperimentRunner(lab: lab, store: store), folder)
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
