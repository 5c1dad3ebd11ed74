import Foundation
import MLBenchCore

/// Everything one experiment produced: the result bundle that is stored,
/// whether it succeeded or failed. Raw timings are always kept.
public struct ExperimentResult: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case succeeded
        case failed
    }

    public var id: String
    public var name: String
    public var status: Status
    /// Where it failed ("inputs", "build", "run", ...) and why.
    public var failure: Failure?
    public var user: String
    public var startedAt: Date
    public var finishedAt: Date
    /// The experiment file as written, for replay.
    public var experimentText: String
    public var experimentPath: String
    /// SHA-256 of the model, every input and every reference/deployed output file.
    public var checksums: [String: String]
    public var board: BoardRecord?
    public var toolchain: ToolchainRecord?
    public var reference: ToolchainRecord?
    public var warmUp: WarmUpRecord?
    public var measurement: MeasurementRecord?
    public var semanticPreservation: SemanticReport?
    /// What each step did, in order.
    public var log: [LogEntry]
    /// How many times the experiment was started: more than one after transient
    /// failures (nil in results stored before retries existed).
    public var attempts: Int?
    /// The wait for the board to cool back to its baseline after the experiment.
    public var coolDown: CoolDownRecord?
    /// Energy per inference of each power channel of the board's probes.
    public var energy: [EnergyRecord]?
    /// The inventory probes of the board, recorded through warm-up and measurement: raw
    /// samples, and for a probe that failed or stopped early its error and gap
    /// (nil in results stored before probes were recorded).
    public var probes: [ProbeRecorder.Record]? = nil
    /// The runner's clock against the lab host's, by which host-clock probe series
    /// were moved onto the iterations' timeline; nil when the runner does not answer
    /// `clock` (its clock is then taken to be the host's, and the log says so).
    public var clock: ClockAlignment? = nil
    /// Set when the experiment targeted `predicted:<board>`: the values are the
    /// predictors' and no board was touched (nil for a measured result).
    public var prediction: PredictionRecord? = nil

    /// What the predictors said in place of a measurement.
    public struct PredictionRecord: Codable, Sendable, Equatable {
        /// The board predicted for (without `predicted:`).
        public var board: String
        public var toolchain: String
        /// Target (latency_ms, peak_memory_mb) → the prediction, with the
        /// predictor's regressor, version and validation errors.
        public var targets: [String: Guidance.Prediction]
        /// The predictor folders that answered.
        public var predictors: [String]
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var stage: String
        public var reason: String
        /// What kind of fault it was; decides whether a retry can help.
        public var kind: FailureKind?
    }

    public struct BoardRecord: Codable, Sendable, Equatable {
        public var name: String
        public var plugin: String
        public var pluginVersion: String
        public var description: BoardDescription?
        /// Conditions applied and observed before the build.
        public var conditions: ConditionsReport?
        /// Conditions observed again after measuring (clocks, temperatures, load), so a
        /// change during the run is visible.
        public var conditionsAfter: ConditionsReport?
        /// What the board did to the runner process, read back (CPUs it is pinned to, its priority).
        public var runnerConditions: [String: String]?
        /// The conditions put back when the experiment ended (the tune step's restore).
        public var restored: ConditionsReport?
    }

    public struct ToolchainRecord: Codable, Sendable, Equatable {
        public var name: String
        public var plugin: String
        public var pluginVersion: String
        /// The exact version of the runtime behind it.
        public var version: String
        public var target: String
        public var options: JSONValue
        public var artifactSHA256: String?
        public var buildLog: String?
        /// The runner's greeting (runtime and version it reported).
        public var runner: String?
        /// The options in effect, the toolchain's defaults included.
        public var effectiveOptions: JSONValue?
        /// Every package of the toolchain's environment (`pip freeze`), and its lock hash.
        public var packages: [String]?
        public var environmentLock: String?
        /// What the compatibility checks found (warnings and notes; errors end the experiment).
        public var compatibility: [CompatibilityFinding]?
        /// How the artifact was obtained: `built`, `cache hit`, or `rebuilt` after a corrupted cache entry.
        public var artifactCache: String?
    }

    public struct WarmUpRecord: Codable, Sendable, Equatable {
        /// The warm-up trace: every warm-up iteration's duration, in order.
        public var durationsNs: [Int64]
        public var analysis: WarmUpAnalysis
        /// True when warm-up ended at its maximum without a steady state: the
        /// measurement that follows may still be drifting.
        public var noSteadyState: Bool?
    }

    public struct MeasurementRecord: Codable, Sendable, Equatable {
        public var startsNs: [Int64]
        public var durationsNs: [Int64]
        /// The summary of every raw timing.
        public var summary: Summary
        public var peakMemoryBytes: Int64
        /// Why measuring stopped ("confidence interval reached", "maximum time", ...).
        public var stoppedBecause: String
        /// The rule that ended the run, for machines (nil in older results).
        public var stoppingRule: StoppingRule?
        /// Outliers of the raw timings by position, under Tukey's and the MAD rule.
        public var outliers: OutlierLabels?
        /// The summary without the MAD outliers, shown beside the raw one; which rule
        /// was applied is in `filter`.
        public var filteredSummary: Summary?
        public var filter: String?
        /// The interleaved reference workload and the estimate it corrects; nil when the
        /// runner has no canary or the plan turned it off.
        public var canary: CanaryReport?
        /// The runtime's own split of every measured iteration (TensorRT: h2d,
        /// compute, d2h), raw and summarised; nil when the runtime does not split.
        public var phases: [String: PhaseRecord]?
        /// The vendor tool's own figures (trtexec's summary, xdputil's frames per
        /// second) when the experiment asked for `native_benchmark_s`.
        public var nativeBenchmark: JSONValue?
        /// The offline or server scenario's figures, when the experiment asked for one.
        public var scenario: ScenarioRecord?
        /// With `invocations` above 1: each runner process's share of the measurement,
        /// in order (the timings above are all of them, in the same order).
        public var invocations: [InvocationRecord]?
        /// The median of the invocations' medians and its interval across invocations.
        public var invocationSummary: InvocationSummary?
        /// Where the inputs lived while the iterations were timed (nil in older results).
        public var inputPlacement: InputPlacementRecord?
    }

    /// One runner process of a measurement made of several.
    public struct InvocationRecord: Codable, Sendable, Equatable {
        public var warmUpIterations: Int
        public var steadyStateIndex: Int?
        public var iterations: Int
        public var medianNs: Double
        public var stoppingRule: StoppingRule
    }

    public struct InvocationSummary: Codable, Sendable, Equatable {
        public var medianNs: Double
        /// Resampling invocations and the iterations within them (Kalibera & Jones).
        public var interval: ConfidenceInterval
    }

    /// What the offline or server scenario measured.
    public struct ScenarioRecord: Codable, Sendable, Equatable {
        public var scenario: Scenario
        public var offline: Offline?
        public var server: Server?

        public struct Offline: Codable, Sendable, Equatable {
            public var queries: Int
            public var totalNs: Int64
            public var throughputPerS: Double
            /// Each query's duration, inputs fed each time.
            public var durationsNs: [Int64]
        }

        public struct Server: Codable, Sendable, Equatable {
            public var percentile: Double
            public var targetNs: Int64
            public var queriesPerSchedule: Int
            /// The rate the experiment asked for, and its verdict and latencies.
            public var ratePerS: Double?
            public var verdict: ServerScenario.Verdict?
            /// Each query's latency, from its arrival to its end, by the one-worker queue
            /// over the measured inference times.
            public var latenciesNs: [Int64]?
            /// How late the runner started each query after its arrival, as it happened
            /// (queueing and the load generator's own wake-up delay together).
            public var waitsNs: [Int64]?
            /// Without a rate: the search for the highest rate that meets the target.
            public var search: ServerScenario.RateSearch?
        }
    }

    public struct PhaseRecord: Codable, Sendable, Equatable {
        public var durationsNs: [Int64]
        public var summary: Summary
    }

    public struct LogEntry: Codable, Sendable, Equatable {
        public var at: Date
        public var stage: String
        public var message: String
    }
}

/// The kinds of failure, which decide what happens next: a transient fault is retried
/// (a bounded number of times, with backoff); the others end the experiment.
public enum FailureKind: String, Codable, Sendable, Equatable {
    /// A fault that may not happen again: a board or transport not ready, a reset or
    /// deployment that timed out.
    case transient
    /// The board misbehaved: reset, conditions, deployment, a device error.
    case board
    /// The toolchain or its runner failed: build, load, a crashing or hung runner.
    case toolchain
    /// The experiment asks for something impossible: missing files, unknown names,
    /// a model the toolchain cannot build for the target.
    case userInput = "user input"
    /// mlbench itself failed.
    case `internal`
}

/// The rule of the stopping criterion that ended a measurement.
public enum StoppingRule: String, Codable, Sendable, Equatable {
    /// The median's confidence interval became narrow enough (after the minimum count and time).
    case confidenceInterval = "confidence interval"
    case maximumIterations = "maximum iterations"
    case maximumTime = "maximum time"
}
