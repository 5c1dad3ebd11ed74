import Foundation

/// How queries reach the model, in the sense of MLPerf LoadGen.
public enum Scenario: String, Codable, Sendable, CaseIterable {
    /// One inference of one sample at a time, the next as soon as the last ends:
    /// the latency of a single query (the default).
    case singleStream = "single_stream"
    /// Every sample back to back as fast as the runner goes: throughput.
    case offline
    /// Queries arriving as a Poisson process at a given rate: latency under load,
    /// queueing included, against a percentile target.
    case server
}

/// The server scenario's arrivals and verdicts.
public enum ServerScenario {
    /// Arrival times (ns from the first) of `count` queries of a Poisson process of
    /// `ratePerS` queries per second: exponential gaps, from a seeded generator so a
    /// run can be repeated exactly.
    public static func arrivals(ratePerS: Double, count: Int, seed: UInt64) -> [Int64] {
        precondition(ratePerS > 0 && count >= 0, "a Poisson process needs a positive rate")
        var generator = Xoshiro256StarStar(seed: seed)
        var time = 0.0
        var arrivals = [Int64]()
        arrivals.reserveCapacity(count)
        for index in 0..<count {
            if index > 0 {
                // 1 − U is in (0, 1]: the logarithm is finite.
                time += -log(1 - generator.nextUnit()) / ratePerS
            }
            arrivals.append(Int64((time * 1e9).rounded()))
        }
        return arrivals
    }

    /// The latency of each query when one worker serves them in arrival order: a
    /// query waits for its arrival and for the queries before it, then runs for its
    /// service time. This is what a runner measures when it serves a schedule; kept
    /// here as the model its results are checked against.
    public static func latencies(arrivalsNs: [Int64], serviceNs: [Int64]) -> [Int64] {
        precondition(arrivalsNs.count == serviceNs.count, "one service time per arrival")
        var free: Int64 = 0
        return zip(arrivalsNs, serviceNs).map { arrival, service in
            let start = max(arrival, free)
            free = start + service
            return free - arrival
        }
    }

    /// Whether the `percentile` latency meets `targetNs`, decided the way LoadGen's
    /// early stopping does: a one-sided binomial test, at `level` confidence, on the
    /// number of queries over the target.
    public static func verdict(latenciesNs: [Int64], percentile: Double, targetNs: Int64, level: Double = 0.99) -> Verdict {
        precondition(percentile > 0 && percentile < 1 && level > 0 && level < 1)
        let n = latenciesNs.count
        guard n > 0 else { return Verdict(overTarget: 0, queries: 0, outcome: .inconclusive, percentileNs: nil) }
        let over = latenciesNs.filter { $0 > targetNs }.count
        let allowed = 1 - percentile
        let cdf = Statistics.binomialCDF(n: n, p: allowed)  // P(B ≤ k), B the count over target if exactly at the limit
        let alpha = 1 - level
        let outcome: Verdict.Outcome
        if cdf[over] <= alpha {
            outcome = .meets            // so few over the target that the percentile is below it
        } else if over > 0, 1 - cdf[over - 1] <= alpha {
            outcome = .misses           // so many over the target that the percentile is above it
        } else {
            outcome = .inconclusive     // more queries needed either way
        }
        let sorted = latenciesNs.map(Double.init).sorted()
        return Verdict(overTarget: over, queries: n, outcome: outcome,
                       percentileNs: Int64(Statistics.quantile(sorted: sorted, percentile).rounded()))
    }

    public struct Verdict: Codable, Sendable, Equatable {
        public enum Outcome: String, Codable, Sendable { case meets, misses, inconclusive }
        public var overTarget: Int
        public var queries: Int
        public var outcome: Outcome
        public var percentileNs: Int64?
    }

    /// The highest rate (queries per second) whose latency meets the target, by
    /// bisection between a rate that meets it and one that does not; `measure`
    /// serves one schedule at the given rate and returns each query's latency.
    /// An inconclusive rate counts as missing: the answer stays on the safe side.
    public static func highestRate(startPerS: Double, percentile: Double, targetNs: Int64, steps: Int,
                                   measure: (Double) throws -> [Int64]) rethrows -> RateSearch {
        var tried = [RateSearch.Point]()
        func attempt(_ rate: Double) throws -> Bool {
            let verdict = self.verdict(latenciesNs: try measure(rate), percentile: percentile, targetNs: targetNs)
            tried.append(.init(ratePerS: rate, verdict: verdict))
            return verdict.outcome == .meets
        }
        var low: Double?, high: Double?
        var rate = startPerS
        // Bracket: halve until a rate meets, or double until one misses.
        if try attempt(rate) {
            low = rate
            for _ in 0..<steps where high == nil {
                rate *= 2
                if try attempt(rate) { low = rate } else { high = rate }
            }
        } else {
            high = rate
            for _ in 0..<steps where low == nil {
                rate /= 2
                if try attempt(rate) { low = rate } else { high = rate }
            }
        }
        if var lo = low, var hi = high {
            for _ in 0..<steps {
                let middle = (lo + hi) / 2
                if try attempt(middle) { lo = middle } else { hi = middle }
            }
            low = lo
            high = hi
        }
        return RateSearch(highestMeetingPerS: low, lowestMissingPerS: high, tried: tried)
    }

    public struct RateSearch: Codable, Sendable, Equatable {
        public struct Point: Codable, Sendable, Equatable {
            public var ratePerS: Double
            public var verdict: Verdict
        }
        /// The highest rate tried that met the target; nil when none did.
        public var highestMeetingPerS: Double?
        /// The lowest rate tried that did not; nil when every rate tried met it.
        public var lowestMissingPerS: Double?
        public var tried: [Point]
    }
}
