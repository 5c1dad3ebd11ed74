/// The four roles of the lab. Everything vendor- or hardware-specific implements
/// one of them in a plugin; the core only ever talks to these protocols.
///
/// Every request and reply is `Codable`: it is exactly what crosses the C ABI as
/// JSON (see `Sources/CMLBenchPlugin/include/mlbench_plugin.h`), so a plugin
/// written with the Swift kit and one written in C see the same messages.

/// Checks a model against a target, builds a deployable artifact and names the
/// runner that executes it on a board.
public protocol Toolchain: AnyObject {
    /// The toolchain's name and its exact version (of the runtime it drives).
    func describe() throws -> ToolchainDescription
    /// Tells, before any run, whether the model can be built for the target.
    func check(_ request: CompatibilityRequest) throws -> CompatibilityReport
    /// Builds an artifact into `request.outputDirectory`.
    func build(_ request: BuildRequest) throws -> BuildResult
    /// The command that runs an artifact on a board, speaking the runner wire protocol.
    func runner(_ request: RunnerRequest) throws -> RunnerSpec
}

/// A target that runs models under a runner.
public protocol Board: AnyObject {
    func describe() throws -> BoardDescription
    /// Brings the board to a clean, ready state (the power cycle itself is the
    /// PowerSwitch's job; this waits for the board to answer).
    func reset(_ request: ResetRequest) throws -> ResetReport
    /// Applies controllable conditions and reports the observable ones.
    func conditions(_ request: ConditionsRequest) throws -> ConditionsReport
    /// Copies files onto the board into a fresh working directory.
    func deploy(_ request: DeployRequest) throws -> Deployment
    /// Starts a runner process on the board.
    func startRunner(_ request: RunnerLaunch) throws -> RunnerSession
    /// Sends one line to the runner and waits for its one-line answer.
    func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply
    /// Stops a runner and reports how it ended.
    func stopRunner(_ request: RunnerStop) throws -> RunnerExit
    /// Copies files from a folder on the board into a folder on the host.
    func fetch(_ request: FetchRequest) throws
    /// Removes the user's model and data from the board.
    func cleanup(_ request: CleanupRequest) throws
}

/// Streams timestamped samples of one or more quantities.
public protocol Probe: AnyObject {
    func describe() throws -> ProbeDescription
    /// Starts sampling; `deliver` is called with batches, from any thread, until `stop` returns.
    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws
    func stop() throws
}

/// Turns outlets on and off.
public protocol PowerSwitch: AnyObject {
    func describe() throws -> PowerSwitchDescription
    func set(_ request: OutletCommand) throws
    func state(_ request: OutletQuery) throws -> OutletState
}

/// The role a plugin factory provides.
public enum Role: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case toolchain
    case board
    case probe
    case powerSwitch = "power_switch"

    public var description: String { rawValue }
}
