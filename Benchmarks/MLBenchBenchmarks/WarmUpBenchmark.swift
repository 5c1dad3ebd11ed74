import Foundation
import MLBench

/// Warm-up detection on traces with a known warm-up, fed in batches exactly as the lab
/// feeds a real runner's timings (`WarmUpDetector`), then on real first runs.
enum WarmUpBenchmark {
    /// The seed method's fixed discard.
    static let fixedDiscard = 50
    static let batch = 25
    static let tracesPerFamily = 40

    struct Family {
        var name: String
        /// Makes a trace and its true warm-up length (nil: no steady state to find).
        var make: (inout Generator) -> (trace: [Double], truth: Int?)
    }

    static func run(offline: Bool) {
        print(offline
              ? "== Warm-up detection offline (whole synthetic traces of 600, or 2000 for drift; \(tracesPerFamily) per family, level 10, noise σ 0.3)"
              : "== Warm-up detection online, as the lab runs it (synthetic traces fed in batches of \(batch) until confirmed; \(tracesPerFamily) per family)")
        print("   truth of an exponential warm-up: the first iteration whose excess is within 1 % of the level")
        let families: [Family] = [
            Family(name: "flat") { g in ((0..<600).map { _ in 10 + 0.3 * g.normal() }, 0) },
            Family(name: "flat + 2 % spikes") { g in
                ((0..<600).map { _ in
                    let u = g.unit()
                    return u < 0.02 ? 30 + 10 * g.unit() : (u < 0.03 ? 5 : 10 + 0.3 * g.normal())
                }, 0)
            },
            Family(name: "step warm-up") { g in
                let k = 5 + g.below(146)
                return ((0..<600).map { i in (i < k ? 15 : 10) + 0.3 * g.normal() }, k)
            },
            Family(name: "exponential warm-up") { g in
                let tau = 5 + 25 * g.unit()
                let truth = Int((tau * log(5 / 0.1)).rounded(.up))
                return ((0..<600).map { i in 10 + 5 * exp(-Double(i) / tau) + 0.3 * g.normal() }, truth)
            },
            Family(name: "slowdown") { g in
                let k = 5 + g.below(146)
                return ((0..<600).map { i in (i < k ? 8 : 10) + 0.3 * g.normal() }, k)
            },
            Family(name: "drift (no steady state)") { g in
                ((0..<2000).map { i in 10 + 0.005 * Double(i) + 0.3 * g.normal() }, nil)
            },
        ]
        var rows = [["family", "mean |error|", "within ±5", "discarded", "fixed-50 saves", "warm-up run", "no steady state"]]
        var generator = Generator(seed: 2026)
        for family in families {
            var errors = [Double](), discarded = [Double](), ran = [Double]()
            var within = 0, flaggedNone = 0
            for _ in 0..<tracesPerFamily {
                let (trace, truth) = family.make(&generator)
                let (index, used) = offline ? (WarmUp.analyze(trace).steadyStateIndex, trace.count) : detect(trace)
                ran.append(Double(used))
                guard let index else { flaggedNone += 1; continue }
                discarded.append(Double(index))
                if let truth {
                    let error = Double(index - truth)
                    errors.append(abs(error))
                    if abs(error) <= 5 { within += 1 }
                }
            }
            func mean(_ x: [Double]) -> String { x.isEmpty ? "–" : String(format: "%.1f", x.reduce(0, +) / Double(x.count)) }
            let decided = family.make(&generator).truth != nil
            rows.append([family.name,
                         decided ? mean(errors) : "–",
                         decided ? "\(within)/\(tracesPerFamily)" : "–",
                         mean(discarded),
                         discarded.isEmpty ? "–" : String(format: "%+.1f", Double(fixedDiscard) - (discarded.reduce(0, +) / Double(discarded.count))),
                         mean(ran),
                         "\(flaggedNone)/\(tracesPerFamily)"])
        }
        print(ResultPresenter.table(rows))
        print("   discarded: iterations before the detected steady state (the fixed method discards 50);")
        print("   fixed-50 saves: 50 − discarded, positive when we keep more; warm-up run: iterations timed before deciding.")
        print("   Goal: within ±5 iterations; nothing discarded on flat traces.")
    }

    /// Feeds `trace` in batches until the detector confirms steady state or the trace ends.
    static func detect(_ trace: [Double]) -> (index: Int?, used: Int) {
        let (analysis, used) = detectAnalysis(trace)
        return (analysis.steadyStateIndex, used)
    }

    static func detectAnalysis(_ trace: [Double]) -> (analysis: WarmUpAnalysis, used: Int) {
        var detector = WarmUpDetector()
        var position = 0
        while position < trace.count {
            let end = min(trace.count, position + batch)
            if detector.add(Array(trace[position..<end])) { return (detector.analysis, end) }
            position = end
        }
        return (detector.analysis, trace.count)
    }

    /// Real first runs: the warm-up trace and the measurement after it are one
    /// contiguous series of a fresh runner; the detector runs on it again offline.
    static func real(_ results: [(String, ExperimentResult)]) {
        print("\n== Warm-up detection on real first runs (host, fresh runner each)")
        var rows = [["toolchain", "iterations used", "detected", "shape", "changepoints", "spikes", "fixed-50 saves"]]
        for (name, result) in results {
            guard let warmUp = result.warmUp, let measurement = result.measurement else {
                rows.append([name, "failed: \(result.failure?.reason.prefix(60) ?? "?")", "", "", "", "", ""])
                continue
            }
            let trace = (warmUp.durationsNs + measurement.durationsNs.prefix(1000)).map(Double.init)
            let (analysis, used) = detectAnalysis(trace)
            let index = analysis.steadyStateIndex
            rows.append([name, "\(used) of \(trace.count)", index.map(String.init) ?? "none",
                         analysis.classification?.rawValue ?? "?", "\(max(0, (analysis.segments?.count ?? 1) - 1))",
                         "\(analysis.spikesIgnored ?? 0)", index.map { String(format: "%+d", fixedDiscard - $0) } ?? "–"])
        }
        print(ResultPresenter.table(rows))
        print("   (no true warm-up is known for real traces: the figures show what was detected and kept)")
    }
}

extension Xoshiro256StarStar {
    mutating func unit() -> Double { nextUnit() }
    mutating func below(_ n: Int) -> Int { next(below: n) }
    mutating func normal() -> Double { nextNormal() }
}

typealias Generator = Xoshiro256StarStar
