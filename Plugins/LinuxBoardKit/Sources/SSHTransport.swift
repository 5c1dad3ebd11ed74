import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MLBenchPluginKit

/// Where a Linux board answers SSH, and how to log in: key only, host key
/// checked against a known-hosts file, never a password prompt.
public struct SSHTarget: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    /// The private key (`ssh -i`); the agent and default keys are not used when it is set.
    public var identityFile: String?
    /// The known-hosts file holding the board's host key. Without one the user's
    /// default file is used, still with strict checking: an unknown or changed
    /// host key is a configuration error, never accepted silently.
    public var knownHostsFile: String?
    /// Seconds to wait for the TCP connection and the SSH handshake.
    public var connectTimeoutS: Int
    /// How often a command is tried when the connection itself fails (refused,
    /// timed out, reset) before the failure is reported.
    public var attempts: Int
    /// Pause between attempts; doubled after each one.
    public var retryDelayS: Double

    public init(host: String, port: Int = 22, user: String, identityFile: String? = nil, knownHostsFile: String? = nil,
                connectTimeoutS: Int = 10, attempts: Int = 3, retryDelayS: Double = 1) {
        self.host = host
        self.port = port
        self.user = user
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.connectTimeoutS = connectTimeoutS
        self.attempts = attempts
        self.retryDelayS = retryDelayS
    }

    /// "user@host:port", as messages name it.
    public var address: String { "\(user)@\(host):\(port)" }
}

extension TransportFailure {
    /// Reads the kind of a failed `ssh`/`scp` run from what the client printed;
    /// nil when it does not look like a transport fault (the remote command failed).
    public static func classify(clientStderr text: String) -> Kind? {
        let lower = text.lowercased()
        // Order matters: a changed host key message also says "connection".
        if lower.contains("host key verification failed") || lower.contains("remote host identification has changed")
            || lower.contains("no matching host key") || lower.contains("host key for") {
            return .hostKey
        }
        if lower.contains("permission denied") || lower.contains("too many authentication failures") { return .authentication }
        if lower.contains("connection refused") { return .refused }
        if lower.contains("connection timed out") || lower.contains("operation timed out") || lower.contains("timed out during banner") {
            return .timedOut
        }
        if lower.contains("no route to host") || lower.contains("network is unreachable") || lower.contains("could not resolve hostname")
            || lower.contains("name or service not known") {
            return .unreachable
        }
        if lower.contains("connection closed by") || lower.contains("connection reset") || lower.contains("kex_exchange_identification")
            || lower.contains("broken pipe") || lower.contains("lost connection") || lower.contains("timeout, server") {
            return .connectionLost
        }
        return nil
    }
}

/// What a remote command printed and how it ended.
public struct RemoteOutput: Sendable, Equatable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Commands, file copies and runner channels on a Linux board through the
/// system OpenSSH clients (`ssh`, `scp`): BatchMode (no prompt ever), a key,
/// strict host-key checking against a known-hosts file, a connect timeout, and
/// bounded retries of connection faults. One place for every Linux board plugin.
public final class SSHTransport: @unchecked Sendable {
    public let board: String
    public let target: SSHTarget
    /// Sleeps between attempts; replaced in tests that count them.
    var pause: (Double) -> Void = { Thread.sleep(forTimeInterval: $0) }

    /// The folder of the connection-sharing socket: one SSH connection carries the
    /// many short commands of a step (each would otherwise pay a handshake).
    private let controlDirectory: String

    public init(board: String, target: SSHTarget) {
        self.board = board
        self.target = target
        // Short and private: a socket path must stay under 108 bytes.
        let folder = "/tmp/mlbench-ssh-\(getuid())"
        mkdir(folder, 0o700)
        controlDirectory = folder
    }

    deinit {
        // The shared connection ends with the transport (it would linger for ControlPersist otherwise).
        _ = try? ChildProcess.run(["ssh", "-O", "exit", "-o", "ControlPath=\(controlDirectory)/%C", "-p", String(target.port),
                                   "\(target.user)@\(target.host)"], timeout: 5)
    }

    /// Options shared by ssh and scp.
    var commonOptions: [String] {
        var options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=\(target.connectTimeoutS)",
                       "-o", "StrictHostKeyChecking=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                       "-o", "LogLevel=ERROR",
                       "-o", "ControlMaster=auto", "-o", "ControlPath=\(controlDirectory)/%C", "-o", "ControlPersist=15"]
        if let identity = target.identityFile { options += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        if let known = target.knownHostsFile { options += ["-o", "UserKnownHostsFile=\(known)"] }
        return options
    }

    /// The `ssh` command line that runs `script` in the board's login shell.
    func sshCommand(_ script: String) -> [String] {
        ["ssh", "-T", "-p", String(target.port)] + commonOptions + ["\(target.user)@\(target.host)", script]
    }

    /// Runs `script` (a shell command line) on the board; returns how it ended.
    /// Connection faults are retried; a command that fails is returned, not thrown.
    @discardableResult
    public func run(_ script: String, step: String, timeout: Double = 60) throws -> RemoteOutput {
        try withRetries(step: step) { try self.client(self.sshCommand(script), step: step, timeout: timeout) }
    }

    /// Runs `script` and returns its standard output; a non-zero status is a
    /// `command` failure with the remote standard error.
    @discardableResult
    public func output(_ script: String, step: String, timeout: Double = 60) throws -> String {
        let result = try run(script, step: step, timeout: timeout)
        guard result.status == 0 else {
            throw TransportFailure(kind: .command, board: board, step: step,
                                   detail: "'\(script.prefix(200))' exited with status \(result.status): \(result.stderr.suffix(1000).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result.stdout
    }

    /// Copies local files onto the board (`scp`), each to its remote path.
    public func upload(_ files: [(local: String, remote: String)], step: String, timeout: Double = 300) throws {
        for file in files {
            let command = ["scp", "-q", "-p", "-P", String(target.port)] + commonOptions
                + [file.local, "\(target.user)@\(target.host):\(file.remote)"]
            let result = try withRetries(step: step) { try self.client(command, step: step, timeout: timeout) }
            guard result.status == 0 else {
                throw TransportFailure(kind: .command, board: board, step: step,
                                       detail: "copying \(file.local) to \(file.remote): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
    }

    /// Copies files of one board folder into a local folder, in one `scp`.
    public func download(_ names: [String], from directory: String, to destination: String, step: String, timeout: Double = 300) throws {
        guard !names.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        let sources = names.map { "\(target.user)@\(target.host):\(directory)/\($0)" }
        let command = ["scp", "-q", "-p", "-P", String(target.port)] + commonOptions + sources + [destination + "/"]
        let result = try withRetries(step: step) { try self.client(command, step: step, timeout: timeout) }
        guard result.status == 0 else {
            throw TransportFailure(kind: .command, board: board, step: step,
                                   detail: "copying \(names.joined(separator: ", ")) from \(directory): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Starts `script` on the board with its standard input and output joined to
    /// the returned process's (an SSH channel without a terminal): the runner
    /// wire protocol travels over it as over a local pipe.
    public func start(_ script: String, step: String) throws -> ChildProcess {
        do {
            return try ChildProcess(sshCommand(script))
        } catch {
            throw TransportFailure(kind: .client, board: board, step: step, detail: "\(error)")
        }
    }

    /// Tries a trivial command until the board answers or `timeout` seconds pass;
    /// returns what the last attempt printed. Transient faults are waited out, others thrown at once.
    /// `between` fills the pause between attempts (a console is read meanwhile); it
    /// is given the seconds to spend.
    public func waitUntilReachable(timeout: Double, step: String = "reset", between: ((Double) -> Void)? = nil) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last: TransportFailure?
        var tries = 0
        repeat {
            tries += 1
            do {
                let result = try client(sshCommand("echo ready"), step: step, timeout: Double(target.connectTimeoutS) + 5)
                if result.status == 0 { return "ssh \(target.address) answered after \(tries) attempt(s)" }
                last = TransportFailure(kind: .command, board: board, step: step, detail: "'echo ready' exited with \(result.status): \(result.stderr)")
            } catch let failure as TransportFailure where failure.isTransient {
                last = failure
            }
            (between ?? pause)(min(1, max(0, deadline.timeIntervalSinceNow)))
        } while Date() < deadline
        var failure = last ?? TransportFailure(kind: .timedOut, board: board, step: step, detail: "no attempt finished")
        failure.attempts = tries
        failure.detail += " (waited \(Int(timeout)) s)"
        throw failure
    }

    /// Runs `body` until it succeeds or fails with a non-transient fault, at most `target.attempts` times.
    func withRetries(step: String, _ body: () throws -> RemoteOutput) throws -> RemoteOutput {
        var delay = target.retryDelayS
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try body()
            } catch var failure as TransportFailure where failure.isTransient {
                guard attempt < max(1, target.attempts) else {
                    failure.attempts = attempt
                    throw failure
                }
                pause(delay)
                delay *= 2
            }
        }
    }

    /// Runs an ssh/scp command line once; a client exit status of 255 with a
    /// transport message becomes a classified `TransportFailure`.
    func client(_ command: [String], step: String, timeout: Double) throws -> RemoteOutput {
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(command, timeout: timeout)
        } catch let error as ChildProcessError where error.kind == .spawnFailed {
            throw TransportFailure(kind: .client, board: board, step: step, detail: "\(error) (install openssh-client)")
        } catch let error as ChildProcessError where error.kind == .timedOut {
            throw TransportFailure(kind: .command, board: board, step: step, detail: "\(command[0]) to \(target.address): \(error)")
        }
        if result.status == 255 || (command[0] == "scp" && result.status != 0),
           let kind = TransportFailure.classify(clientStderr: result.stderr) {
            throw TransportFailure(kind: kind, board: board, step: step,
                                   detail: "\(command[0]) \(target.address): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(500))")
        }
        return RemoteOutput(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }
}

/// Quotes `text` for a POSIX shell on the board.
public func shellQuote(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:@%+,".contains($0) }), text.unicodeScalars.allSatisfy(\.isASCII) {
        return text
    }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
