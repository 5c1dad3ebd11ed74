import Foundation

/// The health of a board, as the lab sees it. Only `good` boards are given work;
/// a new board, or one whose experiment hit an infrastructure error, is `unknown`
/// until a health check says `good` or `bad`.
public enum BoardHealth: String, Codable, Sendable, CaseIterable {
    case good, unknown, bad, maintenance, retired
}

/// A board of the lab, and the bench host that drives it.
public struct LabBoard: Codable, Sendable, Equatable {
    public var name: String
    /// The bench host whose workers run this board's experiments.
    public var host: String
    public var health: BoardHealth
    /// Set by the operator; a disabled board keeps its queue but starts nothing.
    public var enabled: Bool
    /// Why the health or the enabled flag last changed.
    public var note: String?
}

/// Where a queued experiment is in its life.
public enum QueueState: String, Codable, Sendable, CaseIterable {
    case queued, running, suspended, succeeded, failed, aborted

    /// States an experiment never leaves.
    public var isFinal: Bool { self == .succeeded || self == .failed || self == .aborted }
}

/// An experiment to run, as submitted.
public struct Submission: Codable, Sendable, Equatable {
    public var user: String
    public var name: String
    public var board: String
    /// The series or sweep it belongs to, if any (abort/suspend/resume act on all of it).
    public var series: String?
    /// The experiment definition (its file's text), so that it can run and be replayed later.
    public var definition: String
    /// The folder its relative paths (model, inputs) resolve against: the submitted file's.
    public var directory: String?
    /// Where to tell the submitter that it finished or failed.
    public var notifyEmail: String?
    public var notifyWebhook: String?

    public init(user: String, name: String, board: String, series: String? = nil, definition: String, directory: String? = nil,
                notifyEmail: String? = nil, notifyWebhook: String? = nil) {
        self.user = user
        self.name = name
        self.board = board
        self.series = series
        self.definition = definition
        self.directory = directory
        self.notifyEmail = notifyEmail
        self.notifyWebhook = notifyWebhook
    }
}

/// An experiment in the queue: what was submitted (its fields read through, as
/// `experiment.user`), and its state.
@dynamicMemberLookup
public struct QueuedExperiment: Codable, Sendable, Equatable {
    public var id: String
    /// Submission order.
    public var sequence: Int64
    public var submission: Submission
    public var state: QueueState
    public var submittedAt: Date
    /// How many times it was started (a lease taken).
    public var attempts: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The stored result, once there is one.
    public var resultID: String?
    /// Why it failed, was aborted or was requeued last.
    public var note: String?

    public subscript<Value>(dynamicMember field: KeyPath<Submission, Value>) -> Value { submission[keyPath: field] }
}

/// The right to run one experiment, held by one worker until it expires; the worker
/// renews it with heartbeats.
public struct Lease: Sendable, Equatable {
    public var experiment: QueuedExperiment
    public var worker: String
    public var expiresAt: Date
}

/// What a worker is told when it renews its lease.
public enum LeaseVerdict: Sendable, Equatable {
    /// Go on; the lease now lasts until this moment.
    case renewed(until: Date)
    /// Stop: the experiment was aborted, suspended, preempted by a reservation or given
    /// to another worker after the lease expired. The reason says which.
    case revoked(String)
}

/// What abort, suspend and resume act on.
public enum QueueTarget: Sendable, Equatable, CustomStringConvertible {
    case experiment(String)
    case series(String)

    public var description: String {
        switch self {
        case .experiment(let id): return "experiment \(id)"
        case .series(let name): return "series '\(name)'"
        }
    }
}

/// Board time used by one experiment (the per-user and per-experiment usage log).
public struct UsageRecord: Codable, Sendable, Equatable {
    public var experimentID: String
    public var user: String
    public var board: String
    public var seconds: Double
    public var finishedAt: Date
}

/// The experiment queue and the board registry: what the scheduler and the workers of
/// every bench host share. SQLite (one host) and PostgreSQL (several) implement it, in
/// `LabStore`. Times are passed in (`now`) so that behaviour is the same for every
/// caller and testable; hosts sharing a store must keep their clocks synchronised (NTP).
public protocol ExperimentQueue {
    /// Adds a board or changes the host that drives it; a new board's health is `unknown`.
    func registerBoard(_ name: String, host: String) throws
    func boards() throws -> [LabBoard]
    /// Records a health verdict (from a health check, or the operator's).
    func setHealth(_ health: BoardHealth, board: String, note: String?) throws
    /// The operator's switch: a disabled board starts nothing.
    func setEnabled(_ enabled: Bool, board: String, note: String?) throws

    /// Holds `board` for `user` from `start` to `end`; refused when it overlaps another reservation.
    func reserve(board: String, user: String, from start: Date, to end: Date) throws -> Reservation
    func reservations() throws -> [Reservation]
    func cancelReservation(id: String) throws

    /// Queues an experiment on its board (FIFO per board among the eligible).
    func submit(_ submission: Submission, at now: Date) throws -> QueuedExperiment
    /// Starts experiments chosen by `policy` on free boards of `host`, at most one per board
    /// and `limit` in all, in one transaction; empty when no board of that host can start
    /// anything. Each lease lasts `leaseDuration`.
    func claim(host: String, worker: String, leaseDuration: TimeInterval, policy: SchedulingPolicy, at now: Date,
               limit: Int) throws -> [Lease]
    /// Renews a lease, or tells the worker to stop. An expired lease is never renewed: its
    /// experiment may already be requeued, and its process killed.
    func heartbeat(experiment id: String, worker: String, leaseDuration: TimeInterval, at now: Date) throws -> LeaseVerdict
    /// The experiment finished and its result is stored (`succeeded` or `failed` alike).
    func complete(experiment id: String, worker: String, state: QueueState, resultID: String?, note: String?,
                  policy: SchedulingPolicy, at now: Date) throws
    /// The infrastructure failed (board unreachable, worker crashed): the experiment goes back
    /// to the queue (up to `maxAttempts` starts, then it fails) and the board is marked
    /// `unknown` until a health check.
    func failInfrastructure(experiment id: String, worker: String, reason: String, maxAttempts: Int, at now: Date) throws
    /// Requeues the experiments on `host`'s boards whose worker is gone: their lease expired,
    /// or they are leased to `formerWorker` (a worker restarting under its old name knows its
    /// former self is dead). `beforeEach` runs first for each, inside the transaction — the
    /// worker kills what the dead one left running, so that a requeued experiment never runs
    /// twice at once. After `maxAttempts` starts an experiment fails instead. Returns their ids.
    ///
    /// Only `host`'s own workers requeue its boards' experiments: only they can see and stop
    /// the processes left behind, and only they can run those boards anyway.
    func requeueAbandoned(host: String, formerWorker: String?, maxAttempts: Int, at now: Date,
                          beforeEach: (QueuedExperiment) throws -> Void) throws -> [String]

    /// Stops for good: queued ones never start, running ones are told at their next heartbeat.
    func abort(_ target: QueueTarget, reason: String, at now: Date) throws -> Int
    /// Holds queued experiments back (running ones are stopped at their next heartbeat and
    /// will start again from the beginning when resumed).
    func suspend(_ target: QueueTarget, at now: Date) throws -> Int
    /// Puts suspended experiments back in the queue, in their original order.
    func resume(_ target: QueueTarget, at now: Date) throws -> Int

    func experiment(id: String) throws -> QueuedExperiment?
    /// Experiments in submission order, optionally only those in `state`.
    func experiments(state: QueueState?) throws -> [QueuedExperiment]
    /// Board time per experiment, the newest first, optionally for one user.
    func usage(user: String?) throws -> [UsageRecord]
}

extension ExperimentQueue {
    /// Starts the next experiment on a free board of `host`, or nil.
    public func claim(host: String, worker: String, leaseDuration: TimeInterval, policy: SchedulingPolicy, at now: Date) throws -> Lease? {
        try claim(host: host, worker: worker, leaseDuration: leaseDuration, policy: policy, at: now, limit: 1).first
    }
}
