import Foundation
import MLBenchPluginKit
import SerialDriver

/// The inventory settings every Linux board over SSH shares.
///
/// ```yaml
/// settings:
///   host: 192.168.55.1          # the board's address
///   port: 22
///   user: mlbench
///   identity_file: /etc/mlbench/keys/orin
///   known_hosts_file: /etc/mlbench/known_hosts
///   connect_timeout_s: 10
///   attempts: 3                 # tries of a command whose connection fails
///   work_root: /tmp/mlbench     # deployments go into fresh folders inside
///   sudo: true                  # controlled conditions need root: sudo -n
///   files_root: ""              # prefix of the board's /sys, /proc and /etc files
///   name: orin-1                # how messages name the board
///   console: /dev/serial/by-id/usb-FTDI_…-if00-port0   # optional: the debug UART
///   console_baud: 115200
/// ```
///
/// `files_root` is empty on a real board; a stand-in board (a folder of recorded
/// sysfs files) sets it so that the same code reads and writes the recordings.
public struct LinuxBoardSettings: Decodable, Sendable {
    /// The board's name in messages (the inventory name, by convention).
    public var name: String?
    public var host: String?
    public var port: Int?
    public var user: String?
    public var identityFile: String?
    public var knownHostsFile: String?
    public var connectTimeoutS: Int?
    public var attempts: Int?
    public var retryDelayS: Double?
    public var workRoot: String?
    public var sudo: Bool?
    public var filesRoot: String?
    /// The board's serial console (optional), watched while waiting for SSH.
    public var console: String?
    public var consoleBaud: Int?

    /// The setting names (snake_case) this struct reads.
    public static let keys: Set<String> = ["name", "host", "port", "user", "identity_file", "known_hosts_file", "connect_timeout_s",
                                           "attempts", "retry_delay_s", "work_root", "sudo", "files_root", "console", "console_baud"]

    /// The SSH target these settings describe; `host` and `user` are required.
    public func target() throws -> SSHTarget {
        guard let host, !host.isEmpty else { throw PluginFailure(.invalidConfiguration, "setting 'host' is required (the board's address)") }
        guard let user, !user.isEmpty else { throw PluginFailure(.invalidConfiguration, "setting 'user' is required (the login on the board)") }
        let port = self.port ?? 22
        guard (1...65535).contains(port) else { throw PluginFailure(.invalidConfiguration, "setting 'port': \(port) is not a TCP port") }
        for (name, path) in [("identity_file", identityFile), ("known_hosts_file", knownHostsFile)] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw PluginFailure(.invalidConfiguration, "setting '\(name)': \(path) does not exist")
            }
        }
        if let attempts, attempts < 1 { throw PluginFailure(.invalidConfiguration, "setting 'attempts': must be at least 1, not \(attempts)") }
        return SSHTarget(host: host, port: port, user: user, identityFile: identityFile, knownHostsFile: knownHostsFile,
                         connectTimeoutS: connectTimeoutS ?? 10, attempts: attempts ?? 3, retryDelayS: retryDelayS ?? 1)
    }
}

/// What every Linux board over SSH does the same way: deployments in fresh
/// folders under a work root, runners started over an SSH channel, outputs
/// copied back, the user's files removed after each experiment. Board plugins
/// (Jetson, Zynq) add their description, readiness and conditions.
public final class RemoteLinuxBoard: @unchecked Sendable {
    public let name: String
    public let ssh: SSHTransport
    /// Deployments are made in fresh folders inside it.
    public let workRoot: String
    /// Prefix of commands that need root on the board ("sudo -n " or "").
    public let privileged: String
    /// Prefix of the board's own files (empty on a real board).
    public let filesRoot: String
    /// The serial console and its speed, when the inventory names one.
    let console: (path: String, baud: Int)?
    private let sessions: RunnerSessions

    /// The board an inventory entry describes; `kind` names it when the settings do not.
    public convenience init(_ configuration: PluginConfiguration, kind: String) throws {
        let settings = try configuration.decodeSettings(LinuxBoardSettings.self, known: LinuxBoardSettings.keys)
        try self.init(name: settings.name ?? settings.host ?? kind, settings: settings)
    }

    public init(name: String, settings: LinuxBoardSettings) throws {
        self.name = name
        ssh = SSHTransport(board: name, target: try settings.target())
        let root = settings.workRoot ?? "/tmp/mlbench"
        guard root.hasPrefix("/"), root.count > 1, !root.split(separator: "/").contains("..") else {
            throw PluginFailure(.invalidConfiguration, "setting 'work_root': '\(root)' must be an absolute folder other than /")
        }
        workRoot = root.hasSuffix("/") ? String(root.dropLast()) : root
        privileged = (settings.sudo ?? false) ? "sudo -n " : ""
        filesRoot = settings.filesRoot ?? ""
        console = settings.console.map { ($0, settings.consoleBaud ?? 115_200) }
        sessions = RunnerSessions(subject: "the runner on board '\(name)'")
    }

    /// A board file's path with the files root in front.
    public func file(_ path: String) -> String { filesRoot + path }

    /// Runs `body`, turning transport faults into plugin failures.
    public func step<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as TransportFailure {
            throw failure.pluginFailure
        }
    }

    /// Waits until SSH answers, then removes what earlier experiments left in
    /// the work root (a crashed run never cleaned up). With a console, what it
    /// shows meanwhile (U-Boot, the kernel starting, a login prompt) is logged, and
    /// says where a board that never answers SSH got stuck.
    public func waitReady(timeoutMs: Int) throws -> String {
        let watcher = try console.map { try ConsoleWatcher(path: $0.path, baud: $0.baud, board: name) }
        do {
            let log = try ssh.waitUntilReachable(timeout: Double(timeoutMs) / 1000, between: watcher.map { watcher in { watcher.watch(for: $0) } })
            try ssh.output("mkdir -p \(shellQuote(workRoot)) && rm -rf \(shellQuote(workRoot))/run-*", step: "reset")
            return log + (watcher.flatMap { $0.milestones.isEmpty ? nil : "; console: \($0.summary)" } ?? "")
        } catch var failure as TransportFailure {
            if let watcher {
                failure.detail += watcher.loginSeen
                    ? "; the console shows a login prompt: the board booted but SSH does not answer (network, address or sshd?)"
                    : "; console: \(watcher.summary)"
            }
            throw failure.pluginFailure
        }
    }

    /// Reads many board files in one round trip: a glob or path per entry, each
    /// file's content by its path (without the files root). Missing files are absent.
    public func readFiles(_ patterns: [String], step: String) throws -> [String: String] {
        let separator = "\u{1e}"
        let globs = patterns.map { pattern -> String in
            // The glob part stays unquoted so the board's shell expands it.
            pattern.split(separator: "/", omittingEmptySubsequences: false).map { part in
                part.contains("*") ? String(part) : shellQuote(String(part))
            }.joined(separator: "/")
        }
        let root = shellQuote(filesRoot)
        let script = "for f in " + globs.map { "\(root)\($0)" }.joined(separator: " ")
            + "; do [ -r \"$f\" ] && [ -f \"$f\" ] && { printf '\(separator)%s\\n' \"$f\"; cat \"$f\"; }; done; true"
        let text = try self.step { try ssh.output(script, step: step) }
        var files = [String: String]()
        for (path, content) in Self.sections(text) {
            files[!filesRoot.isEmpty && path.hasPrefix(filesRoot) ? String(path.dropFirst(filesRoot.count)) : path] = content
        }
        return files
    }

    /// Runs `script` as root (through sudo when the board is set up so); a
    /// failure is a device error naming the board and the condition.
    public func privilegedCommand(_ script: String, condition: String) throws {
        let result = try step { try ssh.run(privileged + script, step: "conditions") }
        guard result.status == 0 else {
            throw PluginFailure(.device, "board '\(name)', condition '\(condition)': '\(script)' failed (status \(result.status)): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Runs several commands in one round trip; returns each one's standard
    /// output by name (standard error is dropped: a missing tool gives empty output).
    public func outputs(of commands: [(name: String, script: String)], step: String) throws -> [String: String] {
        let separator = "\u{1e}"
        let script = commands.map { "printf '\(separator)%s\\n' \(shellQuote($0.name)); ( \($0.script) ) 2>/dev/null" }
            .joined(separator: "; ") + "; true"
        return Self.sections(try self.step { try ssh.output(script, step: step) })
    }

    /// Splits output made of `\u{1e}NAME\n` headers, each followed by its content.
    private static func sections(_ text: String) -> [String: String] {
        var sections = [String: String]()
        for chunk in text.components(separatedBy: "\u{1e}").dropFirst() {
            guard let newline = chunk.firstIndex(of: "\n") else { continue }
            sections[String(chunk[..<newline])] = String(chunk[chunk.index(after: newline)...])
        }
        return sections
    }

    public func deploy(_ request: DeployRequest) throws -> Deployment {
        let directory = "\(workRoot)/run-\(UUID().uuidString.lowercased())"
        for file in request.files {
            try PlainFileName.check(file.name, step: "deploy")
            guard FileManager.default.fileExists(atPath: file.source) else {
                throw PluginFailure(.invalidRequest, "deploy: '\(file.source)' does not exist")
            }
        }
        do {
            try step {
                try ssh.output("mkdir -p \(shellQuote(directory))", step: "deploy")
                try ssh.upload(request.files.map { ($0.source, "\(directory)/\($0.name)") }, step: "deploy")
            }
        } catch {
            _ = try? ssh.run("rm -rf \(shellQuote(directory))", step: "deploy")
            throw error
        }
        return Deployment(directory: directory)
    }

    /// Starts the runner in its deployment folder over an SSH channel. Its pid is
    /// kept on the board, so a runner that stops answering is killed there too.
    public func startRunner(_ request: RunnerLaunch) throws -> RunnerSession {
        let directory = try deployment(request.directory)
        for key in request.environment.keys where !key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || key.isEmpty {
            throw PluginFailure(.invalidRequest, "runner environment: '\(key)' is not a variable name")
        }
        guard !request.command.isEmpty else { throw PluginFailure(.invalidRequest, "runner command is empty") }
        let environment = request.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuote($0.value))" }.joined(separator: " ")
        let script = "cd \(shellQuote(directory)) && echo $$ > .runner-pid && exec env \(environment) "
            + request.command.map(shellQuote).joined(separator: " ")
        let transport = ssh
        let child = try step { try transport.start(script, step: "run") }
        let abort = {
            _ = try? transport.run("kill -9 $(cat \(shellQuote(directory))/.runner-pid) 2>/dev/null; true", step: "run", timeout: 20)
        }
        let (id, greeting) = try sessions.start(child, startTimeoutMs: request.startTimeoutMs, abort: abort)
        return RunnerSession(session: id, greeting: greeting)
    }

    public func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply {
        try sessions.exchange(request)
    }

    public func stopRunner(_ request: RunnerStop) throws -> RunnerExit {
        try sessions.stop(request)
    }

    public func fetch(_ request: FetchRequest) throws {
        let directory = try deployment(request.directory)
        for name in request.names { try PlainFileName.check(name, step: "fetch") }
        try step { try ssh.download(request.names, from: directory, to: request.destination, step: "fetch") }
    }

    /// Removes a deployment: the user's model, inputs and outputs leave the board.
    public func cleanup(_ request: CleanupRequest) throws {
        let directory = try deployment(request.directory)
        try step { _ = try ssh.output("rm -rf \(shellQuote(directory))", step: "cleanup") }
    }

    /// A folder this board deployed; nothing outside its work root is touched.
    private func deployment(_ directory: String) throws -> String {
        let parts = directory.split(separator: "/")
        guard directory.hasPrefix(workRoot + "/run-"), !parts.contains(".."), !parts.contains(".") else {
            throw PluginFailure(.invalidRequest, "'\(directory)' is not a deployment of board '\(name)'")
        }
        return directory
    }
}

/// A board plugin for a Linux board over SSH: it supplies its description and
/// conditions, and gets readiness, deployment, runners, fetching and clean-up
/// from its `RemoteLinuxBoard`.
public protocol LinuxBoard: Board {
    var remote: RemoteLinuxBoard { get }
}

extension LinuxBoard {
    /// The power cycle is the PowerSwitch's; this waits until SSH answers and
    /// clears what crashed experiments left in the work root.
    public func reset(_ request: ResetRequest) throws -> ResetReport {
        ResetReport(ready: true, log: try remote.waitReady(timeoutMs: request.timeoutMs))
    }

    public func deploy(_ request: DeployRequest) throws -> Deployment { try remote.deploy(request) }
    public func startRunner(_ request: RunnerLaunch) throws -> RunnerSession { try remote.startRunner(request) }
    public func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply { try remote.exchange(request) }
    public func stopRunner(_ request: RunnerStop) throws -> RunnerExit { try remote.stopRunner(request) }
    public func fetch(_ request: FetchRequest) throws { try remote.fetch(request) }
    public func cleanup(_ request: CleanupRequest) throws { try remote.cleanup(request) }
}

/// A board's serial console read while the board boots: it remembers the boot
/// milestones it has seen (U-Boot, the kernel starting, a login prompt) and the last line.
final class ConsoleWatcher {
    private let port: SerialPort
    private var text = ""
    private(set) var milestones: [String] = []
    var loginSeen: Bool { milestones.contains("login prompt") }

    init(path: String, baud: Int, board: String) throws {
        do {
            port = try SerialPort(path: path, settings: SerialSettings(baudRate: baud))
        } catch {
            throw TransportFailure(kind: .client, board: board, step: "reset", detail: "console: \(error)").pluginFailure
        }
    }

    /// Reads what the console prints for `seconds`.
    func watch(for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let bytes = try? port.read(timeout: max(0.01, deadline.timeIntervalSinceNow)) else { return }
            text += String(decoding: bytes, as: UTF8.self)
            if text.count > 65_536 { text = String(text.suffix(16_384)) }
            for (pattern, milestone) in [("U-Boot", "U-Boot"), ("Starting kernel", "kernel started"), ("login:", "login prompt")]
            where !milestones.contains(milestone) && text.contains(pattern) {
                milestones.append(milestone)
            }
        }
    }

    var summary: String {
        let last = text.split(whereSeparator: \.isNewline).last.map { String($0.trimmingCharacters(in: .whitespaces).suffix(80)) } ?? ""
        if milestones.isEmpty { return last.isEmpty ? "silent" : "no boot milestone; last line '\(last)'" }
        return milestones.joined(separator: ", ")
    }
}
