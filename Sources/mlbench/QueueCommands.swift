import ArgumentParser
import Foundation
import MLBench
import MLBenchCore

/// Who is submitting: $MLBENCH_USER, else the login name.
func currentUser() -> String {
    ProcessInfo.processInfo.environment["MLBENCH_USER"] ?? ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
}

/// Where the submitter is told that an experiment finished or failed.
struct NotifyOptions: ParsableArguments {
    @Option(name: .customLong("notify-email"), help: "Email address (default: $MLBENCH_NOTIFY_EMAIL).")
    var explicitEmail: String?
    @Option(name: .customLong("notify-webhook"), help: "Webhook URL receiving a JSON POST (default: $MLBENCH_NOTIFY_WEBHOOK).")
    var explicitWebhook: String?

    var email: String? { explicitEmail ?? ProcessInfo.processInfo.environment["MLBENCH_NOTIFY_EMAIL"].flatMap { $0.isEmpty ? nil : $0 } }
    var webhook: String? { explicitWebhook ?? ProcessInfo.processInfo.environment["MLBENCH_NOTIFY_WEBHOOK"].flatMap { $0.isEmpty ? nil : $0 } }
}

/// What submit and sweep share: the experiment file, whom to tell, the lab and the store.
struct SubmitOptions: ParsableArguments {
    @Argument(help: "The experiment file (YAML).") var experiment: String
    @OptionGroup var notify: NotifyOptions
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    var notifyChoice: Submitting.Notify { Submitting.Notify(email: notify.email, webhook: notify.webhook) }
}

/// What abort, suspend and resume share: an experiment id or `--series NAME`, and the store.
struct QueueAction: ParsableArguments {
    @Argument(help: "The queued experiment's id.") var id: String?
    @Option(help: "Act on every experiment of this series or sweep instead.") var series: String?
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    /// Applies `action` to the target and prints how many experiments it changed.
    func perform(_ done: String, _ action: (LabStore, QueueTarget) throws -> Int) throws {
        try report {
            let target: QueueTarget
            switch (id, series) {
            case (let id?, nil): target = .experiment(id)
            case (nil, let series?): target = .series(series)
            default: throw Failure(description: "name either an experiment id or --series NAME")
            }
            let count = try action(try storeOptions.open(try options.lab()), target)
            print("\(done) \(count) experiment\(count == 1 ? "" : "s")")
        }
    }
}

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "The experiment queue: submit, list, abort, suspend, resume.",
        subcommands: [Submit.self, Sweep.self, List.self, Abort.self, Suspend.self, Resume.self, Usage.self])

    struct Usage: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Board time used, per user (with the fair share's decayed usage) and per experiment.")
        @Option(help: "Only this user.") var user: String?
        @Flag(help: "One line per experiment as well.") var experiments = false
        @Option(help: "Fair-share half-life of past usage, in hours (as given to mlbench worker).") var usageHalfLife: Double = 6
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                guard usageHalfLife > 0 else { throw Failure(description: "--usage-half-life must be positive (got \(usageHalfLife))") }
                let store = try storeOptions.open(try options.lab())
                let records = try store.usage(user: user)
                let decayed = try store.decayedUsage(policy: SchedulingPolicy(usageHalfLife: usageHalfLife * 3600), at: Date())
                var rows = [["USER", "EXPERIMENTS", "BOARD TIME", "FAIR-SHARE USAGE NOW"]]
                for (name, mine) in Dictionary(grouping: records, by: \.user).sorted(by: { $0.key < $1.key }) {
                    rows.append([name, "\(mine.count)", String(format: "%.1f s", mine.reduce(0) { $0 + $1.seconds }),
                                 String(format: "%.1f s", decayed[name] ?? 0)])
                }
                print(rows.count == 1 ? "no usage recorded" : ResultPresenter.table(rows))
                if experiments && !records.isEmpty {
                    var lines = [["EXPERIMENT", "USER", "BOARD", "SECONDS", "FINISHED"]]
                    for record in records {
                        lines.append([String(record.experimentID.prefix(8)), record.user, record.board, String(format: "%.1f", record.seconds),
                                      ResultCoding.timestamp(record.finishedAt)])
                    }
                    print("\n" + ResultPresenter.table(lines))
                }
            }
        }
    }

    struct Submit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue an experiment on the board its file names.")
        @OptionGroup var submission: SubmitOptions
        @Option(help: "The series it belongs to (abort, suspend and resume act on a whole series).") var series: String?

        @Flag(help: "Let the lab choose the board: the compatible board (same plugin and kind as the file's) that is enabled, in good health and least busy.")
        var anyBoard = false

        func run() throws {
            try report {
                let (file, lab) = try (ExperimentFile.load(submission.experiment), submission.options.lab())
                let store = try submission.storeOptions.open(lab)
                let board = anyBoard ? try Submitting.placement(for: file, lab: lab, store: store) : nil
                let queued = try Submitting.submit(file, lab: lab, store: store, user: currentUser(), board: board, series: series,
                                                   notify: submission.notifyChoice)
                print(queued.id)
            }
        }
    }

    struct Sweep: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue an experiment on every compatible board (same plugin as its board, registered, not retired), for every combination of the swept values, as one series.")
        @OptionGroup var submission: SubmitOptions
        @Option(name: .customLong("set"), help: "A swept parameter: PATH=V1,V2,... (repeatable), e.g. toolchain.options.opt_level=2,3.")
        var parameters: [String] = []
        @Option(help: "Only these boards (repeatable); default: every compatible board.") var board: [String] = []
        @Option(help: "The series' name. Default: sweep-<name>-<random>.") var series: String?

        func run() throws {
            try report {
                let (file, lab) = try (ExperimentFile.load(submission.experiment), submission.options.lab())
                let store = try submission.storeOptions.open(lab)
                let outcome = try Submitting.sweep(file, lab: lab, store: store, user: currentUser(), parameters: parameters, boards: board,
                                                   series: series, notify: submission.notifyChoice)
                print("\(outcome.series): \(outcome.experiments.count) experiment\(outcome.experiments.count == 1 ? "" : "s") on \(outcome.boards.joined(separator: ", "))")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queued, running and finished experiments in submission order.")
        @Option(help: "Only those in this state (\(QueueState.allCases.map(\.rawValue).joined(separator: ", "))).") var state: String?
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let filter = try state.map { name in
                    guard let state = QueueState(rawValue: name) else {
                        throw Failure(description: "--state '\(name)' is not a state (\(QueueState.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    return state
                }
                let store = try storeOptions.open(try options.lab())
                var rows = [["ID", "NAME", "USER", "BOARD", "SERIES", "STATE", "ATTEMPTS", "WORKER", "NOTE"]]
                for experiment in try store.experiments(state: filter) {
                    rows.append([String(experiment.id.prefix(8)), experiment.name, experiment.user, experiment.board,
                                 experiment.series ?? "", experiment.state.rawValue, "\(experiment.attempts)",
                                 experiment.leaseOwner ?? "", experiment.note ?? ""])
                }
                print(rows.count == 1 ? "the queue is empty" : ResultPresenter.table(rows))
            }
        }
    }

    struct Abort: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Abort an experiment or a series (a running one is stopped).")
        @OptionGroup var action: QueueAction
        @Option(help: "Why (kept with the experiment).") var reason = "aborted by \(currentUser())"
        func run() throws { try action.perform("aborted") { try $0.abort($1, reason: reason, at: Date()) } }
    }

    struct Suspend: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hold an experiment or a series back (a running one starts again on resume).")
        @OptionGroup var action: QueueAction
        func run() throws { try action.perform("suspended") { try $0.suspend($1, at: Date()) } }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a suspended experiment or series back in the queue.")
        @OptionGroup var action: QueueAction
        func run() throws { try action.perform("resumed") { try $0.resume($1, at: Date()) } }
    }
}

struct Boards: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The board registry: hosts, health, operator enable/disable, reservations.",
        subcommands: [List.self, Register.self, Health.self, Enable.self, Disable.self, Reserve.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List boards and reservations.")
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let store = try storeOptions.open(try options.lab())
                var rows = [["BOARD", "HOST", "HEALTH", "ENABLED", "NOTE"]]
                for board in try store.boards() {
                    rows.append([board.name, board.host, board.health.rawValue, board.enabled ? "yes" : "no", board.note ?? ""])
                }
                print(rows.count == 1 ? "no board is registered" : ResultPresenter.table(rows))
                let reservations = try store.reservations()
                if !reservations.isEmpty {
                    var table = [["RESERVATION", "BOARD", "USER", "FROM", "TO"]]
                    for reservation in reservations {
                        table.append([reservation.id, reservation.board, reservation.user,
                                      ResultCoding.timestamp(reservation.start), ResultCoding.timestamp(reservation.end)])
                    }
                    print("\n" + ResultPresenter.table(table))
                }
            }
        }
    }

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a board (health unknown until checked) or move it to another host.")
        @Argument var board: String
        @Option(help: "The bench host that drives it.") var host: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report { try storeOptions.open(try options.lab()).registerBoard(board, host: host) }
        }
    }

    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a board's health (\(BoardHealth.allCases.map(\.rawValue).joined(separator: ", "))).")
        @Argument var board: String
        @Argument var health: String
        @Option(help: "Why.") var note: String?
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                guard let value = BoardHealth(rawValue: health) else {
                    throw Failure(description: "'\(health)' is not a board health (\(BoardHealth.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                try storeOptions.open(try options.lab()).setHealth(value, board: board, note: note)
            }
        }
    }

    /// What enable and disable share: the board, why, and the store.
    struct Switch: ParsableArguments {
        @Argument var board: String
        @Option(help: "Why.") var note: String?
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func set(enabled: Bool) throws {
            try report { try storeOptions.open(try options.lab()).setEnabled(enabled, board: board, note: note) }
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a board start work again.")
        @OptionGroup var arguments: Switch
        func run() throws { try arguments.set(enabled: true) }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a board from starting work (its queue is kept).")
        @OptionGroup var arguments: Switch
        func run() throws { try arguments.set(enabled: false) }
    }

    struct Reserve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reserve a board for yourself during a time window.")
        @Argument var board: String
        @Option(help: "Start (ISO 8601, e.g. 2026-11-24T09:00:00.000Z).") var from: String
        @Option(help: "End (ISO 8601).") var to: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                guard let start = ResultCoding.date(from) ?? ISO8601DateFormatter().date(from: from) else {
                    throw Failure(description: "--from '\(from)' is not an ISO 8601 time")
                }
                guard let end = ResultCoding.date(to) ?? ISO8601DateFormatter().date(from: to) else {
                    throw Failure(description: "--to '\(to)' is not an ISO 8601 time")
                }
                let reservation = try storeOptions.open(try options.lab()).reserve(board: board, user: currentUser(), from: start, to: end)
                print(reservation.id)
            }
        }
    }
}

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the queue of one bench host: claim experiments for its boards, each in its own process.",
        discussion: """
            The process of each experiment is COMMAND followed by the experiment file; its exit status
            decides the outcome (0 succeeded, 75 infrastructure failure and requeue, else failed).
            """)
    @Option(help: "The bench host whose boards this worker runs.") var host: String
    @Option(help: "This worker's name: unique among live workers, the same across restarts (a restarted worker takes back what it was running). Default: the host.") var name: String?
    @Option(help: "Seconds a lease lasts without a heartbeat.") var lease: Double = 30
    @Option(help: "Seconds between heartbeats.") var heartbeat: Double = 5
    @Option(help: "Starts of one experiment before it fails (crashes, infrastructure errors).") var maxAttempts = 3
    @Option(help: "Fair-share half-life of past usage, in hours.") var usageHalfLife: Double = 6
    @Flag(help: "Stop once nothing runs and nothing can start.") var drain = false
    @Option(help: "The SMTP relay for notifications, HOST:PORT (plain SMTP).") var smtp: String?
    @Option(help: "The sender of notification emails.") var mailFrom = "mlbench@localhost"
    @Option(help: "Where board failures are emailed.") var operatorEmail: String?
    @Option(help: "Where board failures are posted (a webhook URL).") var operatorWebhook: String?
    @Option(help: "A program checking a board of unknown health (MLBENCH_BOARD in its environment; exit 0 = good). Without it, such boards wait for `mlbench boards health`.")
    var healthCheck: String?
    @Argument(parsing: .postTerminator, help: "The program (and its arguments) run for each experiment, after --.") var command: [String] = []
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        try report {
            let lab = try options.lab()
            guard usageHalfLife > 0 else { throw Failure(description: "--usage-half-life must be positive (got \(usageHalfLife))") }
            var configuration = QueueWorker.Configuration(
                host: host, name: name ?? host, command: command,
                scratch: lab.home.scratch.appendingPathComponent("queue", isDirectory: true))
            configuration.leaseDuration = lease
            configuration.heartbeatInterval = heartbeat
            configuration.maxAttempts = maxAttempts
            configuration.policy = SchedulingPolicy(usageHalfLife: usageHalfLife * 3600)
            configuration.notifier = Notifier(smtp: smtp, mailFrom: mailFrom, operatorEmail: operatorEmail, operatorWebhook: operatorWebhook)
            configuration.healthCheck = healthCheck.map { ["/bin/sh", "-c", $0] }
            let worker = try QueueWorker(store: try storeOptions.open(lab), configuration: configuration) { line in
                FileHandle.standardError.write(Data("\(line)\n".utf8))
            }
            try worker.run(drain: drain)
        }
    }
}
