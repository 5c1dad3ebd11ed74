import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MLBenchCore
import Yams

/// What an MLflow tracking server answered when it refused a call: its status, and
/// MLflow's own error code and message (`{"error_code": …, "message": …}`).
public struct MLflowError: Error, CustomStringConvertible, Sendable, Equatable {
    public var endpoint: String
    public var status: Int
    public var code: String?
    public var message: String

    public var description: String {
        "MLflow \(endpoint) answered HTTP \(status)\(code.map { " \($0)" } ?? ""): \(message)"
    }
}

/// The calls of an MLflow tracking server's REST API (`/api/2.0/mlflow/…`) that the
/// export makes, and the artifacts proxy (`/api/2.0/mlflow-artifacts/…`) of a server
/// started with `--serve-artifacts` (the default since MLflow 2.0).
public struct MLflowClient: Sendable {
    public let baseURL: URL
    /// The Authorization header: MLFLOW_TRACKING_TOKEN as a bearer token, else
    /// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD as basic authentication
    /// (the variables MLflow's own client reads).
    let authorization: String?
    public var timeout: Double = 30

    public init(trackingURI: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        var text = trackingURI
        while text.hasSuffix("/") { text.removeLast() }
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw LabError.usage("the MLflow tracking URI '\(trackingURI)' is not an http(s) URL (http://host:port of an MLflow server)")
        }
        baseURL = url
        if let token = environment["MLFLOW_TRACKING_TOKEN"], !token.isEmpty {
            authorization = "Bearer \(token)"
        } else if let user = environment["MLFLOW_TRACKING_USERNAME"], !user.isEmpty {
            let password = environment["MLFLOW_TRACKING_PASSWORD"] ?? ""
            authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        } else {
            authorization = nil
        }
    }

    /// Calls an endpoint of the tracking API (`experiments/get-by-name`, say): GET with
    /// `query`, or POST with `body` as JSON. Returns the answer's JSON object.
    @discardableResult
    public func call(_ endpoint: String, query: [String: String] = [:], body: [String: Any]? = nil) throws -> [String: Any] {
        var components = URLComponents(url: baseURL.appendingPathComponent("api/2.0/mlflow/\(endpoint)"), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
        var request = URLRequest(url: components.url!, timeoutInterval: timeout)
        if let body {
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let response = try send(request, endpoint: endpoint)
        guard !response.body.isEmpty else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else {
            throw MLflowError(endpoint: endpoint, status: response.status, code: nil,
                              message: "the answer is not a JSON object: \(response.text.prefix(200))")
        }
        return object
    }

    /// Uploads one artifact file through the server's artifacts proxy; `path` is relative
    /// to the proxy's root (`<experiment>/<run>/artifacts/<file>`).
    public func upload(_ data: Data, to path: String) throws {
        let escaped = path.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
        var request = URLRequest(url: baseURL.appendingPathComponent("api/2.0/mlflow-artifacts/artifacts/" + escaped.joined(separator: "/")),
                                 timeoutInterval: timeout)
        request.httpMethod = "PUT"
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        request.httpBody = data
        _ = try send(request, endpoint: "artifact upload of \(path)")
    }

    private func send(_ request: URLRequest, endpoint: String) throws -> HTTPExchange.Response {
        var request = request
        if let authorization { request.setValue(authorization, forHTTPHeaderField: "Authorization") }
        let response = try HTTPExchange.send(request, peer: "the MLflow tracking server \(baseURL.absoluteString)")
        guard (200..<300).contains(response.status) else {
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let message = (object?["message"] as? String) ?? String(response.text.prefix(500))
            throw MLflowError(endpoint: endpoint, status: response.status, code: object?["error_code"] as? String,
                              message: message.isEmpty ? "(no message)" : message)
        }
        return response
    }
}

/// A stored result logged as an MLflow run: its definition, board, toolchain, options and
/// versions as parameters; latency statistics, throughput, energy and semantic
/// preservation as metrics, with every measured iteration's latency as a metric history;
/// the result bundle and its raw samples as artifacts. The run is tagged with the
/// result's id, so that exporting the same result again finds the run instead of
/// logging a second one.
public enum MLflowExport {
    /// The experiment runs go to when neither the command nor the inventory names one.
    public static let defaultExperiment = "mlbench"

    /// What was logged, or found already logged.
    public struct Logged: Sendable, Equatable {
        public var experimentID: String
        public var runID: String
        /// The run's page in the MLflow UI.
        public var url: String
        public var parameters: Int
        public var metrics: Int
        public var artifacts: [String]
        /// True when the result had been logged before and nothing new was sent.
        public var alreadyLogged: Bool
    }

    /// One metric value; `step` orders a history (iteration index), 0 for single values.
    public struct Metric: Sendable, Equatable {
        public var key: String
        public var value: Double
        public var step: Int
    }

    /// MLflow's limits (3.x): key length, parameter value length, and what one log-batch
    /// call may carry.
    static let maximumKeyLength = 250
    static let maximumParameterLength = 6000
    static let parametersPerBatch = 100
    static let metricsPerBatch = 1000
    /// The tag that names the result a run holds.
    public static let resultTag = "mlbench.result_id"

    /// Logs `result` as a run of `experiment` (created when missing). A result logged
    /// before (a finished run with its id) is not logged again unless `again`.
    public static func log(_ result: ExperimentResult, experiment: String, client: MLflowClient, again: Bool = false) throws -> Logged {
        let experimentID = try experimentID(named: experiment, client: client)
        if !again, let existing = try finishedRun(of: result.id, experimentID: experimentID, client: client) {
            return Logged(experimentID: experimentID, runID: existing.runID, url: runURL(client, experimentID, existing.runID),
                          parameters: existing.parameters, metrics: existing.metrics, artifacts: [], alreadyLogged: true)
        }
        let timestamp = Int64((result.finishedAt.timeIntervalSince1970 * 1000).rounded())
        let created = try client.call("runs/create", body: [
            "experiment_id": experimentID, "run_name": result.name,
            "start_time": Int64((result.startedAt.timeIntervalSince1970 * 1000).rounded()),
            "tags": tags(of: result).map { ["key": $0.0, "value": $0.1] },
        ])
        guard let info = (created["run"] as? [String: Any])?["info"] as? [String: Any], let runID = info["run_id"] as? String else {
            throw MLflowError(endpoint: "runs/create", status: 200, code: nil, message: "the answer names no run id")
        }
        do {
            // Checked before anything is logged: without the artifacts proxy the client
            // would have to write to the server's storage itself.
            let artifactRoot = try proxiedArtifactRoot(info["artifact_uri"] as? String)
            let parameters = parameters(of: result)
            for batch in stride(from: 0, to: parameters.count, by: parametersPerBatch) {
                try client.call("runs/log-batch", body: ["run_id": runID, "params": parameters[batch..<min(batch + parametersPerBatch, parameters.count)]
                    .map { ["key": $0.0, "value": $0.1] }])
            }
            let metrics = metrics(of: result)
            for batch in stride(from: 0, to: metrics.count, by: metricsPerBatch) {
                try client.call("runs/log-batch", body: ["run_id": runID, "metrics": metrics[batch..<min(batch + metricsPerBatch, metrics.count)]
                    .map { ["key": $0.key, "value": $0.value, "step": $0.step, "timestamp": timestamp] as [String: Any] }])
            }
            let files = try artifacts(of: result)
            for (name, data) in files { try client.upload(data, to: "\(artifactRoot)/\(name)") }
            try client.call("runs/update", body: ["run_id": runID, "status": "FINISHED",
                                                  "end_time": timestamp])
            return Logged(experimentID: experimentID, runID: runID, url: runURL(client, experimentID, runID),
                          parameters: parameters.count, metrics: Set(metrics.map(\.key)).count, artifacts: files.map(\.0), alreadyLogged: false)
        } catch {
            // A run left half-logged is marked failed, so that the next export logs a new one.
            _ = try? client.call("runs/update", body: ["run_id": runID, "status": "FAILED", "end_time": timestamp])
            throw error
        }
    }

    static func runURL(_ client: MLflowClient, _ experimentID: String, _ runID: String) -> String {
        "\(client.baseURL.absoluteString)/#/experiments/\(experimentID)/runs/\(runID)"
    }

    /// The id of the experiment called `name`, created when it does not exist.
    static func experimentID(named name: String, client: MLflowClient) throws -> String {
        do {
            let found = try client.call("experiments/get-by-name", query: ["experiment_name": name])
            if let experiment = found["experiment"] as? [String: Any], let id = experiment["experiment_id"] as? String {
                if let stage = experiment["lifecycle_stage"] as? String, stage != "active" {
                    throw LabError.usage("the MLflow experiment '\(name)' is \(stage); restore it in MLflow or name another with --experiment")
                }
                return id
            }
        } catch let error as MLflowError where error.code == "RESOURCE_DOES_NOT_EXIST" || error.status == 404 {
            // Created below.
        }
        let created = try client.call("experiments/create", body: ["name": name])
        guard let id = created["experiment_id"] as? String else {
            throw MLflowError(endpoint: "experiments/create", status: 200, code: nil, message: "the answer names no experiment id")
        }
        return id
    }

    /// A finished run already holding the result, with its parameter and metric counts.
    static func finishedRun(of resultID: String, experimentID: String, client: MLflowClient) throws -> (runID: String, parameters: Int, metrics: Int)? {
        let found = try client.call("runs/search", body: [
            "experiment_ids": [experimentID], "max_results": 10,
            "filter": "tags.`\(resultTag)` = '\(resultID)' and attributes.status = 'FINISHED'",
        ])
        guard let run = (found["runs"] as? [[String: Any]])?.first, let info = run["info"] as? [String: Any],
              let runID = info["run_id"] as? String else { return nil }
        let data = run["data"] as? [String: Any]
        return (runID, (data?["params"] as? [Any])?.count ?? 0, (data?["metrics"] as? [Any])?.count ?? 0)
    }

    /// The path under the artifacts proxy of a run whose artifact URI is
    /// `mlflow-artifacts:/<experiment>/<run>/artifacts`.
    static func proxiedArtifactRoot(_ uri: String?) throws -> String {
        guard let uri, uri.hasPrefix("mlflow-artifacts:") else {
            throw LabError.usage("the MLflow server keeps this run's artifacts at '\(uri ?? "(none)")', which only clients with access to that storage can write; "
                                 + "start it with --serve-artifacts (the default) so that artifacts are uploaded through it")
        }
        var path = String(uri.dropFirst("mlflow-artifacts:".count))
        if path.hasPrefix("//") {
            // mlflow-artifacts://host:port/path: the proxy of another server; the path is what counts here.
            path = String(path.dropFirst(2).drop { $0 != "/" })
        }
        return path.split(separator: "/").joined(separator: "/")
    }

    // MARK: What is logged

    /// The run's tags: MLflow's own (run name, user, source) and the result's id and status.
    public static func tags(of result: ExperimentResult) -> [(String, String)] {
        [("mlflow.runName", result.name), ("mlflow.user", result.user), ("mlflow.source.name", "mlbench"),
         ("mlflow.source.type", "LOCAL"), (resultTag, result.id), ("mlbench.status", result.status.rawValue)]
            + (result.failure.map { [("mlbench.failure", "\($0.stage): \($0.reason)")] } ?? [])
    }

    /// Parameters: the experiment definition (flattened: `experiment.measurement.min_time_s`),
    /// the board, the toolchain with its options in effect and its versions, the reference,
    /// and the checksums of the files used. Values longer than MLflow accepts are cut (the
    /// whole definition and bundle are artifacts).
    public static func parameters(of result: ExperimentResult) -> [(String, String)] {
        var values = [(String, String)]()
        func add(_ key: String, _ value: String?) {
            guard let value else { return }
            values.append((key, value))
        }
        if let definition = try? Yams.load(yaml: result.experimentText) {
            for (key, value) in flatten(definition, prefix: "experiment") { add(key, value) }
        } else {
            add("experiment.definition", result.experimentText)
        }
        add("experiment.file", result.experimentPath)
        add("user", result.user)
        add("status", result.status.rawValue)
        add("attempts", result.attempts.map(String.init))
        if let board = result.board {
            add("board", board.name)
            add("board.plugin", board.plugin)
            add("board.plugin_version", board.pluginVersion)
            if let description = board.description {
                add("board.architecture", description.architecture)
                add("board.accelerators", description.accelerators?.joined(separator: ","))
            }
            for (key, value) in (board.runnerConditions ?? [:]).sorted(by: { $0.key < $1.key }) { add("board.runner.\(key)", value) }
        }
        if let toolchain = result.toolchain {
            add("toolchain", toolchain.name)
            add("toolchain.plugin", toolchain.plugin)
            add("toolchain.plugin_version", toolchain.pluginVersion)
            add("toolchain.version", toolchain.version)
            add("toolchain.target", toolchain.target)
            add("toolchain.runner", toolchain.runner)
            add("toolchain.environment_lock", toolchain.environmentLock)
            add("toolchain.artifact_sha256", toolchain.artifactSHA256)
            add("toolchain.artifact_cache", toolchain.artifactCache)
            for (key, value) in flatten(anyJSON(toolchain.effectiveOptions ?? toolchain.options), prefix: "toolchain.options") { add(key, value) }
        }
        if let reference = result.reference {
            add("reference", reference.name)
            add("reference.version", reference.version)
        }
        if let measurement = result.measurement {
            add("measurement.stopped_because", measurement.stoppedBecause)
            add("measurement.stopping_rule", measurement.stoppingRule?.rawValue)
            add("measurement.filter", measurement.filter)
        }
        if let report = result.semanticPreservation {
            add("semantic.metric", report.metric.rawValue)
            add("semantic.threshold", "\(report.threshold)")
        }
        for (name, sha256) in result.checksums.sorted(by: { $0.key < $1.key }) { add("sha256.\(name)", sha256) }
        // One value per key (a definition key and a record field may meet), keys MLflow accepts.
        var seen = Set<String>()
        return values.compactMap { key, value in
            let key = metricKey(key)
            guard seen.insert(key).inserted else { return nil }
            return (key, value.count > maximumParameterLength ? String(value.prefix(maximumParameterLength - 1)) + "…" : value)
        }
    }

    /// Metrics: latency statistics in milliseconds, throughput, memory, warm-up, the
    /// offline and server scenarios, energy and power of each probe channel, semantic
    /// preservation and accuracy; then `latency_ms` and `warmup_latency_ms` as histories
    /// (step = iteration). Non-finite values are left out (MLflow rejects them).
    public static func metrics(of result: ExperimentResult) -> [Metric] {
        var metrics = [Metric]()
        func add(_ key: String, _ value: Double?, step: Int = 0) {
            guard let value, value.isFinite else { return }
            metrics.append(Metric(key: metricKey(key), value: value, step: step))
        }
        func milliseconds(_ nanoseconds: Double?) -> Double? { nanoseconds.map { $0 / 1e6 } }
        func summary(_ summary: Summary, prefix: String) {
            add("\(prefix)_min_ms", milliseconds(summary.min))
            add("\(prefix)_max_ms", milliseconds(summary.max))
            add("\(prefix)_mean_ms", milliseconds(summary.mean))
            add("\(prefix)_median_ms", milliseconds(summary.median))
            add("\(prefix)_p90_ms", milliseconds(summary.p90))
            add("\(prefix)_p95_ms", milliseconds(summary.p95))
            add("\(prefix)_p99_ms", milliseconds(summary.p99))
            add("\(prefix)_std_ms", milliseconds(summary.std))
            add("\(prefix)_median_ci_low_ms", milliseconds(summary.medianInterval.lower))
            add("\(prefix)_median_ci_high_ms", milliseconds(summary.medianInterval.upper))
            add("\(prefix)_mean_ci_low_ms", milliseconds(summary.meanInterval?.lower))
            add("\(prefix)_mean_ci_high_ms", milliseconds(summary.meanInterval?.upper))
        }
        if let measurement = result.measurement {
            summary(measurement.summary, prefix: "latency")
            if let filtered = measurement.filteredSummary { summary(filtered, prefix: "latency_filtered") }
            add("iterations", Double(measurement.summary.count))
            add("outliers_tukey", Double(measurement.summary.outliers))
            add("outliers_mad", measurement.summary.madOutliers.map(Double.init))
            // One inference at a time: the throughput is the inverse of the mean latency.
            add("throughput_per_s", measurement.summary.mean > 0 ? 1e9 / measurement.summary.mean : nil)
            add("peak_memory_bytes", Double(measurement.peakMemoryBytes))
            if let invocations = measurement.invocationSummary {
                add("latency_invocations_median_ms", milliseconds(invocations.medianNs))
                add("latency_invocations_ci_low_ms", milliseconds(invocations.interval.lower))
                add("latency_invocations_ci_high_ms", milliseconds(invocations.interval.upper))
            }
            for (phase, record) in (measurement.phases ?? [:]).sorted(by: { $0.key < $1.key }) {
                add("phase_\(phase)_median_ms", milliseconds(record.summary.median))
                add("phase_\(phase)_mean_ms", milliseconds(record.summary.mean))
            }
            if let scenario = measurement.scenario {
                if let offline = scenario.offline {
                    add("offline_throughput_per_s", offline.throughputPerS)
                    add("offline_queries", Double(offline.queries))
                }
                if let server = scenario.server {
                    add("server_target_ms", milliseconds(Double(server.targetNs)))
                    add("server_rate_per_s", server.ratePerS)
                }
            }
        }
        if let warmUp = result.warmUp {
            add("warmup_iterations", Double(warmUp.durationsNs.count))
            add("warmup_steady_state_index", warmUp.analysis.steadyStateIndex.map(Double.init))
        }
        for record in result.energy ?? [] {
            let channel = "\(record.probe)_\(record.channel)"
            add("energy_\(channel)_median_j", record.medianJ)
            add("energy_\(channel)_mean_j", record.meanJ)
            add("power_\(channel)_mean_w", record.meanPowerW)
            add("energy_\(channel)_uncovered_iterations", Double(record.uncoveredIterations))
        }
        if let report = result.semanticPreservation {
            add("preservation_ratio", report.ratio)
            add("preserved_samples", Double(report.preservedSamples))
            add("semantic_samples", Double(report.samples))
            for output in report.outputs {
                add("output_\(output.name)_worst_max_abs", output.worstMaxAbs)
                add("output_\(output.name)_mean_max_abs", output.meanMaxAbs)
                add("output_\(output.name)_worst_cosine_distance", output.worstCosineDistance)
                add("output_\(output.name)_worst_l2", output.worstL2)
                add("output_\(output.name)_non_finite_samples", Double(output.nonFiniteSamples))
            }
            if let accuracy = report.accuracy {
                for (side, scores) in [("deployed", accuracy.deployed), ("reference", accuracy.reference)] {
                    for (key, value) in flatten(anyJSON(scores), prefix: "accuracy_\(side)") {
                        add(key, Double(value))
                    }
                }
            }
        }
        for (step, duration) in (result.warmUp?.durationsNs ?? []).enumerated() { add("warmup_latency_ms", Double(duration) / 1e6, step: step) }
        for (step, duration) in (result.measurement?.durationsNs ?? []).enumerated() { add("latency_ms", Double(duration) / 1e6, step: step) }
        return metrics
    }

    /// Artifacts: the whole result bundle, the definition as written, and the raw samples
    /// as CSV (measured iterations, warm-up iterations, each probe's samples).
    public static func artifacts(of result: ExperimentResult) throws -> [(String, Data)] {
        var files = [("result.json", try ResultCoding.encoder.encode(result)),
                     ("experiment.yaml", Data(result.experimentText.utf8))]
        if let measurement = result.measurement {
            var csv = "iteration,start_ns,duration_ns\n"
            for (index, duration) in measurement.durationsNs.enumerated() {
                csv += "\(index),\(index < measurement.startsNs.count ? String(measurement.startsNs[index]) : ""),\(duration)\n"
            }
            files.append(("samples/latency.csv", Data(csv.utf8)))
        }
        if let warmUp = result.warmUp {
            files.append(("samples/warmup.csv", Data(("iteration,duration_ns\n" + warmUp.durationsNs.enumerated()
                .map { "\($0.offset),\($0.element)\n" }.joined()).utf8)))
        }
        for probe in result.probes ?? [] where !probe.samples.isEmpty {
            var csv = "timestamp_ns,channel,unit,value\n"
            for sample in probe.samples {
                let channel = Int(sample.channel) < probe.channels.count ? probe.channels[Int(sample.channel)] : ProbeChannel(name: "\(sample.channel)", unit: "")
                csv += "\(sample.timestampNs),\(channel.name),\(channel.unit),\(sample.value)\n"
            }
            files.append(("samples/probe-\(metricKey(probe.name).replacingOccurrences(of: "/", with: "_")).csv", Data(csv.utf8)))
        }
        return files
    }

    /// A key MLflow accepts: letters, digits, `_ - . /` and spaces, at most 250 characters.
    static func metricKey(_ key: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./ ")
        var cleaned = String(key.map { allowed.contains($0) ? $0 : "_" })
        while cleaned.contains("..") { cleaned = cleaned.replacingOccurrences(of: "..", with: "._") }
        while cleaned.hasPrefix("/") { cleaned.removeFirst() }
        return String(cleaned.prefix(maximumKeyLength))
    }

    /// Dotted keys and text values of every leaf of a YAML/JSON tree: objects by key,
    /// arrays by index; a scalar at `prefix` itself keeps that key.
    static func flatten(_ value: Any?, prefix: String) -> [(String, String)] {
        switch value {
        case let object as [String: Any]:
            return object.keys.sorted().flatMap { flatten(object[$0], prefix: "\(prefix).\($0)") }
        case let object as [AnyHashable: Any]:
            let byName = Dictionary(object.map { ("\($0.key.base)", $0.value) }, uniquingKeysWith: { first, _ in first })
            return byName.keys.sorted().flatMap { flatten(byName[$0], prefix: "\(prefix).\($0)") }
        case let array as [Any]:
            return array.enumerated().flatMap { flatten($0.element, prefix: "\(prefix).\($0.offset)") }
        case nil, is NSNull:
            return []
        default:
            return [(prefix, "\(value!)")]
        }
    }

    /// An Encodable value as Foundation JSON objects, for `flatten`.
    static func anyJSON<T: Encodable>(_ value: T) -> Any? {
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }
}
