import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// The store's behaviour, each test on both backends (SQLite and PostgreSQL): results,
/// the board registry, the queue with its leases, fair turns and reservations.
final class StoreTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = SchedulingPolicy(usageHalfLife: 3600)

    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// Registers boards on a host and marks them good (as a passed health check would).
    func goodBoards(_ store: LabStore, _ names: [String], host: String = "bench-1") throws {
        for name in names {
            try store.registerBoard(name, host: host)
            try store.setHealth(.good, board: name, note: "test health check passed")
        }
    }

    @discardableResult
    func submit(_ store: LabStore, _ user: String, _ name: String, board: String = "b1", series: String? = nil,
                at time: Double = 0) throws -> QueuedExperiment {
        try store.submit(Submission(user: user, name: name, board: board, series: series, definition: "name: \(name)\n"), at: at(time))
    }

    func claim(_ store: LabStore, host: String = "bench-1", worker: String = "w1", at time: Double, lease: Double = 60) throws -> Lease? {
        try store.claim(host: host, worker: worker, leaseDuration: lease, policy: policy, at: at(time))
    }

    func requeue(_ store: LabStore, host: String = "bench-1", formerWorker: String? = nil, maxAttempts: Int = 3, at time: Double) throws -> [String] {
        try store.requeueAbandoned(host: host, formerWorker: formerWorker, maxAttempts: maxAttempts, at: at(time)) { _ in }
    }

    // MARK: Results

    func testResultsAreStoredListedAndReadBackWithTheirTimings() throws {
        try StoreBackends.each { store, backend in
            var result = ExperimentResult.sample(id: "r-1")
            result.measurement?.durationsNs = Array(1...1200).map(Int64.init)
            result.measurement?.startsNs = Array(1...1200).map { Int64($0) * 10 }
            try store.insert(result)
            try store.insert(ExperimentResult.sample(id: "r-2", status: .failed, finishedAt: Date(timeIntervalSince1970: 1_800_000_100)))
            XCTAssertEqual(try store.result(id: "r-1"), result, "\(backend)")
            XCTAssertEqual(try store.list(limit: 10).map(\.id), ["r-2", "r-1"], "\(backend): newest first")
            XCTAssertEqual(try store.timings(id: "r-1", phase: "measure"), Array(1...1200).map(Int64.init), "\(backend)")
            XCTAssertThrowsError(try store.insert(result), "\(backend): a result is never overwritten")
            XCTAssertThrowsError(try store.result(id: "r-"), "\(backend): an ambiguous prefix names both")
        }
    }

    // MARK: Boards

    func testOnlyGoodEnabledBoardsOfTheClaimingHostStartWork() throws {
        try StoreBackends.each { store, backend in
            try store.registerBoard("b1", host: "bench-1")
            try store.registerBoard("other", host: "bench-2")
            try store.setHealth(.good, board: "other", note: nil)
            XCTAssertEqual(try store.boards().first { $0.name == "b1" }?.health, .unknown, "\(backend): new boards wait for a health check")
            try submit(store, "alice", "e1")
            try submit(store, "alice", "e2", board: "other")
            XCTAssertNil(try claim(store, at: 1), "\(backend): an unknown board starts nothing")
            for health in [BoardHealth.bad, .maintenance, .retired] {
                try store.setHealth(health, board: "b1", note: nil)
                XCTAssertNil(try claim(store, at: 1), "\(backend): a \(health) board starts nothing")
            }
            try store.setHealth(.good, board: "b1", note: "checked")
            try store.setEnabled(false, board: "b1", note: "operator: cable swap")
            XCTAssertNil(try claim(store, at: 1), "\(backend): a disabled board starts nothing")
            XCTAssertEqual(try store.boards().first { $0.name == "b1" }?.note, "operator: cable swap")
            try store.setEnabled(true, board: "b1", note: nil)
            let lease = try XCTUnwrap(try claim(store, at: 2))
            XCTAssertEqual(lease.experiment.name, "e1", "\(backend): a host claims only its own boards' work")
            XCTAssertNil(try claim(store, at: 3), "\(backend): one experiment per board at a time")
            XCTAssertEqual(try claim(store, host: "bench-2", worker: "w2", at: 3)?.experiment.name, "e2")
            XCTAssertThrowsError(try store.setHealth(.good, board: "nope", note: nil)) { error in
                XCTAssertTrue("\(error)".contains("no board named 'nope'"), "\(error)")
            }
        }
    }

    func testSubmissionsToUnknownOrRetiredBoardsAreRefused() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            XCTAssertThrowsError(try submit(store, "alice", "e", board: "missing")) { error in
                XCTAssertTrue("\(error)".contains("no board named 'missing'"), "\(backend): \(error)")
            }
            try store.setHealth(.retired, board: "b1", note: "end of life")
            XCTAssertThrowsError(try submit(store, "alice", "e")) { error in
                XCTAssertTrue("\(error)".contains("retired"), "\(backend): \(error)")
            }
            XCTAssertEqual(try store.experiments(state: nil), [], "\(backend): nothing half-queued")
        }
    }

    // MARK: Queue and leases

    func testOneUsersExperimentsRunInSubmissionOrder() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            for index in 1...4 { try submit(store, "alice", "e\(index)", at: Double(index)) }
            var order = [String]()
            for step in 0..<4 {
                let lease = try XCTUnwrap(try claim(store, at: 10 + Double(step) * 10))
                order.append(lease.experiment.name)
                try store.complete(experiment: lease.experiment.id, worker: "w1", state: .succeeded, resultID: "r\(step)",
                                   note: nil, policy: policy, at: at(15 + Double(step) * 10))
            }
            XCTAssertEqual(order, ["e1", "e2", "e3", "e4"], "\(backend)")
            XCTAssertNil(try claim(store, at: 100))
            let done = try store.experiments(state: .succeeded)
            XCTAssertEqual(done.map(\.resultID), ["r0", "r1", "r2", "r3"], "\(backend)")
            XCTAssertEqual(try store.usage(user: "alice").map(\.seconds), [5, 5, 5, 5], "\(backend): board time per experiment")
        }
    }

    func testOneClaimStartsWorkOnEveryFreeBoardOneEachWithinTheLimit() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1", "b2", "b3"])
            for board in ["b1", "b1", "b2", "b3", "b3"] { try submit(store, "alice", "on-\(board)", board: board) }
            let first = try store.claim(host: "bench-1", worker: "w1", leaseDuration: 60, policy: policy, at: at(1), limit: 2)
            XCTAssertEqual(first.map(\.experiment.board), ["b1", "b2"], "\(backend): at most the limit, one per board")
            let rest = try store.claim(host: "bench-1", worker: "w1", leaseDuration: 60, policy: policy, at: at(2), limit: 10)
            XCTAssertEqual(rest.map(\.experiment.board), ["b3"], "\(backend): busy boards start nothing more")
            XCTAssertEqual(try store.claim(host: "bench-1", worker: "w1", leaseDuration: 60, policy: policy, at: at(3), limit: 0), [])
        }
    }

    func testAnExpiredLeaseIsRequeuedAndTheOldWorkerIsStopped() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            let queued = try submit(store, "alice", "e1")
            let lease = try XCTUnwrap(try claim(store, worker: "w1", at: 0, lease: 10))
            XCTAssertEqual(lease.expiresAt, at(10))
            XCTAssertEqual(try store.heartbeat(experiment: queued.id, worker: "w1", leaseDuration: 10, at: at(8)), .renewed(until: at(18)))
            XCTAssertEqual(try requeue(store, at: 17), [], "\(backend): a renewed lease has not expired")
            guard case .revoked = try store.heartbeat(experiment: queued.id, worker: "w1", leaseDuration: 10, at: at(19)) else {
                return XCTFail("\(backend): an expired lease is not renewed")
            }
            XCTAssertEqual(try requeue(store, host: "bench-2", at: 19), [], "\(backend): only the board's own host requeues")
            var leftBehind = [String]()
            XCTAssertEqual(try store.requeueAbandoned(host: "bench-1", formerWorker: nil, maxAttempts: 3, at: at(19)) { leftBehind.append($0.id) },
                           [queued.id], "\(backend)")
            XCTAssertEqual(leftBehind, [queued.id], "\(backend): the worker is asked to stop what the dead one left running")
            guard case .revoked = try store.heartbeat(experiment: queued.id, worker: "w1", leaseDuration: 10, at: at(20)) else {
                return XCTFail("\(backend): the worker whose lease expired must be told to stop")
            }
            let second = try XCTUnwrap(try claim(store, worker: "w2", at: 21))
            XCTAssertEqual(second.experiment.id, queued.id)
            XCTAssertEqual(second.experiment.attempts, 2)
            XCTAssertThrowsError(try store.complete(experiment: queued.id, worker: "w1", state: .succeeded, resultID: "stale",
                                                    note: nil, policy: policy, at: at(22)), "\(backend): the old worker cannot complete it")
            try store.complete(experiment: queued.id, worker: "w2", state: .succeeded, resultID: "r", note: nil, policy: policy, at: at(30))
            // A worker that crashed after completing may complete again: nothing changes, nothing is doubled.
            try store.complete(experiment: queued.id, worker: "w2", state: .succeeded, resultID: "r", note: nil, policy: policy, at: at(31))
            XCTAssertEqual(try store.experiment(id: queued.id)?.state, .succeeded)
            XCTAssertEqual(try store.usage(user: nil).count, 1, "\(backend)")
        }
    }

    func testARestartedWorkerRequeuesWhatItsFormerSelfWasRunningAtOnce() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1", "b2"])
            let mine = try submit(store, "alice", "e1", board: "b1")
            let other = try submit(store, "alice", "e2", board: "b2")
            _ = try XCTUnwrap(try claim(store, worker: "bench-1", at: 0, lease: 60))
            _ = try XCTUnwrap(try claim(store, worker: "bench-1-second", at: 0, lease: 60))
            // Long before the lease expires, the worker restarting as "bench-1" takes back only its own.
            XCTAssertEqual(try requeue(store, formerWorker: "bench-1", at: 1), [mine.id], "\(backend)")
            XCTAssertEqual(try store.experiment(id: mine.id)?.note, "its worker bench-1 restarted")
            XCTAssertEqual(try store.experiment(id: other.id)?.state, .running, "\(backend): another live worker's work is left alone")
        }
    }

    func testAnExperimentWhoseLeasesKeepExpiringFailsAfterMaxAttempts() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            let queued = try submit(store, "alice", "crashes its worker")
            for attempt in 1...2 {
                XCTAssertEqual(try claim(store, at: Double(attempt) * 100, lease: 10)?.experiment.attempts, attempt)
                XCTAssertEqual(try requeue(store, maxAttempts: 2, at: Double(attempt) * 100 + 11), [queued.id])
            }
            let failed = try XCTUnwrap(try store.experiment(id: queued.id))
            XCTAssertEqual(failed.state, .failed, "\(backend)")
            XCTAssertTrue(failed.note?.contains("gave up after 2 attempts") == true, "\(backend): \(failed.note ?? "no note")")
            XCTAssertNil(try claim(store, at: 1000))
        }
    }

    func testAnInfrastructureErrorRequeuesTheExperimentAndSendsTheBoardToAHealthCheck() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            let queued = try submit(store, "alice", "e1")
            _ = try XCTUnwrap(try claim(store, at: 0))
            try store.failInfrastructure(experiment: queued.id, worker: "w1", reason: "board did not answer after reset",
                                         maxAttempts: 3, at: at(5))
            XCTAssertEqual(try store.experiment(id: queued.id)?.state, .queued, "\(backend)")
            let board = try XCTUnwrap(try store.boards().first)
            XCTAssertEqual(board.health, .unknown, "\(backend)")
            XCTAssertEqual(board.note, "infrastructure error: board did not answer after reset")
            XCTAssertNil(try claim(store, at: 6), "\(backend): nothing starts before the health check")
            try store.setHealth(.good, board: "b1", note: "health check passed")
            XCTAssertEqual(try claim(store, at: 7)?.experiment.id, queued.id)
        }
    }

    func testSeriesAreSuspendedResumedAndAbortedAsAWhole() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            let first = try submit(store, "alice", "sweep-1", series: "sweep")
            try submit(store, "alice", "sweep-2", series: "sweep")
            try submit(store, "alice", "sweep-3", series: "sweep")
            try submit(store, "alice", "alone")
            XCTAssertEqual(try claim(store, at: 1)?.experiment.id, first.id)
            XCTAssertEqual(try store.suspend(.series("sweep"), at: at(2)), 3, "\(backend): two queued and the running one")
            guard case .revoked(let why) = try store.heartbeat(experiment: first.id, worker: "w1", leaseDuration: 60, at: at(3)) else {
                return XCTFail("\(backend): a suspended running experiment must be stopped")
            }
            XCTAssertTrue(why.contains("suspended"), why)
            XCTAssertEqual(try claim(store, at: 4)?.experiment.name, "alone", "\(backend): suspended work does not start")
            try store.complete(experiment: try XCTUnwrap(store.experiments(state: .running).first).id, worker: "w1",
                               state: .succeeded, resultID: nil, note: nil, policy: policy, at: at(5))
            XCTAssertNil(try claim(store, at: 6))
            XCTAssertEqual(try store.resume(.series("sweep"), at: at(7)), 3)
            XCTAssertEqual(try claim(store, at: 8)?.experiment.name, "sweep-1", "\(backend): resumed in the original order")
            XCTAssertEqual(try store.abort(.series("sweep"), reason: "wrong model", at: at(9)), 3)
            XCTAssertEqual(try store.heartbeat(experiment: first.id, worker: "w1", leaseDuration: 60, at: at(10)),
                           .revoked("it was aborted: wrong model"))
            XCTAssertEqual(try store.experiments(state: .aborted).count, 3)
            XCTAssertNil(try claim(store, at: 11))
            XCTAssertThrowsError(try store.abort(.series("typo"), reason: "", at: at(12))) { error in
                XCTAssertEqual("\(error)", "no series 'typo' in the queue")
            }
        }
    }

    // MARK: Fair share and reservations

    /// Runs the board to empty, each experiment taking `duration` seconds; returns who ran, in order.
    func drain(_ store: LabStore, from start: Double, duration: Double, host: String = "bench-1") throws -> [String] {
        var order = [String]()
        var now = start
        while let lease = try claim(store, host: host, at: now) {
            order.append(lease.experiment.user)
            now += duration
            try store.complete(experiment: lease.experiment.id, worker: "w1", state: .succeeded, resultID: nil, note: nil,
                               policy: policy, at: at(now))
        }
        return order
    }

    func testTwoUsersWithUnequalSubmissionsGetFairTurnsOnOneBoard() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            for index in 1...8 { try submit(store, "alice", "a\(index)", at: Double(index)) }
            for index in 1...3 { try submit(store, "bob", "b\(index)", at: 20 + Double(index)) }
            let order = try drain(store, from: 100, duration: 60)
            // Bob submitted later and less, yet does not wait for Alice's eight: turns alternate
            // while both have work (usage evens out), then Alice's rest runs.
            XCTAssertEqual(order, ["alice", "bob", "alice", "bob", "alice", "bob", "alice", "alice", "alice", "alice", "alice"], "\(backend)")
        }
    }

    func testAReservedBoardRunsOnlyItsHoldersWorkDuringTheWindow() throws {
        try StoreBackends.each { store, backend in
            try goodBoards(store, ["b1"])
            let window = try store.reserve(board: "b1", user: "bob", from: at(1000), to: at(2000))
            XCTAssertThrowsError(try store.reserve(board: "b1", user: "carol", from: at(1500), to: at(2500))) { error in
                XCTAssertTrue("\(error)".contains("already reserved by bob"), "\(backend): \(error)")
            }
            XCTAssertThrowsError(try store.reserve(board: "b1", user: "carol", from: at(3000), to: at(3000)))
            let early = try submit(store, "alice", "before the window")
            let lease = try XCTUnwrap(try claim(store, at: 900, lease: 200))
            XCTAssertEqual(lease.experiment.id, early.id, "\(backend): outside the window anyone's work runs")
            try submit(store, "alice", "a2")
            try submit(store, "bob", "b1")
            // The window opens while Alice's experiment runs: her worker is stopped, her work requeued.
            guard case .revoked(let why) = try store.heartbeat(experiment: early.id, worker: "w1", leaseDuration: 60, at: at(1001)) else {
                return XCTFail("\(backend): the holder's window takes the board back")
            }
            XCTAssertTrue(why.contains("reserved by bob"), why)
            XCTAssertEqual(try store.experiment(id: early.id)?.state, .queued)
            XCTAssertEqual(try store.experiment(id: early.id)?.attempts, 0, "\(backend): preemption is not a failed attempt")
            XCTAssertEqual(try drain(store, from: 1002, duration: 60), ["bob"], "\(backend): only the holder's work during the window")
            XCTAssertEqual(try store.experiments(state: .queued).map(\.user), ["alice", "alice"])
            XCTAssertEqual(try drain(store, from: 2000, duration: 60), ["alice", "alice"], "\(backend): the others' work after it")
            try store.cancelReservation(id: window.id)
            XCTAssertEqual(try store.reservations(), [])
        }
    }
}
