import Foundation

// Messages of the four roles. Field names are snake_case on the wire (the JSON
// that crosses the C ABI); `JSONCoding` sets that up once for everyone.

/// What a factory's `create` receives.
public struct PluginConfiguration: Codable, Sendable, Equatable {
    /// The factory kind asked for ("host", "tvm", ...); one plugin may provide several.
    public var kind: String
    /// The folder the plugin was loaded from (its manifest, library and resources).
    public var pluginDirectory: String
    /// The settings from the inventory entry, as the operator wrote them.
    public var settings: JSONValue
    /// The managed environment prepared for this instance, if the role has one
    /// (a toolchain's Python environment, for instance).
    public var environment: EnvironmentInfo?

    public init(kind: String, pluginDirectory: String, settings: JSONValue = .object([:]), environment: EnvironmentInfo? = nil) {
        self.kind = kind
        self.pluginDirectory = pluginDirectory
        self.settings = settings
        self.environment = environment
    }
}

/// A managed environment (for now: a Python virtual environment).
public struct EnvironmentInfo: Codable, Sendable, Equatable {
    /// The version of the tool installed in it.
    public var version: String
    /// The environment's root folder.
    public var root: String
    /// The Python interpreter of the environment.
    public var python: String

    public init(version: String, root: String, python: String) {
        self.version = version
        self.root = root
        self.python = python
    }
}

// MARK: Toolchain

public struct ToolchainDescription: Codable, Sendable, Equatable {
    public var name: String
    /// The exact version of the runtime or compiler behind the toolchain.
    public var version: String
    /// Model formats accepted ("onnx", "tflite", ...).
    public var formats: [String]
    /// Targets it can build for ("llvm", "cpu", "cuda", ...).
    public var targets: [String]

    public init(name: String, version: String, formats: [String], targets: [String]) {
        self.name = name
        self.version = version
        self.formats = formats
        self.targets = targets
    }
}

public struct CompatibilityRequest: Codable, Sendable, Equatable {
    public var model: String
    public var target: String
    public var options: JSONValue

    public init(model: String, target: String, options: JSONValue = .object([:])) {
        self.model = model
        self.target = target
        self.options = options
    }
}

/// How much a compatibility finding matters: an `error` makes the experiment
/// impossible and stops it before any board is touched; a `warning` is a cost
/// worth knowing (a layout conversion, a fallback); `info` is context.
public enum FindingSeverity: String, Codable, Sendable, Equatable, Comparable, CaseIterable {
    case info
    case warning
    case error

    public static func < (a: FindingSeverity, b: FindingSeverity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One thing a compatibility check found.
///
/// On the wire a finding is an object (`{"severity": "error", "code":
/// "unsupported_operator", "operator": "Frobnicate", "message": "..."}`) or,
/// for plugins that only have words, a plain string, read as an error.
public struct CompatibilityFinding: Codable, Sendable, Equatable, CustomStringConvertible {
    public var severity: FindingSeverity
    /// A stable name of the kind of finding: `unsupported_format`,
    /// `unsupported_operator`, `layout_conversion`, `memory`, `option`, `target`, `model`.
    public var code: String?
    /// The operator (op type) concerned, when there is one.
    public var `operator`: String?
    /// The finding in the toolchain's words.
    public var message: String
    /// Who found it: the toolchain and its version, the board. Filled in by the
    /// lab when the plugin leaves them out.
    public var toolchain: String?
    public var toolchainVersion: String?
    public var board: String?

    public init(severity: FindingSeverity, code: String? = nil, operator: String? = nil, message: String,
                toolchain: String? = nil, toolchainVersion: String? = nil, board: String? = nil) {
        self.severity = severity
        self.code = code
        self.operator = `operator`
        self.message = message
        self.toolchain = toolchain
        self.toolchainVersion = toolchainVersion
        self.board = board
    }

    private enum CodingKeys: String, CodingKey {
        case severity, code, `operator`, message, toolchain, toolchainVersion, board
    }

    public init(from decoder: Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            self.init(severity: .error, message: text)
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(severity: try container.decode(FindingSeverity.self, forKey: .severity),
                  code: try container.decodeIfPresent(String.self, forKey: .code),
                  operator: try container.decodeIfPresent(String.self, forKey: .operator),
                  message: try container.decode(String.self, forKey: .message),
                  toolchain: try container.decodeIfPresent(String.self, forKey: .toolchain),
                  toolchainVersion: try container.decodeIfPresent(String.self, forKey: .toolchainVersion),
                  board: try container.decodeIfPresent(String.self, forKey: .board))
    }

    public var description: String {
        var text = "\(severity.rawValue)"
        if let code { text += " [\(code)]" }
        text += ": \(message)"
        var context = [String]()
        if let `operator`, !message.contains(`operator`) { context.append("operator \(`operator`)") }
        if let toolchain { context.append([toolchain, toolchainVersion].compactMap { $0 }.joined(separator: " ")) }
        if let board { context.append("board \(board)") }
        if !context.isEmpty { text += " (\(context.joined(separator: ", ")))" }
        return text
    }
}

/// What the model needs in memory, as far as the toolchain can tell before building.
public struct ModelFootprint: Codable, Sendable, Equatable {
    /// Bytes of the weights (initializers, constants).
    public var weightsBytes: UInt64?
    /// Bytes of the largest set of activations alive at once (an estimate: the
    /// sum of the largest intermediate tensors when the toolchain cannot plan memory).
    public var activationsBytes: UInt64?

    public init(weightsBytes: UInt64? = nil, activationsBytes: UInt64? = nil) {
        self.weightsBytes = weightsBytes
        self.activationsBytes = activationsBytes
    }
}

public struct CompatibilityReport: Codable, Sendable, Equatable {
    /// False when any finding is an error.
    public var compatible: Bool
    /// Each finding, in the toolchain's words.
    public var issues: [CompatibilityFinding]
    /// True when the build with these options needs sample inputs (post-training
    /// quantization calibration): the lab then passes the experiment's inputs in
    /// `BuildRequest.calibrationInputs` and keys the artifact cache on them too.
    public var needsCalibrationData: Bool?
    /// What the model needs in memory, for the lab to compare with the board's memories.
    public var footprint: ModelFootprint?

    public init(compatible: Bool, issues: [CompatibilityFinding] = [], needsCalibrationData: Bool? = nil,
                footprint: ModelFootprint? = nil) {
        self.compatible = compatible
        self.issues = issues
        self.needsCalibrationData = needsCalibrationData
        self.footprint = footprint
    }
}

public struct BuildRequest: Codable, Sendable, Equatable {
    public var model: String
    public var target: String
    public var options: JSONValue
    public var outputDirectory: String
    /// Sample inputs by input name (`.npy` files), given when the check said the
    /// build needs calibration data (e.g. int8 post-training quantization).
    public var calibrationInputs: [String: String]?

    public init(model: String, target: String, options: JSONValue, outputDirectory: String,
                calibrationInputs: [String: String]? = nil) {
        self.model = model
        self.target = target
        self.options = options
        self.outputDirectory = outputDirectory
        self.calibrationInputs = calibrationInputs
    }
}

public struct BuildResult: Codable, Sendable, Equatable {
    /// Path of the artifact; a file or a folder inside the output directory.
    public var artifact: String
    /// What the build printed.
    public var log: String
    /// The options in effect, defaults included.
    public var effectiveOptions: JSONValue

    public init(artifact: String, log: String, effectiveOptions: JSONValue = .object([:])) {
        self.artifact = artifact
        self.log = log
        self.effectiveOptions = effectiveOptions
    }
}

public struct RunnerRequest: Codable, Sendable, Equatable {
    /// The artifact's file name as deployed on the board.
    public var artifact: String
    public var target: String

    public init(artifact: String, target: String) {
        self.artifact = artifact
        self.target = target
    }
}

/// How to start a runner: the command, its environment and the files it needs
/// beside the artifact.
public struct RunnerSpec: Codable, Sendable, Equatable {
    public var command: [String]
    public var environment: [String: String]
    /// Files (absolute paths on the host) to deploy with the artifact.
    public var files: [String]

    public init(command: [String], environment: [String: String] = [:], files: [String] = []) {
        self.command = command
        self.environment = environment
        self.files = files
    }
}

// MARK: Board

public struct MemoryRegion: Codable, Sendable, Equatable {
    public var name: String
    public var sizeBytes: UInt64
    public var usedBytes: UInt64?

    public init(name: String, sizeBytes: UInt64, usedBytes: UInt64? = nil) {
        self.name = name
        self.sizeBytes = sizeBytes
        self.usedBytes = usedBytes
    }
}

public struct BoardDescription: Codable, Sendable, Equatable {
    public var name: String
    public var architecture: String
    /// Each memory the board has (RAM; on a microcontroller each SRAM and flash
    /// region), with its size and, where known, how much is used.
    public var memories: [MemoryRegion]
    /// Accelerators beside the CPU ("gpu", "dla0", "dpu", ...), for compatibility
    /// checks and the scheduler.
    public var accelerators: [String]?
    /// The runner kinds the board can host ("onnxruntime", "tensorrt", "uart-harness", ...).
    public var runners: [String]?
    /// The conditions the board can control (names accepted by `ConditionsRequest.apply`).
    public var conditions: [String]?
    /// How the board shows it is ready after a reset ("ssh user@host:22", "console login prompt", "harness banner").
    public var readiness: String?

    public init(name: String, architecture: String, memories: [MemoryRegion] = [], accelerators: [String]? = nil,
                runners: [String]? = nil, conditions: [String]? = nil, readiness: String? = nil) {
        self.name = name
        self.architecture = architecture
        self.memories = memories
        self.accelerators = accelerators
        self.runners = runners
        self.conditions = conditions
        self.readiness = readiness
    }
}

public struct ResetRequest: Codable, Sendable, Equatable {
    public var timeoutMs: Int
    public init(timeoutMs: Int) { self.timeoutMs = timeoutMs }
}

public struct ResetReport: Codable, Sendable, Equatable {
    public var ready: Bool
    public var log: String
    public init(ready: Bool, log: String = "") {
        self.ready = ready
        self.log = log
    }
}

public struct ConditionsRequest: Codable, Sendable, Equatable {
    /// Controllable conditions to apply (governor, clocks, power mode, ...).
    public var apply: [String: String]
    /// Put back every condition earlier requests changed, as it was before them;
    /// the lab asks for it when the experiment ends, however it ends.
    public var restore: Bool?
    public init(apply: [String: String] = [:], restore: Bool? = nil) {
        self.apply = apply
        self.restore = restore
    }
}

public struct ConditionsReport: Codable, Sendable, Equatable {
    /// What was applied, as the board understood it (after a restore: what was put back).
    public var applied: [String: String]
    /// What was observed (kernel, clocks, temperatures, load, ...).
    public var observed: [String: String]
    /// The state before the change of each condition that was changed, so it can be
    /// restored and the result says what the board was like untouched.
    public var before: [String: String]?
    /// Conditions asked for that this board cannot apply here, with the reason
    /// (e.g. no cpufreq governor in a virtual machine); nothing else was held back.
    public var unavailable: [String: String]?
    public init(applied: [String: String] = [:], observed: [String: String] = [:],
                before: [String: String]? = nil, unavailable: [String: String]? = nil) {
        self.applied = applied
        self.observed = observed
        self.before = before
        self.unavailable = unavailable
    }
}

public struct DeployFile: Codable, Sendable, Equatable {
    /// Path on the host.
    public var source: String
    /// Name inside the deployment directory on the board.
    public var name: String
    public init(source: String, name: String) {
        self.source = source
        self.name = name
    }
}

public struct DeployRequest: Codable, Sendable, Equatable {
    public var files: [DeployFile]
    public init(files: [DeployFile]) { self.files = files }
}

public struct Deployment: Codable, Sendable, Equatable {
    /// The working directory on the board.
    public var directory: String
    public init(directory: String) { self.directory = directory }
}

public struct RunnerLaunch: Codable, Sendable, Equatable {
    public var command: [String]
    public var environment: [String: String]
    /// Working directory on the board (a deployment directory).
    public var directory: String
    /// How long to wait for the runner's first line (its "ready" message).
    public var startTimeoutMs: Int

    public init(command: [String], environment: [String: String], directory: String, startTimeoutMs: Int) {
        self.command = command
        self.environment = environment
        self.directory = directory
        self.startTimeoutMs = startTimeoutMs
    }
}

public struct RunnerSession: Codable, Sendable, Equatable {
    public var session: String
    /// The runner's first line (its "ready" message).
    public var greeting: String
    /// What the board did to the runner process, read back (e.g. `runner_cpus`,
    /// `runner_priority`).
    public var applied: [String: String]?
    public init(session: String, greeting: String, applied: [String: String]? = nil) {
        self.session = session
        self.greeting = greeting
        self.applied = applied
    }
}

public struct RunnerExchange: Codable, Sendable, Equatable {
    public var session: String
    public var message: String
    public var timeoutMs: Int
    public init(session: String, message: String, timeoutMs: Int) {
        self.session = session
        self.message = message
        self.timeoutMs = timeoutMs
    }
}

public struct RunnerExchangeReply: Codable, Sendable, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
}

public struct RunnerStop: Codable, Sendable, Equatable {
    public var session: String
    public init(session: String) { self.session = session }
}

public struct RunnerExit: Codable, Sendable, Equatable {
    /// The exit status, or the negated signal number if a signal ended it.
    public var exitStatus: Int32
    /// The last part of what the runner wrote to its error stream.
    public var stderr: String
    public init(exitStatus: Int32, stderr: String) {
        self.exitStatus = exitStatus
        self.stderr = stderr
    }
}

public struct FetchRequest: Codable, Sendable, Equatable {
    /// The folder on the board.
    public var directory: String
    /// File names inside it.
    public var names: [String]
    /// The folder on the host.
    public var destination: String
    public init(directory: String, names: [String], destination: String) {
        self.directory = directory
        self.names = names
        self.destination = destination
    }
}

public struct CleanupRequest: Codable, Sendable, Equatable {
    public var directory: String
    public init(directory: String) { self.directory = directory }
}

// MARK: Probe

public struct ProbeChannel: Codable, Sendable, Equatable {
    public var name: String
    /// "W", "A", "V", "°C", "count", ...
    public var unit: String
    public init(name: String, unit: String) {
        self.name = name
        self.unit = unit
    }
}

public struct ProbeDescription: Codable, Sendable, Equatable {
    public var channels: [ProbeChannel]
    /// The rate asked for (the probe's setting); the recording reports the rate achieved.
    public var rateHz: Double
    /// Whose CLOCK_MONOTONIC the timestamps are on: nil or "host" for the lab host's
    /// (a meter on the host), "board" for the board's own (a sampler running on the
    /// board the probe is attached to, the clock its runner stamps iterations with).
    public var clock: String?
    public init(channels: [ProbeChannel], rateHz: Double, clock: String? = nil) {
        self.channels = channels
        self.rateHz = rateHz
        self.clock = clock
    }
}

/// One sample of one channel, on CLOCK_MONOTONIC (the clock of runner timestamps).
public struct ProbeSample: Codable, Sendable, Equatable {
    public var timestampNs: Int64
    public var channel: UInt32
    public var value: Double
    public init(timestampNs: Int64, channel: UInt32, value: Double) {
        self.timestampNs = timestampNs
        self.channel = channel
        self.value = value
    }
}

// MARK: PowerSwitch

public struct PowerSwitchDescription: Codable, Sendable, Equatable {
    public var outlets: [String]
    public init(outlets: [String]) { self.outlets = outlets }
}

public struct OutletCommand: Codable, Sendable, Equatable {
    public var outlet: String
    public var on: Bool
    public init(outlet: String, on: Bool) {
        self.outlet = outlet
        self.on = on
    }
}

public struct OutletQuery: Codable, Sendable, Equatable {
    public var outlet: String
    public init(outlet: String) { self.outlet = outlet }
}

public struct OutletState: Codable, Sendable, Equatable {
    public var on: Bool
    public init(on: Bool) { self.on = on }
}

/// An empty request or reply (`{}`).
public struct Empty: Codable, Sendable, Equatable {
    public init() {}
}
