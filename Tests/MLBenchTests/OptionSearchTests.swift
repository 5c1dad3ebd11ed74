import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The search strategies of `mlbench guide --search` over an option space, on
/// a cost function known in advance (the experiments around them are tested in
/// PredictorTests).
final class OptionSearchTests: XCTestCase {
    let space = try! OptionSpace.parse(["threads=1,2,4,8", "level=disable,basic,extended,all", "arena=true,false"])

    /// Additive in log cost: 8 threads, level "all" and no arena are best (cost 1).
    func cost(_ point: [String: JSONValue]) -> Double {
        let threads: [JSONValue: Double] = [.number(1): 8, .number(2): 4, .number(4): 2, .number(8): 1]
        let level: [JSONValue: Double] = [.string("disable"): 3, .string("basic"): 2, .string("extended"): 1.5, .string("all"): 1]
        return threads[point["threads"]!]! * level[point["level"]!]! * (point["arena"] == .bool(true) ? 1.3 : 1)
    }

    func testTheSpaceParsesValuesAndRefusesBadSpecifications() throws {
        XCTAssertEqual(space.points.count, 32)
        XCTAssertEqual(space.points.first, ["threads": .number(1), "level": .string("disable"), "arena": .bool(true)])
        XCTAssertEqual(space.points[1]["arena"], .bool(false), "the last option varies fastest")
        for bad in ["threads", "threads=", "threads=1,,2", "threads=1,1"] {
            XCTAssertThrowsError(try OptionSpace.parse([bad]), bad) { error in
                XCTAssertTrue("\(error)".contains(bad.isEmpty ? "empty" : "threads"), "\(error)")
            }
        }
        XCTAssertThrowsError(try OptionSpace.parse(["a=1", "a=2"])) { XCTAssertTrue("\($0)".contains("'a' is given twice"), "\($0)") }
    }

    func testGridIsInOrderAndRandomIsSeededWithoutRepeats() throws {
        let grid = try OptionSearch.run(space: space, strategy: .grid, budget: 5) { OptionSearch.Outcome(cost: cost($0)) }
        XCTAssertEqual(grid.evaluations.map(\.options), Array(space.points.prefix(5)))
        let random = try OptionSearch.run(space: space, strategy: .random, budget: 10, seed: 3) { OptionSearch.Outcome(cost: cost($0)) }
        XCTAssertEqual(random.evaluations.count, 10)
        XCTAssertEqual(Set(random.evaluations.map(\.options)).count, 10, "no point twice")
        XCTAssertNotEqual(random.evaluations.map(\.options), Array(space.points.prefix(10)))
        let again = try OptionSearch.run(space: space, strategy: .random, budget: 10, seed: 3) { OptionSearch.Outcome(cost: cost($0)) }
        XCTAssertEqual(again.evaluations.map(\.options), random.evaluations.map(\.options), "same seed, same order")
        let all = try OptionSearch.run(space: space, strategy: .grid, budget: 100) { OptionSearch.Outcome(cost: cost($0)) }
        XCTAssertEqual(all.evaluations.count, 32, "a budget beyond the space evaluates each point once")
        XCTAssertEqual(all.evaluations[try XCTUnwrap(all.best)].options, ["threads": .number(8), "level": .string("all"), "arena": .bool(false)])
        XCTAssertThrowsError(try OptionSearch.run(space: space, strategy: .grid, budget: 0) { _ in OptionSearch.Outcome(cost: 1) })
    }

    /// With 12 of 32 evaluations, the model-based search finds the best point
    /// for every seed; a random search with the same budget misses it for most.
    func testTheModelBasedSearchFindsTheBestWithinAFractionOfTheSpace() throws {
        let best: [String: JSONValue] = ["threads": .number(8), "level": .string("all"), "arena": .bool(false)]
        var randomHits = 0
        for seed in UInt64(0)..<10 {
            let model = try OptionSearch.run(space: space, strategy: .model, budget: 12, seed: seed) { OptionSearch.Outcome(cost: cost($0)) }
            XCTAssertEqual(model.evaluations[try XCTUnwrap(model.best)].options, best, "seed \(seed): \(model.evaluations.map(\.options))")
            XCTAssertTrue(model.evaluations.dropFirst(4).allSatisfy { $0.chosenBecause.hasPrefix("surrogate:") })
            let random = try OptionSearch.run(space: space, strategy: .random, budget: 12, seed: seed) { OptionSearch.Outcome(cost: cost($0)) }
            if random.evaluations[try XCTUnwrap(random.best)].options == best { randomHits += 1 }
        }
        XCTAssertLessThan(randomHits, 8, "random search with 12 of 32 points finds the best about 3 times in 8")
    }

    /// A point without a cost (a failed experiment) is recorded with why, and never best.
    func testAPointWithoutACostIsKeptWithItsReason() throws {
        let report = try OptionSearch.run(space: space, strategy: .model, budget: 6) { point in
            point["threads"] == .number(8) ? OptionSearch.Outcome(cost: nil, reason: "build failed") : OptionSearch.Outcome(cost: cost(point))
        }
        XCTAssertEqual(report.evaluations.count, 6)
        let best = try XCTUnwrap(report.best)
        XCTAssertNotNil(report.evaluations[best].cost)
        for evaluation in report.evaluations where evaluation.cost == nil { XCTAssertEqual(evaluation.reason, "build failed") }
    }

    /// A value that only ever failed is not explored again while other points
    /// remain: the surrogate would otherwise see it as untried (it has no cost)
    /// and spend the budget on it.
    func testTheModelBasedSearchDoesNotRetryAValueThatOnlyFailed() throws {
        for seed in UInt64(0)..<5 {
            let report = try OptionSearch.run(space: space, strategy: .model, budget: 12, seed: seed) { point in
                point["threads"] == .number(8) ? OptionSearch.Outcome(cost: nil, reason: "out of memory") : OptionSearch.Outcome(cost: cost(point))
            }
            let surrogateFailures = report.evaluations.filter { $0.chosenBecause.hasPrefix("surrogate:") && $0.cost == nil }
            let initialFailures = report.evaluations.filter { !$0.chosenBecause.hasPrefix("surrogate:") && $0.cost == nil }
            XCTAssertTrue(surrogateFailures.isEmpty || initialFailures.isEmpty,
                          "seed \(seed): threads=8 failed in the initial design and was chosen again: \(report.evaluations.map(\.options))")
            XCTAssertLessThanOrEqual(surrogateFailures.count, 1, "seed \(seed): \(report.evaluations.map(\.options))")
            let best = try XCTUnwrap(report.best)
            XCTAssertEqual(report.evaluations[best].options, ["threads": .number(4), "level": .string("all"), "arena": .bool(false)], "seed \(seed)")
        }
    }
}
