import MLBenchCore

/// A transport fault (SSH, serial console, UART harness), classified, naming
/// the board and the step it broke. Transient kinds are worth a bounded retry.
public struct TransportFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// Nothing listens on the port (the board is booting, sshd is not up).
        case refused = "connection refused"
        /// No answer in time: the board is off or hung, its console or harness silent.
        case timedOut = "timed out"
        /// No route, unknown name, network down.
        case unreachable
        /// The connection dropped during the handshake or the session.
        case connectionLost = "connection lost"
        /// The key was refused: a configuration fault, retrying cannot help.
        case authentication = "authentication refused"
        /// The host key is unknown or changed: a configuration (or security) fault.
        case hostKey = "host key not trusted"
        /// The command ran and failed, or did not end in time.
        case command = "command failed"
        /// The client program (`ssh`, `scp`) or the device (a serial port) could not be opened.
        case client = "transport unavailable"
        /// A console or harness said something that is not its protocol.
        case garbage = "unreadable reply"
    }

    public var kind: Kind
    public var board: String
    public var step: String
    public var detail: String
    public var attempts: Int

    public init(kind: Kind, board: String, step: String, detail: String, attempts: Int = 1) {
        self.kind = kind
        self.board = board
        self.step = step
        self.detail = detail
        self.attempts = attempts
    }

    /// Faults that may clear up when tried again later: the board may still be booting.
    public var isTransient: Bool { [.refused, .timedOut, .unreachable, .connectionLost].contains(kind) }

    public var description: String {
        "board '\(board)', step '\(step)': \(kind.rawValue)" + (attempts > 1 ? " after \(attempts) attempts" : "") + ": \(detail)"
    }

    /// The failure as it crosses the plugin boundary: transient faults are "not
    /// ready" (the lab retries the experiment), configuration faults say so.
    public var pluginFailure: PluginFailure {
        switch kind {
        case .refused, .timedOut, .unreachable, .connectionLost: return PluginFailure(.notReady, description)
        case .authentication, .hostKey, .client: return PluginFailure(.invalidConfiguration, description)
        case .command, .garbage: return PluginFailure(.device, description)
        }
    }
}
