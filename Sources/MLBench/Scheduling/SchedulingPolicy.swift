import Foundation

/// Which queued experiment runs next on which free board: the lab's usage policy,
/// as pure code (no database, no clock) so that it can be read, tested and documented.
///
/// The rules, in order:
/// 1. **Only free, eligible boards are considered**: enabled, health `good`, no experiment
///    running. The store works that out; the policy gets the free boards.
/// 2. **Reservations**: while a reservation's window is open on a board, only the holder's
///    experiments are eligible there. Nobody else's work starts on it, even if the holder
///    has nothing queued (that is what a reservation is for).
/// 3. **Fair share between users**: among the users with eligible work on a board, the one
///    with the least *decayed usage* goes first. A user's usage is the board time of their
///    experiments, each second weighing `0.5^(age / usageHalfLife)`: yesterday's heavy user
///    is not punished forever, and a user who submits a hundred experiments does not starve
///    one who submits two — turns alternate as usage evens out. Ties go to the earlier submission.
/// 4. **FIFO per board**: each user's experiments on a board run in submission order.
/// 5. **Work conserving**: a free board with eligible work always gets some. Usage only
///    orders users; it never holds work back (REQ-00013: the policy shall not prevent a
///    resource from being used when it is free).
public struct SchedulingPolicy: Sendable, Equatable {
    /// How fast past usage is forgotten: usage counts half after this many seconds.
    public var usageHalfLife: TimeInterval

    /// Six hours: a day's heavy use still counts a sixteenth the next day.
    public static let standard = SchedulingPolicy(usageHalfLife: 6 * 3600)

    public init(usageHalfLife: TimeInterval) {
        precondition(usageHalfLife > 0, "the usage half-life must be positive")
        self.usageHalfLife = usageHalfLife
    }

    /// The oldest queued experiment of one user on one board (FIFO per user and board
    /// makes only this one a candidate).
    public struct Candidate: Sendable, Equatable {
        public var experimentID: String
        /// Submission order across the whole queue.
        public var sequence: Int64
        public var user: String
        public var board: String

        public init(experimentID: String, sequence: Int64, user: String, board: String) {
            self.experimentID = experimentID
            self.sequence = sequence
            self.user = user
            self.board = board
        }
    }

    /// An experiment to start on a board.
    public struct Assignment: Sendable, Equatable {
        public var experimentID: String
        public var board: String
        public var user: String
    }

    /// Usage `seconds` accumulated up to `asOf`, decayed to `now`.
    public func decayed(_ seconds: Double, from asOf: Date, to now: Date) -> Double {
        let age = max(0, now.timeIntervalSince(asOf))
        return seconds * pow(0.5, age / usageHalfLife)
    }

    /// What starts now, at most one experiment per free board, best first (the board
    /// whose chosen user has the least usage, then the earliest submission).
    ///
    /// - Parameters:
    ///   - freeBoards: boards that can start an experiment now.
    ///   - candidates: the oldest queued experiment of each (user, board).
    ///   - reservations: reservations; only those open at `now` matter.
    ///   - usage: each user's decayed usage in seconds at `now` (absent means none).
    public func assign(freeBoards: [String], candidates: [Candidate], reservations: [Reservation],
                       usage: [String: Double], now: Date) -> [Assignment] {
        let free = Set(freeBoards)
        var holder = [String: String]()
        for reservation in reservations where free.contains(reservation.board) && reservation.isOpen(at: now) {
            holder[reservation.board] = reservation.user
        }
        var best = [String: Candidate]()
        for candidate in candidates where free.contains(candidate.board) {
            if let user = holder[candidate.board], user != candidate.user { continue }
            if let current = best[candidate.board], !precedes(candidate, current, usage) { continue }
            best[candidate.board] = candidate
        }
        return best.values.sorted { precedes($0, $1, usage) }
            .map { Assignment(experimentID: $0.experimentID, board: $0.board, user: $0.user) }
    }

    private func precedes(_ a: Candidate, _ b: Candidate, _ usage: [String: Double]) -> Bool {
        let (ua, ub) = (usage[a.user] ?? 0, usage[b.user] ?? 0)
        if ua != ub { return ua < ub }
        return a.sequence < b.sequence
    }
}

/// A board held for one user during a time window (REQ-00012).
public struct Reservation: Codable, Sendable, Equatable {
    public var id: String
    public var board: String
    public var user: String
    public var start: Date
    public var end: Date

    public init(id: String, board: String, user: String, start: Date, end: Date) {
        self.id = id
        self.board = board
        self.user = user
        self.start = start
        self.end = end
    }

    /// Whether the window holds `moment` (start included, end excluded).
    public func isOpen(at moment: Date) -> Bool { start <= moment && moment < end }
}
