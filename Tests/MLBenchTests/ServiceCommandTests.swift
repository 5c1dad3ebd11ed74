import Foundation
@testable import MLBench
@testable import MLBenchService
import XCTest

/// `mlbench users` and `mlbench serve` as an administrator uses them, and the metrics text.
final class ServiceCommandTests: XCTestCase {
    func testUsersAndTokensOnTheCommandLine() throws {
        let home = try MLBenchBinary.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        XCTAssertTrue(try MLBenchBinary.run(["users", "add", "olga", "--role", "operator"], home: home).stdout.contains("added olga (operator)"))
        let duplicate = try MLBenchBinary.run(["users", "add", "olga"], home: home)
        XCTAssertEqual(duplicate.status, 2)
        XCTAssertTrue(duplicate.stderr.contains("already exists"), duplicate.stderr)
        let badRole = try MLBenchBinary.run(["users", "add", "x", "--role", "root"], home: home)
        XCTAssertTrue(badRole.status == 2 && badRole.stderr.contains("not user, operator or admin"), badRole.stderr)

        let issued = try MLBenchBinary.run(["users", "token", "olga", "--label", "grafana"], home: home)
        XCTAssertEqual(issued.status, 0, issued.stderr)
        let token = issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(token.hasPrefix("mlb_"), token)
        let store = try LabStore(sqlitePath: home.appendingPathComponent("results.sqlite").path)
        XCTAssertEqual(try store.authenticate(token: token)?.role, .operator)
        let listed = try MLBenchBinary.run(["users", "tokens"], home: home).stdout
        XCTAssertTrue(listed.contains("grafana") && !listed.contains(token.dropFirst(4)), listed)
        let id = String(try LabStore.tokenHash(token).prefix(12))
        XCTAssertTrue(listed.contains(id), listed)
        XCTAssertTrue(try MLBenchBinary.run(["users", "list"], home: home).stdout.contains("olga"))
        XCTAssertEqual(try MLBenchBinary.run(["users", "revoke", id], home: home).status, 0)
        XCTAssertNil(try store.authenticate(token: token))
        XCTAssertEqual(try MLBenchBinary.run(["users", "role", "olga", "admin"], home: home).status, 0)
        XCTAssertEqual(try store.user(named: "olga")?.role, .admin)
        XCTAssertEqual(try MLBenchBinary.run(["users", "remove", "olga"], home: home).status, 0)
        XCTAssertNil(try store.user(named: "olga"))
    }

    func testServeListensOnLoopbackOnly() throws {
        let home = try MLBenchBinary.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        let refused = try MLBenchBinary.run(["serve", "--host", "0.0.0.0", "--port", "0"], home: home)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("not a loopback address"), refused.stderr)
        let help = try MLBenchBinary.run(["serve", "--help"], home: home)
        XCTAssertTrue(help.stdout.contains("mlbench users token") && help.stdout.contains("--max-model-mb"), help.stdout)
    }

    func testTheMetricsAreWellFormedExposition() throws {
        func experiment(_ state: QueueState, seconds: Double?, board: String = "b1") -> QueuedExperiment {
            let start = Date(timeIntervalSince1970: 1_000)
            return QueuedExperiment(id: UUID().uuidString, sequence: 1,
                                    submission: Submission(user: "u", name: "n", board: board, definition: ""), state: state,
                                    submittedAt: start, attempts: 1, leaseOwner: nil, leaseExpiresAt: nil, startedAt: start,
                                    finishedAt: seconds.map { start.addingTimeInterval($0) }, resultID: nil, note: nil)
        }
        let experiments = [experiment(.succeeded, seconds: 0.5), experiment(.succeeded, seconds: 7), experiment(.succeeded, seconds: 9000),
                           experiment(.failed, seconds: 2), experiment(.queued, seconds: nil), experiment(.running, seconds: nil, board: "b\"2")]
        let boards = [LabBoard(name: "b1", host: "h", health: .good, enabled: true, note: nil),
                      LabBoard(name: "b\"2", host: "h\\x", health: .bad, enabled: false, note: nil)]
        let text = MetricsRoutes.exposition(experiments: experiments, boards: boards, results: [], recent: [])
        XCTAssertTrue(text.hasSuffix("\n"))
        XCTAssertTrue(text.contains("mlbench_queue_experiments{state=\"succeeded\"} 3\n"))
        XCTAssertTrue(text.contains("mlbench_board_enabled{board=\"b\\\"2\",host=\"h\\\\x\"} 0\n"), "labels escaped")
        XCTAssertTrue(text.contains("mlbench_board_busy{board=\"b\\\"2\",host=\"h\\\\x\"} 1\n"))
        XCTAssertTrue(text.contains("mlbench_board_health{board=\"b1\",health=\"good\",host=\"h\"} 1\n"))
        // Histogram: cumulative, `le` last, +Inf equal to the count, the sum of the durations.
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("mlbench_experiment_duration_seconds_bucket{state=\"succeeded\"") }
        let counts = buckets.compactMap { Double($0.split(separator: " ").last!) }
        XCTAssertEqual(counts.count, MetricsRoutes.durationBuckets.count + 1)
        XCTAssertEqual(counts, counts.sorted(), "cumulative")
        XCTAssertEqual(counts.first, 1)
        XCTAssertEqual(counts.last, 3)
        XCTAssertTrue(buckets.last!.contains(",le=\"+Inf\"}"), String(buckets.last!))
        XCTAssertTrue(text.contains("mlbench_experiment_duration_seconds_sum{state=\"succeeded\"} 9007.5\n"))
        XCTAssertTrue(text.contains("mlbench_experiment_duration_seconds_count{state=\"failed\"} 1\n"))
        // Every family has HELP and TYPE before its samples; every sample line parses.
        var declared = Set<String>()
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { declared.insert(String(line.split(separator: " ")[2])); continue }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) && declared.contains(String($0.dropLast($1.count))) ? String($0.dropLast($1.count)) : $0 }
            XCTAssertTrue(declared.contains(family), "\(line): no TYPE before it")
            XCTAssertNotNil(Double(line.split(separator: " ").last!.replacingOccurrences(of: "+Inf", with: "inf")), String(line))
        }
    }
}
