import Foundation
import MLBenchCore

/// Text forms of results for the terminal.
public enum ResultPresenter {
    public static func summary(_ result: ExperimentResult, store: String) -> String {
        var lines = ["result \(result.id) — \(result.name): \(result.status.rawValue.uppercased())"]
        if let failure = result.failure {
            let kind = failure.kind.map { " (\($0.rawValue))" } ?? ""
            lines.append("  failed at \(failure.stage)\(kind): \(failure.reason)")
        }
        if let attempts = result.attempts, attempts > 1 {
            lines.append("  attempts   \(attempts) (transient faults retried)")
        }
        if let prediction = result.prediction {
            lines.append("  PREDICTED  for board \(prediction.board) with \(prediction.toolchain); nothing was measured")
            for (target, value) in prediction.targets.sorted(by: { $0.key < $1.key }) {
                let unseen = value.validation?["unseen_architectures"]
                let errors = (unseen?["mape"] ?? nil).map { mape in
                    String(format: ", MAPE %.1f %%", mape) + ((unseen?["within_10"] ?? nil).map { String(format: ", %.0f %% within ±10 %%", $0) } ?? "") + " on unseen architectures"
                } ?? ""
                lines.append("    \(target) \(String(format: "%.4g", value.value)) (\(value.regressor), version \(value.version)\(errors))")
            }
        }
        if let board = result.board { lines.append("  board      \(board.name) (\(board.description?.architecture ?? "?"), plugin \(board.plugin) \(board.pluginVersion))") }
        if let toolchain = result.toolchain {
            lines.append("  toolchain  \(toolchain.name) \(toolchain.version), target \(toolchain.target)")
        }
        if let reference = result.reference { lines.append("  reference  \(reference.name) \(reference.version)") }
        if let conditions = result.board?.conditions, !conditions.applied.isEmpty {
            lines.append("  conditions " + conditions.applied.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
                         + ((result.board?.restored).map { _ in "; restored after" } ?? ""))
            for (name, reason) in (conditions.unavailable ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append("    \(name) not applied: \(reason)")
            }
            if let runner = result.board?.runnerConditions {
                lines.append("    runner " + runner.sorted(by: { $0.key < $1.key }).map { "\($0.key.replacingOccurrences(of: "runner_", with: "")) \($0.value)" }.joined(separator: ", "))
            }
        }
        if let cache = result.toolchain?.artifactCache { lines.append("  artifact   \(cache)" + ((result.toolchain?.artifactSHA256).map { ", sha256 \($0.prefix(12))" } ?? "")) }
        for finding in result.toolchain?.compatibility ?? [] where finding.severity != .info {
            lines.append("  check      \(finding.severity.rawValue): \(finding.message)")
        }
        if let warmUp = result.warmUp {
            let analysis = warmUp.analysis
            let method = analysis.classification == nil ? "MSER-5" : "changepoints and MSER-5"
            lines.append("  warm-up    \(warmUp.durationsNs.count) iterations, " +
                         (analysis.steadyStateIndex.map { "steady state from iteration \($0) (\(method))" }
                            ?? "NO STEADY STATE detected: the measurement may still drift"))
            if let classification = analysis.classification {
                let spikes = analysis.spikesIgnored.map { ", \($0) spikes ignored" } ?? ""
                lines.append("    shape \(classification.rawValue), \(max(0, (analysis.segments?.count ?? 1) - 1)) changepoints\(spikes)")
            }
        }
        if let measurement = result.measurement {
            let s = measurement.summary
            lines.append("  latency    \(s.count) iterations (stopped on \(measurement.stoppedBecause))")
            if let placement = measurement.inputPlacement { lines.append("    \(placement.note)") }
            lines.append(contentsOf: summaryLines(s, label: "raw"))
            if let filtered = measurement.filteredSummary {
                lines.append(contentsOf: summaryLines(filtered, label: "filtered"))
                if let filter = measurement.filter { lines.append("      (\(filter))") }
            }
            if let canary = measurement.canary {
                lines.append("    canary: \(canary.note) (quiet level \(duration(canary.baselineNs)), threshold \(duration(canary.thresholdNs)))")
                if let corrected = canary.correctedSummary, canary.disturbedIterations > 0 {
                    lines.append(contentsOf: summaryLines(corrected, label: "canary-corrected"))
                }
            }
            for (phase, record) in (measurement.phases ?? [:]).sorted(by: { $0.key < $1.key }) {
                lines.append(contentsOf: summaryLines(record.summary, label: "runtime \(phase)"))
            }
            if let native = measurement.nativeBenchmark {
                lines.append("  native     " + nativeBenchmarkLine(native))
            }
            if let between = measurement.invocationSummary, let invocations = measurement.invocations {
                lines.append("    across \(invocations.count) invocations: median of medians \(duration(between.medianNs))   "
                             + "95% CI [\(duration(between.interval.lower)), \(duration(between.interval.upper))]   (medians "
                             + invocations.map { duration($0.medianNs) }.joined(separator: ", ") + ")")
            }
            if let offline = measurement.scenario?.offline {
                lines.append(String(format: "  offline    %.1f queries/s (%d queries in %@)", offline.throughputPerS, offline.queries,
                                    duration(Double(offline.totalNs))))
            }
            if let server = measurement.scenario?.server {
                let target = "p\(String(format: "%g", server.percentile * 100)) ≤ \(duration(Double(server.targetNs)))"
                if let rate = server.ratePerS, let verdict = server.verdict {
                    lines.append(String(format: "  server     %.1f queries/s: %@ %@ (%@ measured; %d of %d over)", rate, target,
                                        verdict.outcome.rawValue.uppercased(), duration(Double(verdict.percentileNs ?? 0)),
                                        verdict.overTarget, verdict.queries))
                } else if let search = server.search {
                    lines.append("  server     highest rate meeting \(target): "
                                 + (search.highestMeetingPerS.map { String(format: "%.1f queries/s", $0) } ?? "none tried")
                                 + (search.lowestMissingPerS.map { String(format: " (%.1f/s does not)", $0) } ?? ""))
                }
            }
            lines.append("  memory     peak \(bytes(measurement.peakMemoryBytes)) (runner process)")
        }
        for record in result.probes ?? [] {
            if let failure = record.failure {
                lines.append(String(format: "  probe      %@: FAILED after %d samples (no samples for the last %.3f s): %@", record.name,
                                    record.samples.count, record.gap?.seconds ?? 0, failure))
            } else {
                lines.append("  probe      \(record.name): \(record.samples.count) samples on \(record.channels.map { "\($0.name) (\($0.unit))" }.joined(separator: ", "))")
            }
            for sampling in record.sampling ?? [] where sampling.isWorthNoting {
                lines.append("    \(sampling.channel): \(sampling.note)")
            }
        }
        for energy in result.energy ?? [] { lines.append("  energy     \(energy.probe).\(energy.channel): \(energy.note)") }
        if let coolDown = result.coolDown { lines.append("  cool-down  \(coolDown.note)") }
        if let report = result.semanticPreservation {
            lines.append(String(format: "  semantic preservation  ratio %.4f (%d/%d samples, %@)",
                                report.ratio, report.preservedSamples, report.samples, criterion(report)))
            for output in report.outputs {
                func g(_ value: Double?) -> String { value.map { String(format: "%.3g", $0) } ?? "n/a" }
                var line = "    \(output.name): worst max-abs \(g(output.worstMaxAbs)), worst cosine distance \(g(output.worstCosineDistance))"
                if output.worstL2 != nil { line += ", worst L2 \(g(output.worstL2))" }
                if let identical = output.identicalSamples, identical == output.samples {
                    line += ", PSNR ∞ (identical)"
                } else if let psnr = output.worstPsnr {
                    line += String(format: ", worst PSNR %.1f dB", psnr)
                }
                if let agreeing = output.topKAgreeingSamples { line += ", top-\(report.k ?? 1) agrees \(agreeing)/\(output.samples)" }
                lines.append(line + ", \(output.preservedSamples)/\(output.samples) preserved")
            }
            if let accuracy = report.accuracy {
                lines.append("    accuracy of '\(accuracy.output)' against \(accuracy.labels) (\(accuracy.task.rawValue), \(accuracy.samples) samples): deployed | reference")
                func pair(_ name: String, _ d: Double?, _ r: Double?) -> String {
                    "\(name) \(d.map { String(format: "%.4g", $0) } ?? "n/a") | \(r.map { String(format: "%.4g", $0) } ?? "n/a")"
                }
                if let d = accuracy.deployed.classification, let r = accuracy.reference.classification {
                    lines.append("      " + [pair("accuracy", d.accuracy, r.accuracy), pair("precision", d.macroPrecision, r.macroPrecision),
                                             pair("recall", d.macroRecall, r.macroRecall), pair("F1", d.macroF1, r.macroF1),
                                             pair("IoU", d.meanIou, r.meanIou)].joined(separator: "   "))
                }
                if let d = accuracy.deployed.regression, let r = accuracy.reference.regression {
                    lines.append("      " + [pair("MSE", d.mse, r.mse), pair("MAE", d.mae, r.mae), pair("RMSE", d.rmse, r.rmse),
                                             pair("R²", d.r2, r.r2), pair("adjusted R²", d.adjustedR2, r.adjustedR2)].joined(separator: "   "))
                }
            }
        }
        lines.append("  stored in \(store)")
        return lines.joined(separator: "\n")
    }

    /// When a sample counts as preserved, in words: the direction of the comparison
    /// depends on the metric (PSNR is better when higher), and two metrics take no threshold.
    public static func criterion(_ report: SemanticReport) -> String {
        switch report.metric {
        case .psnr: return String(format: "psnr ≥ %g dB", report.threshold)
        case .allclose: return String(format: "allclose, atol %g, rtol %g", report.atol ?? 0, report.rtol ?? 0)
        case .topK: return "top-\(report.k ?? 1) indices equal"
        default: return String(format: "%@ ≤ %g", report.metric.rawValue, report.threshold)
        }
    }

    /// The lines of one latency summary: central values with their intervals, tails
    /// with their binomial bounds, spread and outliers.
    /// The vendor tool's headline figures: DPU-only frames per second (xdputil),
    /// throughput and GPU compute time (trtexec); the rest is in `--json`.
    static func nativeBenchmarkLine(_ figures: JSONValue) -> String {
        var parts = [figures["tool"]?.stringValue ?? "vendor tool"]
        if let fps = figures["fps"]?.doubleValue {
            parts.append(String(format: "%.1f frames/s on the DPU alone", fps))
        }
        if let summary = figures["summary"] {
            if let qps = summary["throughput_qps"]?.doubleValue { parts.append(String(format: "throughput %.1f qps", qps)) }
            if let compute = summary["gpu_compute_time_ms"]?["median"]?.doubleValue {
                parts.append(String(format: "GPU compute median %.3f ms", compute))
            }
            if let latency = summary["latency_ms"]?["median"]?.doubleValue {
                parts.append(String(format: "host latency (H2D + compute + D2H) median %.3f ms", latency))
            }
        }
        return parts.joined(separator: ", ")
    }

    static func summaryLines(_ s: Summary, label: String) -> [String] {
        var lines = ["    \(label) (\(s.count)): min \(duration(s.min))   median \(duration(s.median))   mean \(duration(s.mean))   max \(duration(s.max))"]
        let level = Int(s.medianInterval.level * 100)
        var intervals = "      median \(level)% CI [\(duration(s.medianInterval.lower)), \(duration(s.medianInterval.upper))]"
        if let mean = s.meanInterval { intervals += "   mean \(level)% CI [\(duration(mean.lower)), \(duration(mean.upper))]" }
        lines.append(intervals)
        var tails = [String]()
        for (name, q, value) in [("p90", 0.9, s.p90), ("p95", 0.95, s.p95 ?? .nan), ("p99", 0.99, s.p99)] where !value.isNaN {
            if let bound = s.tailBound(q) {
                tails.append("\(name) \(duration(value)) [\(bound.lower.map(duration) ?? "–"), \(bound.upper.map(duration) ?? "too few values")]")
            } else {
                tails.append("\(name) \(duration(value))")
            }
        }
        lines.append("      " + tails.joined(separator: "   "))
        let mad = s.madOutliers.map { ", MAD \($0)" } ?? ""
        lines.append("      std \(duration(s.std))   outliers (Tukey) \(s.outliers)\(mad), kept")
        return lines
    }

    public static func list(_ headlines: [ResultHeadline]) -> String {
        guard !headlines.isEmpty else { return "no results stored yet" }
        var rows = [["ID", "NAME", "STATUS", "BOARD", "TOOLCHAIN", "MEDIAN", "PRESERVED", "FINISHED"]]
        for headline in headlines {
            rows.append([String(headline.id.prefix(8)), headline.name, headline.status.rawValue, headline.board ?? "-",
                         [headline.toolchain, headline.toolchainVersion].compactMap { $0 }.joined(separator: " "),
                         headline.medianNs.map(duration) ?? "-",
                         headline.preservationRatio.map { String(format: "%.4f", $0) } ?? "-",
                         ResultCoding.timestamp(headline.finishedAt)])
        }
        return table(rows)
    }

    public static func table(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    public static func duration(_ nanoseconds: Double) -> String {
        switch nanoseconds {
        case ..<1_000: return String(format: "%.0f ns", nanoseconds)
        case ..<1_000_000: return String(format: "%.2f µs", nanoseconds / 1_000)
        case ..<1_000_000_000: return String(format: "%.3f ms", nanoseconds / 1_000_000)
        default: return String(format: "%.3f s", nanoseconds / 1_000_000_000)
        }
    }

    static func bytes(_ count: Int64) -> String {
        String(format: "%.1f MiB", Double(count) / 1_048_576)
    }
}
