import Foundation
import MLBench
import XCTest

/// The scheduling policy alone (pure code): fair share, FIFO, reservations, and that a
/// free board never stays idle while eligible work waits.
final class SchedulingPolicyTests: XCTestCase {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let policy = SchedulingPolicy(usageHalfLife: 3600)

    func candidate(_ id: String, _ seq: Int64, _ user: String, _ board: String) -> SchedulingPolicy.Candidate {
        .init(experimentID: id, sequence: seq, user: user, board: board)
    }

    func testUsageHalvesEveryHalfLife() {
        XCTAssertEqual(policy.decayed(100, from: now, to: now), 100)
        XCTAssertEqual(policy.decayed(100, from: now, to: now.addingTimeInterval(3600)), 50, accuracy: 1e-9)
        XCTAssertEqual(policy.decayed(100, from: now, to: now.addingTimeInterval(7200)), 25, accuracy: 1e-9)
        XCTAssertEqual(SchedulingPolicy(usageHalfLife: 60).decayed(100, from: now, to: now.addingTimeInterval(60)), 50, accuracy: 1e-9,
                       "the half-life is configurable")
    }

    func testTheUserWithLessUsageGoesFirstAndTiesGoToTheEarlierSubmission() {
        let candidates = [candidate("a1", 1, "alice", "b"), candidate("b1", 5, "bob", "b")]
        XCTAssertEqual(policy.assign(freeBoards: ["b"], candidates: candidates, reservations: [], usage: ["alice": 120, "bob": 60], now: now)
                        .map(\.experimentID), ["b1"])
        XCTAssertEqual(policy.assign(freeBoards: ["b"], candidates: candidates, reservations: [], usage: [:], now: now)
                        .map(\.experimentID), ["a1"])
    }

    func testOnlyTheHoldersWorkIsEligibleOnAReservedBoardDuringItsWindow() {
        let window = Reservation(id: "r", board: "b", user: "bob", start: now, end: now.addingTimeInterval(600))
        let aliceOnly = [candidate("a1", 1, "alice", "b")]
        XCTAssertEqual(policy.assign(freeBoards: ["b"], candidates: aliceOnly, reservations: [window], usage: [:], now: now), [],
                       "nobody else's work starts, even with the holder's queue empty")
        XCTAssertEqual(policy.assign(freeBoards: ["b"], candidates: aliceOnly, reservations: [window], usage: [:],
                                     now: now.addingTimeInterval(600)).map(\.experimentID), ["a1"], "the window's end is excluded")
        XCTAssertEqual(policy.assign(freeBoards: ["b"], candidates: aliceOnly + [candidate("b1", 9, "bob", "b")], reservations: [window],
                                     usage: ["bob": 1e9], now: now.addingTimeInterval(1)).map(\.experimentID), ["b1"],
                       "the holder runs during the window whatever their usage")
    }

    /// REQ-00013: whatever the usage and the queue, every free board with eligible work gets
    /// exactly one experiment, only boards that are free, and never one experiment twice.
    func testAFreeBoardWithEligibleWorkIsNeverLeftIdle() {
        var generator = SystemRandomNumberGenerator()
        let users = ["alice", "bob", "carol", "dave"]
        for round in 0..<500 {
            let boards = (0..<Int.random(in: 1...6, using: &generator)).map { "b\($0)" }
            let free = boards.filter { _ in Bool.random(using: &generator) }
            var candidates = [SchedulingPolicy.Candidate]()
            var seq: Int64 = 0
            for board in boards {
                for user in users where Bool.random(using: &generator) {
                    seq += 1
                    candidates.append(candidate("e\(seq)", seq, user, board))
                }
            }
            let reservations = boards.filter { _ in Int.random(in: 0..<4, using: &generator) == 0 }.map {
                Reservation(id: $0, board: $0, user: users.randomElement(using: &generator)!,
                            start: now.addingTimeInterval(-10), end: now.addingTimeInterval(10))
            }
            let usage = Dictionary(uniqueKeysWithValues: users.map { ($0, Double.random(in: 0...1000, using: &generator)) })
            let assignments = policy.assign(freeBoards: free, candidates: candidates, reservations: reservations, usage: usage, now: now)

            let holder = Dictionary(uniqueKeysWithValues: reservations.map { ($0.board, $0.user) })
            let eligible = candidates.filter { free.contains($0.board) && (holder[$0.board] == nil || holder[$0.board] == $0.user) }
            XCTAssertEqual(Set(assignments.map(\.board)), Set(eligible.map(\.board)), "round \(round): a free board with eligible work stayed idle")
            XCTAssertEqual(assignments.count, Set(assignments.map(\.board)).count, "round \(round): two experiments on one board")
            for assignment in assignments {
                let chosen = eligible.first { $0.experimentID == assignment.experimentID }
                XCTAssertNotNil(chosen, "round \(round): \(assignment.experimentID) was not eligible")
                // The least-used user among those eligible on that board.
                let least = eligible.filter { $0.board == assignment.board }.map { usage[$0.user]! }.min()!
                XCTAssertEqual(usage[assignment.user]!, least, "round \(round)")
            }
        }
    }
}
