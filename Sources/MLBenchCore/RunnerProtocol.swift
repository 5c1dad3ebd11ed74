/// The runner wire protocol shared by Linux boards (host, Jetson, Zynq).
///
/// A runner is a process started on the board by the board plugin. It speaks
/// one JSON object per line: it writes `RunnerGreeting` first, then answers each
/// request line with one reply line. Timestamps are CLOCK_MONOTONIC
/// nanoseconds of the board, the clock probes use too. Tensors travel as `.npy`
/// files in the deployment directory; only their names cross the wire.
///
/// Requests (`op`):
/// - `load`: `{"op":"load","artifact":NAME,"inputs":{INPUT:FILE.npy}}` → `RunnerLoaded`.
///   Each input file holds all samples, stacked on a leading axis.
/// - `run`: `{"op":"run","iterations":N,"sample":K,"placement":"device"}` → `RunnerTimings`.
///   `placement` asks where the inputs live while iterations are timed (`InputPlacement`);
///   the reply says where they did.
/// - `outputs`: `{"op":"outputs","directory":DIR}` → `RunnerOutputs`: runs every
///   sample once and writes each output stacked as `DIR/OUTPUT.npy`.
/// - `server`: `{"op":"server","arrivals_ns":[...],"sample":K,"placement":P}` → `RunnerServed`: one
///   query per arrival time (ns from the start), served in order by one worker;
///   each latency runs from the query's arrival, queueing included.
/// - `offline`: `{"op":"offline","queries":N}` → `RunnerOffline`: N inferences back
///   to back over every sample in turn.
/// - `native_benchmark`: `{"op":"native_benchmark","seconds":S,"threads":T}` →
///   the vendor tool's own figures (`{"tool":...}`), from runners that have one.
/// - `clock`: `{"op":"clock"}` → `RunnerClock`: the runner's CLOCK_MONOTONIC now, the
///   clock of its `startsNs`; the lab times a few of these to place the runner's clock
///   against its own (probes on the lab host sample on the host's clock). A runner
///   that does not know it is taken to share the host's clock.
/// - `quit`: `{"op":"quit"}` → `{"ok":true}`, then the runner exits.
///
/// Every reply has `"ok"`; when false, `"error"` says why.
public enum RunnerProtocol {
    /// Bumped on any incompatible change; runners report theirs in the greeting.
    public static let version = 1
}

/// Where a runner keeps the inputs while it times iterations: the initial
/// condition of every timed call.
public enum InputPlacement: String, Codable, Sendable, CaseIterable {
    /// Placed once, before timing, in the memory the runtime computes from (GPU
    /// buffers, the runtime's own tensors); a timed iteration moves no input or
    /// output data. What the runtime alone costs.
    case device
    /// Kept in host memory; every timed iteration hands them to the runtime and
    /// takes the outputs back, copies and conversions included. What an
    /// application calling the runtime sees.
    case host
}

public struct RunnerGreeting: Codable, Sendable, Equatable {
    public var protocolVersion: Int
    public var runtime: String
    public var runtimeVersion: String

    public init(protocolVersion: Int, runtime: String, runtimeVersion: String) {
        self.protocolVersion = protocolVersion
        self.runtime = runtime
        self.runtimeVersion = runtimeVersion
    }
}

public struct RunnerCommand: Codable, Sendable, Equatable {
    public var op: String
    public var artifact: String?
    public var inputs: [String: String]?
    public var iterations: Int?
    public var sample: Int?
    public var directory: String?
    /// Asks the runner to time its canary workload after every iteration.
    public var canary: Bool?
    /// How long and with how many threads the vendor's benchmark runs (`native_benchmark`).
    public var seconds: Int?
    public var threads: Int?
    /// Arrival times of the server scenario's queries, ns from the first.
    public var arrivalsNs: [Int64]?
    /// How many queries the offline scenario runs.
    public var queries: Int?
    /// Where the inputs of `run` and `server` live while timed.
    public var placement: InputPlacement?

    public static func load(artifact: String, inputs: [String: String]) -> RunnerCommand {
        RunnerCommand(op: "load", artifact: artifact, inputs: inputs)
    }

    public static func run(iterations: Int, sample: Int = 0, canary: Bool = false,
                           placement: InputPlacement? = nil) -> RunnerCommand {
        var command = RunnerCommand(op: "run", iterations: iterations, sample: sample)
        // Left out when not wanted, so runners that predate the canary see the request they know.
        if canary { command.canary = true }
        command.placement = placement
        return command
    }

    /// Runs the vendor's own benchmark tool on the loaded artifact (runners that have one).
    public static func nativeBenchmark(seconds: Int, threads: Int = 1) -> RunnerCommand {
        var command = RunnerCommand(op: "native_benchmark")
        command.seconds = seconds
        command.threads = threads
        return command
    }

    /// The server scenario: queries arriving at the given times.
    public static func server(arrivalsNs: [Int64], sample: Int = 0, placement: InputPlacement? = nil) -> RunnerCommand {
        var command = RunnerCommand(op: "server", sample: sample)
        command.arrivalsNs = arrivalsNs
        command.placement = placement
        return command
    }

    /// The offline scenario: `queries` inferences back to back.
    public static func offline(queries: Int) -> RunnerCommand {
        var command = RunnerCommand(op: "offline")
        command.queries = queries
        return command
    }

    public static func outputs(directory: String) -> RunnerCommand {
        RunnerCommand(op: "outputs", directory: directory)
    }

    public static let quit = RunnerCommand(op: "quit")

    /// Asks for the runner's clock (`RunnerClock`).
    public static let clock = RunnerCommand(op: "clock")

    public init(op: String, artifact: String? = nil, inputs: [String: String]? = nil,
                iterations: Int? = nil, sample: Int? = nil, directory: String? = nil) {
        self.op = op
        self.artifact = artifact
        self.inputs = inputs
        self.iterations = iterations
        self.sample = sample
        self.directory = directory
    }
}

/// The envelope of every reply: whether it worked, and why not.
public struct RunnerStatus: Codable, Sendable, Equatable {
    public var ok: Bool
    public var error: String?
}

public struct RunnerLoaded: Codable, Sendable, Equatable {
    /// How many samples the input files hold.
    public var samples: Int
    /// Nanoseconds the runtime took to load the artifact.
    public var loadNs: Int64
}

public struct RunnerTimings: Codable, Sendable, Equatable {
    /// CLOCK_MONOTONIC start of each iteration.
    public var startsNs: [Int64]
    /// Duration of each iteration.
    public var durationsNs: [Int64]
    /// Peak resident memory of the runner process so far.
    public var peakMemoryBytes: Int64
    /// Duration of the canary workload run after each iteration, when it was asked
    /// for and the runner has one (nil otherwise).
    public var canaryNs: [Int64]?
    /// The runtime's own split of each iteration, by phase ("h2d", "compute",
    /// "d2h" for TensorRT's CUDA events), one value per iteration; nil from
    /// runtimes that do not split. (Dictionary keys are kept as the runner wrote
    /// them: the snake_case conversion of the wire applies to field names only.)
    public var phasesNs: [String: [Int64]]?
    /// Where the inputs lived while these iterations were timed (nil from runners
    /// that predate input placement), and in which of the runtime's memories.
    public var inputPlacement: InputPlacement?
    public var inputPlacementDetail: String?

    public init(startsNs: [Int64], durationsNs: [Int64], peakMemoryBytes: Int64, canaryNs: [Int64]? = nil,
                phasesNs: [String: [Int64]]? = nil, inputPlacement: InputPlacement? = nil,
                inputPlacementDetail: String? = nil) {
        self.startsNs = startsNs
        self.durationsNs = durationsNs
        self.peakMemoryBytes = peakMemoryBytes
        self.canaryNs = canaryNs
        self.phasesNs = phasesNs
        self.inputPlacement = inputPlacement
        self.inputPlacementDetail = inputPlacementDetail
    }
}

/// The runner's CLOCK_MONOTONIC when it answered `clock`.
public struct RunnerClock: Codable, Sendable, Equatable {
    public var nowNs: Int64
    public init(nowNs: Int64) { self.nowNs = nowNs }
}

public struct RunnerOutputs: Codable, Sendable, Equatable {
    /// Output name → file name (in the requested directory).
    public var outputs: [String: String]
    /// The order of outputs as the model declares them.
    public var order: [String]
}

public struct RunnerServed: Codable, Sendable, Equatable {
    /// From each query's arrival to its end.
    public var latenciesNs: [Int64]
    /// The inference alone.
    public var durationsNs: [Int64]
    /// From arrival to start: the time spent queued.
    public var waitsNs: [Int64]
    public var peakMemoryBytes: Int64
    /// As in `RunnerTimings`.
    public var inputPlacement: InputPlacement?
    public var inputPlacementDetail: String?
}

public struct RunnerOffline: Codable, Sendable, Equatable {
    /// From the first query's start to the last one's end.
    public var totalNs: Int64
    public var durationsNs: [Int64]
    public var peakMemoryBytes: Int64
}
