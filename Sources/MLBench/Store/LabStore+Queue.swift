import Foundation

/// The experiment queue and board registry of `LabStore` (see `ExperimentQueue`).
/// Every change is one transaction; claims lock the boards they consider with
/// `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that workers of several hosts (or
/// several workers of one host) never start two experiments on a board, nor one
/// experiment twice.
extension LabStore {
    static let queueColumns = """
        id, seq, user_name, name, board, series, definition, state, submitted_at, attempts,
        lease_owner, lease_expires_at, started_at, finished_at, result_id, note, directory, notify_email, notify_webhook
        """

    static func queuedExperiment(_ row: [SQLValue]) throws -> QueuedExperiment {
        guard let id = row[0].text, let state = row[7].text.flatMap(QueueState.init(rawValue:)) else {
            throw LabError.store("a queue row cannot be read (id \(row[0]), state \(row[7]))")
        }
        return QueuedExperiment(
            id: id, sequence: row[1].integer ?? 0,
            submission: Submission(user: row[2].text ?? "", name: row[3].text ?? "", board: row[4].text ?? "", series: row[5].text,
                                   definition: row[6].text ?? "", directory: row[16].text,
                                   notifyEmail: row[17].text, notifyWebhook: row[18].text),
            state: state,
            submittedAt: row[8].date ?? Date(timeIntervalSince1970: 0), attempts: Int(row[9].integer ?? 0),
            leaseOwner: row[10].text, leaseExpiresAt: row[11].date, startedAt: row[12].date, finishedAt: row[13].date,
            resultID: row[14].text, note: row[15].text)
    }

    // MARK: Boards

    public func registerBoard(_ name: String, host: String) throws {
        guard !name.isEmpty, !host.isEmpty else { throw LabError.usage("a board needs a name and a host (got '\(name)' on '\(host)')") }
        try connection.transaction {
            let changed = try connection.execute("UPDATE boards SET host = ? WHERE name = ?", [.text(host), .text(name)])
            if changed == 0 {
                try connection.execute("INSERT INTO boards (name, host, health, enabled, note, changed_at) VALUES (?, ?, ?, 1, ?, ?)",
                                       [.text(name), .text(host), .text(BoardHealth.unknown.rawValue), .text("registered"),
                                        .time(Date())])
            }
        }
    }

    public func boards() throws -> [LabBoard] {
        try connection.query("SELECT name, host, health, enabled, note FROM boards ORDER BY name").map { row in
            LabBoard(name: row[0].text ?? "", host: row[1].text ?? "",
                        health: row[2].text.flatMap(BoardHealth.init(rawValue:)) ?? .unknown,
                        enabled: (row[3].integer ?? 0) != 0, note: row[4].text)
        }
    }

    public func setHealth(_ health: BoardHealth, board: String, note: String?) throws {
        try changeBoard(board, "health = ?", .text(health.rawValue), note: note)
    }

    public func setEnabled(_ enabled: Bool, board: String, note: String?) throws {
        try changeBoard(board, "enabled = ?", .integer(enabled ? 1 : 0), note: note)
    }

    private func changeBoard(_ board: String, _ assignment: String, _ value: SQLValue, note: String?) throws {
        let changed = try connection.execute("UPDATE boards SET \(assignment), note = ?, changed_at = ? WHERE name = ?",
                                             [value, .optional(note), .time(Date()), .text(board)])
        if changed == 0 { throw try unknownBoard(board) }
    }

    private func unknownBoard(_ board: String) throws -> LabError {
        let known = try boards().map(\.name)
        return LabError.usage("no board named '\(board)' in the store \(location) (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
    }

    // MARK: Reservations

    public func reserve(board: String, user: String, from start: Date, to end: Date) throws -> Reservation {
        guard end > start else {
            throw LabError.usage("a reservation of '\(board)' must end after it starts (from \(ResultCoding.timestamp(start)) to \(ResultCoding.timestamp(end)))")
        }
        return try connection.transaction {
            guard try !connection.query("SELECT 1 FROM boards WHERE name = ?", [.text(board)]).isEmpty else { throw try unknownBoard(board) }
            let clash = try connection.query("""
                SELECT user_name, starts_at, ends_at FROM reservations
                WHERE board = ? AND starts_at < ? AND ends_at > ? \(connection.dialect == .postgres ? "FOR UPDATE" : "")
                """, [.text(board), .time(end), .time(start)])
            if let other = clash.first {
                throw LabError.usage("board '\(board)' is already reserved by \(other[0].text ?? "?") from \(ResultCoding.timestamp(other[1].date ?? start)) to \(ResultCoding.timestamp(other[2].date ?? end))")
            }
            let reservation = Reservation(id: UUID().uuidString.lowercased(), board: board, user: user, start: start, end: end)
            try connection.execute("INSERT INTO reservations (id, board, user_name, starts_at, ends_at) VALUES (?, ?, ?, ?, ?)",
                                   [.text(reservation.id), .text(board), .text(user), .time(start), .time(end)])
            return reservation
        }
    }

    public func reservations() throws -> [Reservation] {
        try connection.query("SELECT id, board, user_name, starts_at, ends_at FROM reservations ORDER BY starts_at, id").map(Self.reservation)
    }

    public func cancelReservation(id: String) throws {
        if try connection.execute("DELETE FROM reservations WHERE id = ?", [.text(id)]) == 0 {
            throw LabError.usage("no reservation with id '\(id)'")
        }
    }

    static func reservation(_ row: [SQLValue]) -> Reservation {
        Reservation(id: row[0].text ?? "", board: row[1].text ?? "", user: row[2].text ?? "",
                    start: row[3].date ?? .distantPast, end: row[4].date ?? .distantPast)
    }

    // MARK: Submitting and claiming

    public func submit(_ submission: Submission, at now: Date) throws -> QueuedExperiment {
        guard !submission.user.isEmpty else { throw LabError.usage("experiment '\(submission.name)': no user submitted it") }
        return try connection.transaction {
            guard let health = try connection.query("SELECT health FROM boards WHERE name = ?", [.text(submission.board)]).first?.first?.text else {
                throw try unknownBoard(submission.board)
            }
            if health == BoardHealth.retired.rawValue {
                throw LabError.usage("experiment '\(submission.name)': board '\(submission.board)' is retired and takes no more work")
            }
            let id = UUID().uuidString.lowercased()
            try connection.execute("""
                INSERT INTO queue (id, user_name, name, board, series, definition, directory, notify_email, notify_webhook,
                                   state, submitted_at, attempts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, 0)
                """, [.text(id), .text(submission.user), .text(submission.name), .text(submission.board),
                      .optional(submission.series), .text(submission.definition), .optional(submission.directory),
                      .optional(submission.notifyEmail), .optional(submission.notifyWebhook), .time(now)])
            guard let stored = try experimentRow(id) else { throw LabError.store("experiment \(id) vanished after it was queued in \(location)") }
            return stored
        }
    }

    public func claim(host: String, worker: String, leaseDuration: TimeInterval, policy: SchedulingPolicy, at now: Date,
                      limit: Int) throws -> [Lease] {
        guard limit > 0 else { return [] }
        return try connection.transaction {
            // Boards this host may start something on; locked (PostgreSQL) so that another
            // claimer skips them until this transaction ends.
            let eligible = try connection.query("""
                SELECT name FROM boards WHERE host = ? AND enabled = 1 AND health = 'good' ORDER BY name \(connection.dialect.lockSkippingLocked)
                """, [.text(host)]).compactMap { $0.first?.text }
            guard !eligible.isEmpty else { return [] }
            // A new statement sees what claimers that held these boards before us committed.
            let marks = Self.placeholders(eligible.count)
            let busy = Set(try connection.query("SELECT board FROM queue WHERE state = 'running' AND board IN (\(marks))",
                                                eligible.map(SQLValue.text)).compactMap { $0.first?.text })
            let free = eligible.filter { !busy.contains($0) }
            // Board by board, so that each look at the queue reads one board's waiting work
            // (the oldest experiment of each user there), not the whole queue's.
            var context: (reservations: [Reservation], usage: [String: Double])?
            var leases = [Lease]()
            for board in free where leases.count < limit {
                let candidates = try connection.query("""
                    SELECT q.id, q.seq, q.user_name FROM queue q
                    JOIN (SELECT min(seq) AS head FROM queue WHERE state = 'queued' AND board = ? GROUP BY user_name) h ON q.seq = h.head
                    """, [.text(board)]).compactMap { row -> SchedulingPolicy.Candidate? in
                    guard let id = row[0].text, let seq = row[1].integer, let user = row[2].text else { return nil }
                    return SchedulingPolicy.Candidate(experimentID: id, sequence: seq, user: user, board: board)
                }
                guard !candidates.isEmpty else { continue }
                if context == nil {
                    let reservations = try connection.query("""
                        SELECT id, board, user_name, starts_at, ends_at FROM reservations
                        WHERE starts_at <= ? AND ends_at > ? AND board IN (\(Self.placeholders(free.count)))
                        """, [.time(now), .time(now)] + free.map(SQLValue.text)).map(Self.reservation)
                    context = (reservations, try decayedUsage(policy: policy, at: now))
                }
                guard let chosen = policy.assign(freeBoards: [board], candidates: candidates, reservations: context!.reservations,
                                                 usage: context!.usage, now: now).first else { continue }
                let expires = now.addingTimeInterval(leaseDuration)
                let rows = try connection.query("""
                    UPDATE queue SET state = 'running', lease_owner = ?, lease_expires_at = ?, started_at = ?,
                        attempts = attempts + 1, note = NULL
                    WHERE id = ? AND state = 'queued' RETURNING \(Self.queueColumns)
                    """, [.text(worker), .time(expires), .time(now), .text(chosen.experimentID)])
                guard let row = rows.first else { continue }
                leases.append(Lease(experiment: try Self.queuedExperiment(row), worker: worker, expiresAt: expires))
            }
            return leases
        }
    }

    /// Each user's usage at `now`, in seconds, as the fair share sees it: finished work
    /// decayed by the policy's half-life, plus the time so far of what is running.
    public func decayedUsage(policy: SchedulingPolicy, at now: Date) throws -> [String: Double] {
        var usage = [String: Double]()
        for row in try connection.query("SELECT user_name, decayed_seconds, as_of FROM user_usage") {
            guard let user = row[0].text, let seconds = row[1].real, let asOf = row[2].date else { continue }
            usage[user, default: 0] += policy.decayed(seconds, from: asOf, to: now)
        }
        for row in try connection.query("SELECT user_name, started_at FROM queue WHERE state = 'running'") {
            guard let user = row[0].text, let started = row[1].date else { continue }
            usage[user, default: 0] += max(0, now.timeIntervalSince(started))
        }
        return usage
    }

    // MARK: Leases

    public func heartbeat(experiment id: String, worker: String, leaseDuration: TimeInterval, at now: Date) throws -> LeaseVerdict {
        try connection.transaction {
            let experiment = try leased(id, lockedFor: worker)
            if let revoked = Self.revocation(experiment, worker: worker) { return .revoked(revoked) }
            if let expiry = experiment.leaseExpiresAt, expiry < now {
                return .revoked("its lease expired at \(ResultCoding.timestamp(expiry)); it will be requeued")
            }
            // A reservation whose window has opened takes the board back from other users' work.
            let holders = try connection.query("""
                SELECT user_name FROM reservations WHERE board = ? AND starts_at <= ? AND ends_at > ? AND user_name <> ?
                """, [.text(experiment.board), .time(now), .time(now), .text(experiment.user)])
            if let holder = holders.first?.first?.text {
                try connection.execute("""
                    UPDATE queue SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, started_at = NULL,
                        attempts = attempts - 1, note = ? WHERE id = ?
                    """, [.text("preempted: board '\(experiment.board)' is reserved by \(holder)"), .text(id)])
                return .revoked("board '\(experiment.board)' is reserved by \(holder) from now; the experiment goes back to the queue")
            }
            let until = now.addingTimeInterval(leaseDuration)
            try connection.execute("UPDATE queue SET lease_expires_at = ? WHERE id = ?", [.time(until), .text(id)])
            return .renewed(until: until)
        }
    }

    public func complete(experiment id: String, worker: String, state: QueueState, resultID: String?, note: String?,
                         policy: SchedulingPolicy, at now: Date) throws {
        guard state == .succeeded || state == .failed else {
            throw LabError.usage("an experiment completes as succeeded or failed, not \(state.rawValue)")
        }
        try connection.transaction {
            // The usual case in one statement: the worker still holds the lease.
            let rows = try connection.query("""
                UPDATE queue SET state = ?, finished_at = ?, result_id = ?, note = ?, lease_expires_at = NULL
                WHERE id = ? AND state = 'running' AND lease_owner = ? RETURNING user_name, board, started_at
                """, [.text(state.rawValue), .time(now), .optional(resultID), .optional(note), .text(id), .text(worker)])
            guard let row = rows.first, let user = row[0].text, let board = row[1].text else {
                let experiment = try leased(id, lockedFor: worker)
                // A worker that crashed after completing and completes again changes nothing.
                if experiment.state == state, experiment.resultID == resultID, experiment.leaseOwner == worker { return }
                throw LabError.store("experiment \(id) cannot be completed by \(worker): \(Self.revocation(experiment, worker: worker) ?? "its lease is gone")")
            }
            let seconds = max(0, now.timeIntervalSince(row[2].date ?? now))
            try connection.execute("INSERT INTO usage_log (experiment_id, user_name, board, seconds, finished_at) VALUES (?, ?, ?, ?, ?)",
                                   [.text(id), .text(user), .text(board), .real(seconds), .time(now)])
            try charge(user, seconds: seconds, policy: policy, at: now)
        }
    }

    /// Adds `seconds` to a user's decayed usage (read, decay, write; locked on PostgreSQL
    /// so that two hosts completing at once do not lose one of the two).
    private func charge(_ user: String, seconds: Double, policy: SchedulingPolicy, at now: Date) throws {
        let lock = connection.dialect == .postgres ? "FOR UPDATE" : ""
        if let row = try connection.query("SELECT decayed_seconds, as_of FROM user_usage WHERE user_name = ? \(lock)", [.text(user)]).first {
            let decayed = policy.decayed(row[0].real ?? 0, from: row[1].date ?? now, to: now)
            try connection.execute("UPDATE user_usage SET decayed_seconds = ?, as_of = ? WHERE user_name = ?",
                                   [.real(decayed + seconds), .time(now), .text(user)])
        } else {
            try connection.execute("""
                INSERT INTO user_usage (user_name, decayed_seconds, as_of) VALUES (?, ?, ?)
                ON CONFLICT (user_name) DO UPDATE SET decayed_seconds = user_usage.decayed_seconds + excluded.decayed_seconds
                """, [.text(user), .real(seconds), .time(now)])
        }
    }

    public func failInfrastructure(experiment id: String, worker: String, reason: String, maxAttempts: Int, at now: Date) throws {
        try connection.transaction {
            let experiment = try leased(id, lockedFor: worker)
            if let revoked = Self.revocation(experiment, worker: worker) {
                throw LabError.store("experiment \(id) cannot be failed by \(worker): \(revoked)")
            }
            try giveBack(experiment, reason: reason, maxAttempts: maxAttempts, at: now)
            try connection.execute("UPDATE boards SET health = 'unknown', note = ?, changed_at = ? WHERE name = ?",
                                   [.text("infrastructure error: \(reason)"), .time(now), .text(experiment.board)])
        }
    }

    public func requeueAbandoned(host: String, formerWorker: String?, maxAttempts: Int, at now: Date,
                                 beforeEach: (QueuedExperiment) throws -> Void) throws -> [String] {
        try connection.transaction {
            let rows = try connection.query("""
                SELECT \(Self.queueColumns) FROM queue
                WHERE state = 'running' AND board IN (SELECT name FROM boards WHERE host = ?)
                    AND (lease_expires_at < ? OR lease_owner = ?)
                ORDER BY seq \(connection.dialect.lockSkippingLocked)
                """, [.text(host), .time(now), .optional(formerWorker)])
            var ids = [String]()
            for row in rows {
                let experiment = try Self.queuedExperiment(row)
                try beforeEach(experiment)
                let why = experiment.leaseOwner == formerWorker ? "its worker \(experiment.leaseOwner ?? "") restarted"
                                                                 : "the lease of \(experiment.leaseOwner ?? "its worker") expired"
                try giveBack(experiment, reason: why, maxAttempts: maxAttempts, at: now)
                ids.append(experiment.id)
            }
            return ids
        }
    }

    /// Puts an interrupted experiment back in the queue, or fails it after `maxAttempts` starts.
    private func giveBack(_ experiment: QueuedExperiment, reason: String, maxAttempts: Int, at now: Date) throws {
        if experiment.attempts >= maxAttempts {
            try connection.execute("""
                UPDATE queue SET state = 'failed', finished_at = ?, lease_owner = NULL, lease_expires_at = NULL, note = ? WHERE id = ?
                """, [.time(now), .text("\(reason); gave up after \(experiment.attempts) attempts"), .text(experiment.id)])
        } else {
            try connection.execute("""
                UPDATE queue SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, started_at = NULL, note = ? WHERE id = ?
                """, [.text(reason), .text(experiment.id)])
        }
    }

    /// The experiment `id`, its row locked on PostgreSQL for the rest of the transaction.
    private func leased(_ id: String, lockedFor worker: String) throws -> QueuedExperiment {
        let lock = connection.dialect == .postgres ? "FOR UPDATE" : ""
        guard let row = try connection.query("SELECT \(Self.queueColumns) FROM queue WHERE id = ? \(lock)", [.text(id)]).first else {
            throw LabError.usage("no queued experiment with id '\(id)'")
        }
        return try Self.queuedExperiment(row)
    }

    /// Why `worker` no longer holds the experiment, or nil when it does.
    static func revocation(_ experiment: QueuedExperiment, worker: String) -> String? {
        switch experiment.state {
        case .running where experiment.leaseOwner == worker: return nil
        case .running: return "its lease passed to \(experiment.leaseOwner ?? "another worker")"
        case .aborted: return "it was aborted\(experiment.note.map { ": \($0)" } ?? "")"
        case .suspended: return "it was suspended"
        case .queued: return "its lease was lost and it went back to the queue\(experiment.note.map { " (\($0))" } ?? "")"
        case .succeeded, .failed: return "it already finished as \(experiment.state.rawValue)"
        }
    }

    // MARK: Abort, suspend, resume

    public func abort(_ target: QueueTarget, reason: String, at now: Date) throws -> Int {
        try change(target, from: [.queued, .running, .suspended], to: .aborted,
                   extra: "finished_at = ?, note = ?", [.time(now), .text(reason)])
    }

    public func suspend(_ target: QueueTarget, at now: Date) throws -> Int {
        try change(target, from: [.queued, .running], to: .suspended, extra: "note = ?", [.text("suspended")])
    }

    public func resume(_ target: QueueTarget, at now: Date) throws -> Int {
        try change(target, from: [.suspended], to: .queued,
                   extra: "lease_owner = NULL, lease_expires_at = NULL, started_at = NULL, note = ?", [.text("resumed")])
    }

    private func change(_ target: QueueTarget, from states: [QueueState], to state: QueueState, extra: String, _ values: [SQLValue]) throws -> Int {
        let (column, key): (String, String) = switch target {
        case .experiment(let id): ("id", id)
        case .series(let name): ("series", name)
        }
        return try connection.transaction {
            let existing = try connection.query("SELECT count(*) FROM queue WHERE \(column) = ?", [.text(key)]).first?.first?.integer ?? 0
            guard existing > 0 else { throw LabError.usage("no \(target) in the queue") }
            let marks = Self.placeholders(states.count)
            return try connection.execute("UPDATE queue SET state = ?, \(extra) WHERE \(column) = ? AND state IN (\(marks))",
                                          [.text(state.rawValue)] + values + [.text(key)] + states.map { .text($0.rawValue) })
        }
    }

    // MARK: Reading

    public func experiment(id: String) throws -> QueuedExperiment? { try experimentRow(id) }

    func experimentRow(_ id: String) throws -> QueuedExperiment? {
        try connection.query("SELECT \(Self.queueColumns) FROM queue WHERE id = ?", [.text(id)]).first.map(Self.queuedExperiment)
    }

    public func experiments(state: QueueState?) throws -> [QueuedExperiment] {
        if let state {
            return try connection.query("SELECT \(Self.queueColumns) FROM queue WHERE state = ? ORDER BY seq", [.text(state.rawValue)])
                .map(Self.queuedExperiment)
        }
        return try connection.query("SELECT \(Self.queueColumns) FROM queue ORDER BY seq").map(Self.queuedExperiment)
    }

    public func usage(user: String?) throws -> [UsageRecord] {
        let filter = user == nil ? "" : "WHERE user_name = ?"
        return try connection.query("""
            SELECT experiment_id, user_name, board, seconds, finished_at FROM usage_log \(filter) ORDER BY finished_at DESC
            """, user.map { [.text($0)] } ?? []).map { row in
            UsageRecord(experimentID: row[0].text ?? "", user: row[1].text ?? "", board: row[2].text ?? "",
                        seconds: row[3].real ?? 0, finishedAt: row[4].date ?? .distantPast)
        }
    }

    /// `?, ?, ?` for `count` values (an IN list).
    static func placeholders(_ count: Int) -> String { Array(repeating: "?", count: max(count, 1)).joined(separator: ", ") }
}
