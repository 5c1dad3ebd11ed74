import Foundation
import MLBenchCore
#if canImport(Glibc)
import Glibc
#endif

/// The queue worker of one bench host: it claims experiments for the host's boards from
/// the shared store and runs each in its own process, so that a crash (a plugin's
/// segfault, say) ends one experiment, never the worker. While a process runs, the
/// worker renews its lease with heartbeats; when the store revokes the lease (abort,
/// suspend, a reservation, a lease that expired meanwhile) the process is killed.
///
/// The process is `command` followed by the path of a file holding the experiment's
/// definition, with `MLBENCH_EXPERIMENT_ID`, `MLBENCH_BOARD`, `MLBENCH_USER`,
/// `MLBENCH_HOST`, `MLBENCH_WORKER` and `MLBENCH_EXPERIMENT_DIRECTORY` (where the
/// definition's relative paths resolve: the submitter's folder) in its environment — so
/// `mlbench run --id-only` is such a program. The last line it prints, if any, is the
/// stored result's id. Its exit decides the outcome:
/// - 0: succeeded;
/// - 75 (EX_TEMPFAIL): the infrastructure failed; the experiment is requeued (up to
///   `maxAttempts` starts) and the board goes to a health check (`unknown`);
/// - any other status, or a signal: the experiment failed, with the end of its stderr.
///
/// Each host's workers run only that host's boards; several workers may share a host
/// and several hosts one PostgreSQL store: the store's claims never hand one experiment
/// or one board to two of them.
public final class QueueWorker {
    public struct Configuration: Sendable {
        /// The bench host whose boards this worker runs.
        public var host: String
        /// This worker's name, unique among the live workers sharing the store (it holds leases).
        /// Keep it across restarts: a worker starting under a name takes back at once what
        /// the dead worker of that name was running.
        public var name: String
        /// The program run for each experiment (the definition file is appended).
        public var command: [String]
        public var leaseDuration: TimeInterval = 30
        /// How often leases are renewed; well under `leaseDuration`.
        public var heartbeatInterval: TimeInterval = 5
        public var maxAttempts = 3
        public var policy = SchedulingPolicy.standard
        /// Where definition files are written for the processes.
        public var scratch: URL
        /// Tells submitters when their experiments end, and the operator when a board fails.
        public var notifier = Notifier()
        /// The program that checks a board whose health is `unknown` (new, or after an
        /// infrastructure failure), with `MLBENCH_BOARD` in its environment: exit 0 makes it
        /// `good`, anything else (or no answer within `healthCheckTimeout`) `bad`, and the
        /// operator is told. Nil: such boards wait for the operator (`mlbench boards health`).
        public var healthCheck: [String]?
        public var healthCheckTimeout: TimeInterval = 300

        public init(host: String, name: String, command: [String], scratch: URL) {
            self.host = host
            self.name = name
            self.command = command
            self.scratch = scratch
        }
    }

    /// The exit status that means "the infrastructure failed, not the experiment".
    public static let infrastructureFailureStatus: Int32 = 75

    private struct Running {
        var lease: Lease
        var process: ChildProcess
        var definition: URL
        var lastHeartbeat: Date
        var output: [String]
        /// Lines of its standard error (its progress) already copied to the store's step log.
        var loggedLines = 0
        var lastLogged: Date? = nil
    }

    public let store: LabStore
    public let configuration: Configuration
    private var running = [String: Running]()
    /// When abandoned experiments were last looked for (nil: not yet, this worker just started).
    private var lastRequeue: Date?
    /// Health checks under way, by board.
    private var checks = [String: (process: ChildProcess, started: Date)]()
    private let log: (String) -> Void

    public init(store: LabStore, configuration: Configuration, log: @escaping (String) -> Void = { _ in }) throws {
        guard !configuration.command.isEmpty else { throw LabError.usage("the worker needs a command to run each experiment") }
        guard configuration.heartbeatInterval < configuration.leaseDuration else {
            throw LabError.usage("the heartbeat interval (\(configuration.heartbeatInterval) s) must be shorter than the lease (\(configuration.leaseDuration) s)")
        }
        self.store = store
        self.configuration = configuration
        self.log = log
        try FileManager.default.createDirectory(at: configuration.scratch, withIntermediateDirectories: true)
    }

    /// How many experiments this worker is running now.
    public var inFlight: Int { running.count }

    /// Works until `shouldStop` says so, or — with `drain` — until nothing is running, no
    /// health check is under way and nothing can be claimed.
    public func run(drain: Bool, poll: TimeInterval = 0.02, shouldStop: () -> Bool = { false }) throws {
        while !shouldStop() {
            let claimed = try step(at: Date())
            if drain && claimed == 0 && running.isEmpty && checks.isEmpty { return }
            if claimed == 0 { Thread.sleep(forTimeInterval: poll) }
        }
    }

    /// One round: requeue dead workers' experiments, look after the running processes,
    /// start what can start. Returns how many experiments it started.
    @discardableResult
    public func step(at now: Date) throws -> Int {
        // Once at start, what this worker's former self (same name) was running is taken back
        // at once; after that, once per heartbeat interval, experiments of this host whose
        // lease expired.
        if lastRequeue.map({ now.timeIntervalSince($0) >= configuration.heartbeatInterval }) ?? true {
            let former = lastRequeue == nil ? configuration.name : nil
            for id in try store.requeueAbandoned(host: configuration.host, formerWorker: former, maxAttempts: configuration.maxAttempts,
                                                 at: now, beforeEach: { Self.killLeftovers(of: $0.id) }) {
                log("requeued \(id): its worker is gone")
            }
            lastRequeue = now
        }
        for id in Array(running.keys) { try tend(id, now: now) }
        try checkHealth(now: now)
        // Every free board at once, in one transaction.
        let leases = try store.claim(host: configuration.host, worker: configuration.name, leaseDuration: configuration.leaseDuration,
                                     policy: configuration.policy, at: now, limit: Int.max)
        for lease in leases { try start(lease, now: now) }
        return leases.count
    }

    private func start(_ lease: Lease, now: Date) throws {
        let experiment = lease.experiment
        let definition = configuration.scratch.appendingPathComponent("\(experiment.id).yaml")
        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_EXPERIMENT_ID"] = experiment.id
        environment["MLBENCH_BOARD"] = experiment.board
        environment["MLBENCH_USER"] = experiment.user
        environment["MLBENCH_HOST"] = configuration.host
        environment["MLBENCH_WORKER"] = configuration.name
        environment["MLBENCH_EXPERIMENT_DIRECTORY"] = experiment.directory
        do {
            try experiment.definition.write(to: definition, atomically: true, encoding: .utf8)
            let process = try ChildProcess(configuration.command + [definition.path], environment: environment)
            process.closeInput()
            running[experiment.id] = Running(lease: lease, process: process, definition: definition, lastHeartbeat: now, output: [])
            log("started \(experiment.id) (\(experiment.name), \(experiment.user)) on \(experiment.board), pid \(process.pid)")
        } catch {
            // The worker cannot start processes: the host is at fault, not the experiment.
            try store.failInfrastructure(experiment: experiment.id, worker: configuration.name,
                                         reason: "cannot start the experiment's process: \(error)",
                                         maxAttempts: configuration.maxAttempts, at: now)
            try? FileManager.default.removeItem(at: definition)
        }
    }

    private func tend(_ id: String, now: Date) throws {
        guard var entry = running[id] else { return }
        // Drain its output so that it never blocks on a full pipe.
        while let line = try? entry.process.readLine(timeout: 0.001) { entry.output.append(line) }
        if let status = try? entry.process.wait(timeout: 0) {
            while let line = try? entry.process.readLine(timeout: 0.05) { entry.output.append(line) }
            copyLog(&entry, id: id, final: true, now: now)
            running[id] = nil
            try? FileManager.default.removeItem(at: entry.definition)
            try finish(entry, status: status, now: now)
            return
        }
        if entry.lastLogged.map({ now.timeIntervalSince($0) >= 0.5 }) ?? true { copyLog(&entry, id: id, final: false, now: now) }
        running[id] = entry
        guard now.timeIntervalSince(entry.lastHeartbeat) >= configuration.heartbeatInterval else { return }
        switch try store.heartbeat(experiment: id, worker: configuration.name, leaseDuration: configuration.leaseDuration, at: now) {
        case .renewed:
            running[id]?.lastHeartbeat = now
        case .revoked(let why):
            log("stopping \(id): \(why)")
            entry.process.terminate()
            _ = try? entry.process.wait(timeout: 10)
            running[id] = nil
            try? FileManager.default.removeItem(at: entry.definition)
        }
    }

    /// Copies the complete lines of the process's standard error that are new since the
    /// last copy into the store's step log (what `mlbench serve` streams). Best effort: the
    /// log never stops an experiment, and it stops growing once the process has written
    /// more than the kept tail of its standard error.
    private func copyLog(_ entry: inout Running, id: String, final: Bool, now: Date) {
        entry.lastLogged = now
        let text = entry.process.stderr
        guard text.utf8.count < ChildProcess.stderrLimit else { return }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if !final || lines.last == "" { lines.removeLast() }
        guard lines.count > entry.loggedLines else { return }
        do {
            try store.appendLog(experiment: id, lines: Array(lines[entry.loggedLines...]), at: now)
            entry.loggedLines = lines.count
        } catch {
            log("\(id): step log not stored: \(error)")
        }
    }

    private func finish(_ entry: Running, status: Int32, now: Date) throws {
        let id = entry.lease.experiment.id
        let stderr = String(entry.process.stderr.suffix(2000))
        // A failed run may have stored a result too (mlbench run stores failures).
        let resultID = status < 0 ? nil : entry.output.last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }?.trimmingCharacters(in: .whitespaces)
        do {
            switch status {
            case 0:
                try store.complete(experiment: id, worker: configuration.name, state: .succeeded, resultID: resultID, note: nil,
                                   policy: configuration.policy, at: now)
                log("\(id) succeeded\(resultID.map { ", result \($0)" } ?? "")")
                notify(entry.lease.experiment, .succeeded, resultID: resultID, note: nil)
            case Self.infrastructureFailureStatus:
                try store.failInfrastructure(experiment: id, worker: configuration.name, reason: stderr.isEmpty ? "exit status 75" : stderr,
                                             maxAttempts: configuration.maxAttempts, at: now)
                log("\(id): infrastructure failure, requeued; board \(entry.lease.experiment.board) needs a health check")
                let message = Notifier.boardFailed(entry.lease.experiment.board, host: configuration.host, reason: stderr.isEmpty ? "exit status 75" : stderr)
                report(configuration.notifier.send(message, email: configuration.notifier.operatorEmail,
                                                   webhook: configuration.notifier.operatorWebhook))
            default:
                let how = status < 0 ? "its process was killed by signal \(-status)" : "its process exited with status \(status)"
                let note = stderr.isEmpty ? how : "\(how): \(stderr)"
                try store.complete(experiment: id, worker: configuration.name, state: .failed, resultID: resultID,
                                   note: note, policy: configuration.policy, at: now)
                log("\(id) failed: \(how)")
                notify(entry.lease.experiment, .failed, resultID: resultID, note: note)
            }
        } catch {
            // The lease was revoked while the process finished (aborted, expired, given to
            // another worker): its outcome no longer counts. Anything else is the store's failure.
            guard let now = try store.experiment(id: id), QueueState.running != now.state || now.leaseOwner != configuration.name else {
                throw error
            }
            log("\(id): outcome dropped: \(error)")
        }
    }

    /// Starts a health check for each enabled board of this host whose health is unknown,
    /// and records the verdicts of those that ended. Checks run beside experiments, so
    /// heartbeats go on meanwhile.
    private func checkHealth(now: Date) throws {
        guard let command = configuration.healthCheck else { return }
        for (board, check) in checks {
            while (try? check.process.readLine(timeout: 0.001)) != nil {} // its output only needs draining
            let status = try? check.process.wait(timeout: 0)
            let overdue = now.timeIntervalSince(check.started) > configuration.healthCheckTimeout
            guard status != nil || overdue else { continue }
            if status == nil { check.process.terminate(); _ = try? check.process.wait(timeout: 10) }
            checks[board] = nil
            if status == 0 {
                try store.setHealth(.good, board: board, note: "health check passed")
                log("board \(board): health check passed")
            } else {
                let why = status == nil ? "no answer within \(Int(configuration.healthCheckTimeout)) s"
                                        : "exit status \(status!): \(String(check.process.stderr.suffix(1000)))"
                try store.setHealth(.bad, board: board, note: "health check failed: \(why)")
                log("board \(board): health check failed: \(why)")
                report(configuration.notifier.send(Notifier.boardFailed(board, host: configuration.host, reason: "health check failed: \(why)"),
                                                   email: configuration.notifier.operatorEmail, webhook: configuration.notifier.operatorWebhook))
            }
        }
        for board in try store.boards() where board.host == configuration.host && board.enabled && board.health == .unknown
            && checks[board.name] == nil {
            var environment = ProcessInfo.processInfo.environment
            environment["MLBENCH_BOARD"] = board.name
            environment["MLBENCH_HOST"] = configuration.host
            do {
                let process = try ChildProcess(command, environment: environment)
                process.closeInput()
                checks[board.name] = (process, now)
                log("board \(board.name): health check started")
            } catch {
                try store.setHealth(.bad, board: board.name, note: "health check could not start: \(error)")
            }
        }
    }

    /// Tells the submitter, where they asked to be told.
    private func notify(_ experiment: QueuedExperiment, _ state: QueueState, resultID: String?, note: String?) {
        guard experiment.notifyEmail != nil || experiment.notifyWebhook != nil else { return }
        report(configuration.notifier.send(Notifier.finished(experiment, state: state, resultID: resultID, note: note),
                                           email: experiment.notifyEmail, webhook: experiment.notifyWebhook))
    }

    private func report(_ failures: [String]) {
        for failure in failures { log("notification not delivered: \(failure)") }
    }

    /// Kills every process still running for experiment `id` on this machine: the processes a
    /// worker killed with SIGKILL left behind (they carry `MLBENCH_EXPERIMENT_ID` in their
    /// environment, as do their own children). Linux only (/proc).
    static func killLeftovers(of id: String) {
        #if os(Linux)
        let marker = Array("MLBENCH_EXPERIMENT_ID=\(id)".utf8)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
        for entry in entries {
            guard let pid = pid_t(entry), pid != getpid(),
                  let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            if environment.split(separator: 0).contains(where: { Array($0) == marker }) {
                kill(pid, SIGKILL)
            }
        }
        #endif
    }

    /// Kills every running process (their leases expire and other workers requeue them).
    public func stopAll() {
        for entry in running.values {
            entry.process.terminate()
            _ = try? entry.process.wait(timeout: 10)
            try? FileManager.default.removeItem(at: entry.definition)
        }
        running.removeAll()
    }
}
