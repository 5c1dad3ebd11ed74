import Foundation
import MLBenchCore

/// Text forms of results for the terminal.
public enum ResultPresenter {
    public static func summary(_ result: ExperimentResult, store: String) -> String {
        var lines = ["result \(result.id) — \(result.name): \(result.status.rawValue.uppercased())"]
        if let failure = result.failure {
            lines.append("  failed at \(failure.stage): \(failure.reason)")
        }
        if let board = result.board { lines.append("  board      \(board.name) (\(board.description?.architecture ?? "?"), plugin \(board.plugin) \(board.pluginVersion))") }
        if let toolchain = result.toolchain {
            lines.append("  toolchain  \(toolchain.name) \(toolchain.version), target \(toolchain.target)")
        }
        if let reference = result.reference { lines.append("  reference  \(reference.name) \(reference.version)") }
        if let warmUp = result.warmUp {
            lines.append("  warm-up    \(warmUp.durationsNs.count) iterations, " +
                         (warmUp.analysis.steadyStateIndex.map { "steady state from iteration \($0) (MSER-5)" } ?? "no steady state detected"))
        }
        if let measurement = result.measurement {
            let s = measurement.summary
            lines.append("  latency    \(s.count) iterations (stopped on \(measurement.stoppedBecause))")
            lines.append("    min \(duration(s.min))   median \(duration(s.median))   mean \(duration(s.mean))")
            lines.append("    p90 \(duration(s.p90))   p99 \(duration(s.p99))   std \(duration(s.std))")
            lines.append("    median \(Int(s.medianInterval.level * 100))% CI [\(duration(s.medianInterval.lower)), \(duration(s.medianInterval.upper))]   outliers (Tukey) \(s.outliers), kept")
            lines.append("  memory     peak \(bytes(measurement.peakMemoryBytes)) (runner process)")
        }
        if let report = result.semanticPreservation {
            lines.append(String(format: "  semantic preservation  ratio %.4f (%d/%d samples, %@ ≤ %g)",
                                report.ratio, report.preservedSamples, report.samples, report.metric.rawValue, report.threshold))
            for output in report.outputs {
                let maxAbs = output.worstMaxAbs.map { String(format: "%.3g", $0) } ?? "n/a"
                let cosine = output.worstCosineDistance.map { String(format: "%.3g", $0) } ?? "n/a"
                lines.append("    \(output.name): worst max-abs \(maxAbs), worst cosine distance \(cosine), \(output.preservedSamples)/\(output.samples) preserved")
            }
        }
        lines.append("  stored in \(store)")
        return lines.joined(separator: "\n")
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
