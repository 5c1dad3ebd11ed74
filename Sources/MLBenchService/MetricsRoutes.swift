import Foundation
import Hummingbird
import MLBench

/// `/metrics` in the Prometheus text exposition format (version 0.0.4): queue depth by state,
/// board health and switches, experiment durations (a histogram over finished experiments),
/// results by status, and the sample rates of the probes in the newest results.
public enum MetricsRoutes {
    /// Upper bounds of the duration histogram's buckets, in seconds.
    static let durationBuckets: [Double] = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200]

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/metrics", summary: "Prometheus metrics (text exposition format 0.0.4; no token needed).",
                             role: nil, tag: "service", success: (200, .media("text/plain; version=0.0.4")))) { call in
            let snapshot = try await call.store { store in
                (experiments: try store.experiments(state: nil), boards: try store.boards(),
                 results: try store.list(limit: 100_000), recent: try store.list(limit: 20).compactMap { try store.result(id: $0.id) })
            }
            return ServiceCoding.text(exposition(experiments: snapshot.experiments, boards: snapshot.boards, results: snapshot.results,
                                                 recent: snapshot.recent), type: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    public static func exposition(experiments: [QueuedExperiment], boards: [LabBoard], results: [ResultHeadline], recent: [ExperimentResult]) -> String {
        var out = Exposition()
        out.family("mlbench_queue_experiments", "gauge", "Experiments in the queue, by state.")
        let byState = Dictionary(grouping: experiments, by: \.state)
        for state in QueueState.allCases { out.sample("mlbench_queue_experiments", ["state": state.rawValue], Double(byState[state]?.count ?? 0)) }

        out.family("mlbench_queue_waiting", "gauge", "Queued experiments waiting, by board.")
        for board in boards {
            out.sample("mlbench_queue_waiting", ["board": board.name], Double(experiments.filter { $0.board == board.name && $0.state == .queued }.count))
        }

        out.family("mlbench_board_health", "gauge", "1 for the board's current health, 0 for the others.")
        for board in boards {
            for health in BoardHealth.allCases {
                out.sample("mlbench_board_health", ["board": board.name, "host": board.host, "health": health.rawValue], board.health == health ? 1 : 0)
            }
        }
        out.family("mlbench_board_enabled", "gauge", "1 when the operator lets the board start work.")
        for board in boards { out.sample("mlbench_board_enabled", ["board": board.name, "host": board.host], board.enabled ? 1 : 0) }
        out.family("mlbench_board_busy", "gauge", "1 while the board runs an experiment.")
        for board in boards {
            out.sample("mlbench_board_busy", ["board": board.name, "host": board.host],
                       experiments.contains { $0.board == board.name && $0.state == .running } ? 1 : 0)
        }

        out.family("mlbench_experiment_duration_seconds", "histogram", "Run time of finished experiments (last start to finish), by outcome.")
        for state in [QueueState.succeeded, .failed] {
            let durations = experiments.filter { $0.state == state }.compactMap { experiment -> Double? in
                guard let start = experiment.startedAt, let end = experiment.finishedAt else { return nil }
                return max(0, end.timeIntervalSince(start))
            }
            for bound in durationBuckets {
                out.sample("mlbench_experiment_duration_seconds_bucket", ["state": state.rawValue, "le": Exposition.number(bound)],
                           Double(durations.filter { $0 <= bound }.count))
            }
            out.sample("mlbench_experiment_duration_seconds_bucket", ["state": state.rawValue, "le": "+Inf"], Double(durations.count))
            out.sample("mlbench_experiment_duration_seconds_sum", ["state": state.rawValue], durations.reduce(0, +))
            out.sample("mlbench_experiment_duration_seconds_count", ["state": state.rawValue], Double(durations.count))
        }

        out.family("mlbench_results", "gauge", "Stored results, by status.")
        for status in ["succeeded", "failed"] {
            out.sample("mlbench_results", ["status": status], Double(results.filter { $0.status.rawValue == status }.count))
        }

        out.family("mlbench_probe_sample_rate_hz", "gauge", "Samples per second each probe delivered in the newest result that recorded it.")
        var seen = Set<String>()
        for result in recent {
            for record in result.probes ?? [] where !seen.contains(record.name) {
                seen.insert(record.name)
                let seconds = Double(record.stoppedNs - record.startedNs) / 1e9
                out.sample("mlbench_probe_sample_rate_hz", ["probe": record.name],
                           seconds > 0 ? Double(record.samples.count) / seconds : 0)
            }
        }
        out.family("mlbench_probe_nominal_rate_hz", "gauge", "The rate each probe announced, in the newest result that recorded it.")
        seen.removeAll()
        for result in recent {
            for record in result.probes ?? [] where !seen.contains(record.name) {
                seen.insert(record.name)
                out.sample("mlbench_probe_nominal_rate_hz", ["probe": record.name], record.rateHz)
            }
        }
        return out.text
    }

    struct Exposition {
        var text = ""

        mutating func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))\n"
            text += "# TYPE \(name) \(type)\n"
        }

        mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
            let rendered = labels.keys.sorted { a, b in a == "le" ? false : b == "le" ? true : a < b }
                .map { "\($0)=\"\(Self.escape(labels[$0]!))\"" }.joined(separator: ",")
            text += "\(name)\(rendered.isEmpty ? "" : "{\(rendered)}") \(Self.number(value))\n"
        }

        static func escape(_ value: String) -> String {
            value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
        }

        static func number(_ value: Double) -> String {
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        }
    }
}
