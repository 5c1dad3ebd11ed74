import Foundation
import MLBench

/// The scheduler's own cost: 10,000 queued experiments on 50 simulated boards that finish
/// instantly, so every second measured is the store's and the policy's (submit, claim with
/// its fair-share and reservation checks, complete with usage accounting). Goal: under
/// 5 ms of overhead per experiment.
enum SchedulerBenchmark {
    static func run(store: LabStore, backend: String, experiments: Int = 10_000, boards: Int = 50, users: Int = 8) throws {
        print("\n== Scheduler overhead, \(backend) (\(experiments) experiments, \(boards) simulated fast boards, \(users) users)")
        let names = (0..<boards).map { String(format: "sim-%02d", $0) }
        for name in names {
            try store.registerBoard(name, host: "bench")
            try store.setHealth(.good, board: name, note: "simulated")
        }
        // A reservation on one board, so that the policy's reservation path is part of the cost.
        let start = Date()
        _ = try store.reserve(board: names[0], user: "user-0", from: start, to: start.addingTimeInterval(3600))

        let submitClock = ContinuousClock()
        let submitTime = try submitClock.measure {
            for index in 0..<experiments {
                _ = try store.submit(Submission(user: "user-\(index % users)", name: "exp-\(index)", board: names[index % boards],
                                                definition: "name: exp-\(index)\n"), at: Date())
            }
        }

        let policy = SchedulingPolicy.standard
        // As a worker does: claim for every free board at once, then complete each as its
        // (instant) run ends. Per experiment: its share of the claim, and its completion.
        var perExperiment = [Double]()
        perExperiment.reserveCapacity(experiments)
        var claims = 0
        let clock = ContinuousClock()
        let total = try clock.measure {
            while true {
                let began = clock.now
                let leases = try store.claim(host: "bench", worker: "bench-worker", leaseDuration: 60, policy: policy, at: Date(), limit: boards)
                if leases.isEmpty { break } // the reserved board's other users' work waits for the window's end
                let claimShare = seconds(clock.now - began) / Double(leases.count)
                for lease in leases {
                    let completing = clock.now
                    try store.complete(experiment: lease.experiment.id, worker: "bench-worker", state: .succeeded, resultID: nil,
                                       note: nil, policy: policy, at: Date())
                    perExperiment.append(claimShare + seconds(clock.now - completing))
                }
                claims += leases.count
            }
        }
        let left = try store.experiments(state: .queued).count
        let totalSeconds = seconds(total)
        let sorted = perExperiment.sorted()
        func quantile(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        print(String(format: "   submit: %.2f ms per experiment (%.0f per second)",
                     seconds(submitTime) * 1000 / Double(experiments), Double(experiments) / seconds(submitTime)))
        print(String(format: "   claim + complete: mean %.2f ms, median %.2f ms, p99 %.2f ms per experiment",
                     totalSeconds * 1000 / Double(max(claims, 1)), quantile(0.5) * 1000, quantile(0.99) * 1000))
        print(String(format: "   %d claims in %.1f s: %.0f claims per second", claims, totalSeconds, Double(claims) / totalSeconds))
        print("   left queued: \(left) (other users' work on the board reserved for user-0 during the window)")
        let verdict = totalSeconds * 1000 / Double(max(claims, 1)) < 5 ? "met" : "NOT met"
        print("   goal (< 5 ms of scheduler overhead per experiment): \(verdict)")
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
