import Foundation
import MLBenchCore

// The measure step of the pipeline: warm-up, the stopping rule, the scenarios.
extension ExperimentRunner {
    /// Warm-up until steady state is detected (`WarmUpDetector`: changepoints and
    /// MSER-5 agreeing, on two checks in a row), then measurement until the stopping rule: at least
    /// `min_iterations` and `min_time_s`, and the median's interval narrow enough —
    /// or a maximum reached.
    func warmUpAndMeasure(_ session: DeployedRunner, plan: MeasurementPlan, result: inout ExperimentResult) throws {
        var starts = [Int64](), durations = [Int64](), canary = [Int64]()
        var canaryComplete = plan.canary
        var split = RuntimeSplit()
        var placement = InputPlacementRecord.Collector(requested: plan.inputPlacement)
        var peak: Int64 = 0
        var reason = ""
        var rule = StoppingRule.maximumIterations
        var invocations = [ExperimentResult.InvocationRecord]()
        var groups = [[Double]]()
        let count = max(1, plan.invocations)
        for invocation in 1...count {
            if invocation > 1 {
                // A fresh runner process: what differs between processes (memory layout,
                // thread placement, JIT decisions) shows up between invocations.
                try session.restart(result: &result)
            }
            var warmUp = [Int64]()
            var detector = WarmUpDetector(minimumIterations: min(plan.minWarmupIterations, plan.maxWarmupIterations))
            while warmUp.count < plan.maxWarmupIterations {
                let batch = try session.run(iterations: min(plan.batchIterations, plan.maxWarmupIterations - warmUp.count), stage: "warm-up",
                                            placement: plan.inputPlacement)
                warmUp += batch.durationsNs
                if detector.add(batch.durationsNs.map(Double.init)) { break }
            }
            let analysis = detector.analysis
            if invocation == 1 {
                result.warmUp = .init(durationsNs: warmUp, analysis: analysis, noSteadyState: analysis.steadyStateIndex == nil)
            }
            let which = count > 1 ? " (invocation \(invocation) of \(count))" : ""
            log(&result, "warm-up", (analysis.steadyStateIndex.map {
                "steady state from iteration \($0) of \(warmUp.count) (\(analysis.classification?.rawValue ?? "?"), MSER-5 at \(analysis.mser5Index.map(String.init) ?? "none"))"
            } ?? "no steady state detected within \(warmUp.count) iterations; measuring anyway, flagged") + which)

            // Each invocation gets its share of the time budget and the full stopping rule.
            let maxTime = plan.maxTimeS / Double(count)
            var own = [Int64]()
            let began = Date()
            while true {
                let batch = try session.run(iterations: plan.batchIterations, stage: "measure", canary: plan.canary,
                                            placement: plan.inputPlacement)
                placement.add(batch)
                starts += batch.startsNs
                durations += batch.durationsNs
                own += batch.durationsNs
                // A runner without a canary answers without one: then there is no correction.
                if let canaryNs = batch.canaryNs, canaryNs.count == batch.durationsNs.count { canary += canaryNs } else { canaryComplete = false }
                split.add(batch)
                peak = max(peak, batch.peakMemoryBytes)
                let elapsed = Date().timeIntervalSince(began)
                if own.count >= plan.maxIterations {
                    (rule, reason) = (.maximumIterations, "maximum iterations (\(plan.maxIterations))")
                    break
                }
                if elapsed >= maxTime {
                    (rule, reason) = (.maximumTime, "maximum time (\(maxTime) s)")
                    break
                }
                if own.count >= plan.minIterations, elapsed >= plan.minTimeS / Double(count) {
                    // A cheaper bootstrap for the stopping decision; the stored summary uses the full one.
                    let sorted = own.map(Double.init).sorted()
                    let interim = Statistics.bootstrapIntervals(sorted: sorted, level: 0.95, resamples: 400,
                                                                seed: Statistics.defaultSeed).median
                    let width = interim.width / max(Statistics.quantile(sorted: sorted, 0.5), 1)
                    if width <= plan.targetRelativeCIWidth {
                        (rule, reason) = (.confidenceInterval, String(format: "confidence interval of the median within %.2f%%", width * 100))
                        break
                    }
                }
            }
            let ownValues = own.map(Double.init)
            groups.append(ownValues)
            invocations.append(.init(warmUpIterations: warmUp.count, steadyStateIndex: analysis.steadyStateIndex, iterations: own.count,
                                     medianNs: Statistics.quantile(sorted: ownValues.sorted(), 0.5), stoppingRule: rule))
        }
        let values = durations.map(Double.init)
        let summary = Statistics.summarize(values)
        let outliers = Statistics.outliers(values)
        let madSet = Set(outliers.mad)
        let kept = values.indices.filter { !madSet.contains($0) }.map { values[$0] }
        let filtered = kept.isEmpty ? nil : Statistics.summarize(kept)
        result.measurement = .init(startsNs: starts, durationsNs: durations, summary: summary, peakMemoryBytes: peak,
                                   stoppedBecause: reason, stoppingRule: rule, outliers: outliers, filteredSummary: filtered,
                                   filter: "without the \(outliers.mad.count) values whose modified z-score exceeds \(Statistics.madThreshold) (MAD rule)")
        log(&result, "measure", "\(durations.count) iterations; stopped on \(reason)")
        if count > 1 {
            let between = Statistics.invocationMedianInterval(groups: groups, seed: Statistics.defaultSeed)
            result.measurement?.invocations = invocations
            result.measurement?.invocationSummary = .init(medianNs: between.estimate, interval: between.interval)
            log(&result, "measure", "\(count) invocations, medians " + invocations.map { ResultPresenter.duration($0.medianNs) }.joined(separator: ", ")
                + "; median of medians \(ResultPresenter.duration(between.estimate)), 95% interval across invocations ["
                + "\(ResultPresenter.duration(between.interval.lower)), \(ResultPresenter.duration(between.interval.upper))]")
        }
        let placed = placement.record
        result.measurement?.inputPlacement = placed
        log(&result, "measure", placed.note)
        if let phases = split.record {
            result.measurement?.phases = phases
            log(&result, "measure", "the runtime's own split kept: \(phases.keys.sorted().joined(separator: ", "))")
        }
        if canaryComplete, !canary.isEmpty {
            let report = Canary.analyze(durations: durations, canary: canary)
            result.measurement?.canary = report
            log(&result, "filter", "canary: \(report.note)")
        } else if plan.canary {
            log(&result, "filter", "no canary correction: the runner does not time a canary workload")
        }
        log(&result, "filter", "\(outliers.tukey.count) Tukey and \(outliers.mad.count) MAD outliers labelled, all kept in the raw series")
    }

    /// The offline or server scenario, after the single-stream measurement (whose
    /// median sets where the server's rate search starts).
    func runScenario(_ session: DeployedRunner, plan: MeasurementPlan, result: inout ExperimentResult) throws {
        switch plan.scenario {
        case .singleStream:
            return
        case .offline:
            let queries = plan.scenarioQueries ?? 1_000
            let reply = try session.offline(queries: queries)
            let throughput = Double(queries) / (Double(max(reply.totalNs, 1)) / 1e9)
            result.measurement?.scenario = .init(scenario: .offline, offline: .init(
                queries: queries, totalNs: reply.totalNs, throughputPerS: throughput, durationsNs: reply.durationsNs))
            log(&result, "scenario", String(format: "offline: %d queries in %@, %.1f queries/s", queries,
                                            ResultPresenter.duration(Double(reply.totalNs)), throughput))
        case .server:
            let queries = plan.scenarioQueries ?? 2_000
            let targetNs = Int64(((plan.serverTargetLatencyMs ?? 0) * 1e6).rounded())
            var server = ExperimentResult.ScenarioRecord.Server(percentile: plan.serverPercentile, targetNs: targetNs,
                                                                queriesPerSchedule: queries)
            var schedules: UInt64 = 0
            // The runner serves each query at its arrival and times it; latencies follow from
            // those times by the one-worker queue, so a load generator that wakes late (a
            // loaded host's scheduler) adds no latency the model did not cause.
            func measure(_ rate: Double) throws -> (latencies: [Int64], served: RunnerServed) {
                schedules += 1
                let arrivals = ServerScenario.arrivals(ratePerS: rate, count: queries, seed: schedules)
                let served = try session.server(arrivalsNs: arrivals, placement: plan.inputPlacement)
                return (ServerScenario.latencies(arrivalsNs: arrivals, serviceNs: served.durationsNs), served)
            }
            if let rate = plan.serverRatePerS {
                let (latencies, served) = try measure(rate)
                server.ratePerS = rate
                server.latenciesNs = latencies
                server.waitsNs = served.waitsNs
                server.verdict = ServerScenario.verdict(latenciesNs: latencies, percentile: plan.serverPercentile, targetNs: targetNs)
                log(&result, "scenario", String(format: "server at %.1f queries/s: p%g %@ against a target of %@: %@ (%d of %d over)",
                                                rate, plan.serverPercentile * 100, ResultPresenter.duration(Double(server.verdict?.percentileNs ?? 0)),
                                                ResultPresenter.duration(Double(targetNs)), server.verdict?.outcome.rawValue ?? "?",
                                                server.verdict?.overTarget ?? 0, queries))
            } else {
                // Start at half the single-stream capacity: the search brackets from there.
                let median = max(result.measurement?.summary.median ?? 1e6, 1)
                let search = try ServerScenario.highestRate(startPerS: 0.5e9 / median, percentile: plan.serverPercentile, targetNs: targetNs,
                                                            steps: plan.serverSearchSteps) { try measure($0).latencies }
                server.search = search
                log(&result, "scenario", search.highestMeetingPerS.map {
                    String(format: "server: highest rate meeting p%g ≤ %@ is %.1f queries/s (%d schedules of %d queries)",
                           plan.serverPercentile * 100, ResultPresenter.duration(Double(targetNs)), $0, search.tried.count, queries)
                } ?? "server: no rate tried met the target (\(search.tried.count) schedules)")
            }
            result.measurement?.scenario = .init(scenario: .server, server: server)
        }
    }
}
