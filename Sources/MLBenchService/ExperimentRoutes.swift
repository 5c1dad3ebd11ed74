import Foundation
import Hummingbird
import MLBench
import NIOCore

/// The queue: submit experiments and sweeps, list and follow them, abort, suspend, resume,
/// share. Everything goes through the same library code as `mlbench queue`.
public enum ExperimentRoutes {
    struct NewExperiment: Decodable {
        /// The experiment definition, YAML or JSON text.
        var definition: String
        /// Names used in the definition → SHA-256 of the caller's uploads.
        var files: [String: String]?
        var series: String?
        /// Run it on this board instead of the definition's (same plugin and kind).
        var board: String?
        /// Let the lab choose the board: compatible, enabled, healthy and least busy.
        var anyBoard: Bool?
        var notifyEmail: String?
        var notifyWebhook: String?
    }

    struct NewSweep: Decodable {
        var definition: String
        var files: [String: String]?
        /// Swept parameters, `PATH=V1,V2`.
        var parameters: [String]?
        /// Only these boards (default: every compatible one).
        var boards: [String]?
        var series: String?
        var notifyEmail: String?
        var notifyWebhook: String?
    }

    /// A queued experiment as the API shows it.
    struct View: Encodable {
        var id: String
        var name: String
        var user: String
        var board: String
        var series: String?
        var state: QueueState
        var submittedAt: Date
        var startedAt: Date?
        var finishedAt: Date?
        var attempts: Int
        var worker: String?
        var resultId: String?
        var note: String?
        var definition: String?

        init(_ experiment: QueuedExperiment, definition: Bool = false) {
            id = experiment.id
            name = experiment.name
            user = experiment.user
            board = experiment.board
            series = experiment.series
            state = experiment.state
            submittedAt = experiment.submittedAt
            startedAt = experiment.startedAt
            finishedAt = experiment.finishedAt
            attempts = experiment.attempts
            worker = experiment.leaseOwner
            resultId = experiment.resultID
            note = experiment.note
            self.definition = definition ? experiment.definition : nil
        }
    }

    struct SweepView: Encodable {
        var series: String
        var boards: [String]
        var experiments: [View]
    }

    struct Changed: Encodable { var changed: Int }
    struct ShareRequest: Decodable { var user: String }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .post, path: "/api/v1/experiments",
                             summary: "Submit an experiment: its definition (YAML or JSON) naming uploaded files; checked, then queued.",
                             role: .user, tag: "experiments", body: .json("NewExperiment"), success: (201, .json("Experiment")),
                             errors: [409, 422])) { call in
            let request = try await call.json(NewExperiment.self)
            let user = call.user.name
            let service = call.service
            let folder = service.submissions.appendingPathComponent(UUID().uuidString.lowercased(), isDirectory: true)
            let queued = try await call.store { store -> QueuedExperiment in
                do {
                    let file = try Definitions.prepare(definition: request.definition, files: request.files ?? [:], user: user, store: store,
                                                       blobs: service.lab.home.blobs, into: folder)
                    let board = request.anyBoard == true ? try Submitting.placement(for: file, lab: service.lab, store: store) : request.board
                    return try Submitting.submit(file, lab: service.lab, store: store, user: user, board: board, series: request.series,
                                                 notify: .init(email: request.notifyEmail, webhook: request.notifyWebhook))
                } catch {
                    try? FileManager.default.removeItem(at: folder)
                    throw error
                }
            }
            return try ServiceCoding.response(View(queued, definition: true), status: .created)
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/sweeps",
                             summary: "Queue an experiment on every compatible board and every combination of swept values, as one series.",
                             role: .user, tag: "experiments", body: .json("NewSweep"), success: (201, .json("Sweep")), errors: [409, 422])) { call in
            let request = try await call.json(NewSweep.self)
            let user = call.user.name
            let service = call.service
            let folder = service.submissions.appendingPathComponent(UUID().uuidString.lowercased(), isDirectory: true)
            let outcome = try await call.store { store -> Submitting.SweepOutcome in
                do {
                    let file = try Definitions.prepare(definition: request.definition, files: request.files ?? [:], user: user, store: store,
                                                       blobs: service.lab.home.blobs, into: folder)
                    return try Submitting.sweep(file, lab: service.lab, store: store, user: user, parameters: request.parameters ?? [],
                                                boards: request.boards ?? [], series: request.series,
                                                notify: .init(email: request.notifyEmail, webhook: request.notifyWebhook))
                } catch {
                    try? FileManager.default.removeItem(at: folder)
                    throw error
                }
            }
            return try ServiceCoding.response(SweepView(series: outcome.series, boards: outcome.boards, experiments: outcome.experiments.map { View($0) }),
                                              status: .created)
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/experiments",
                             summary: "Queued, running and finished experiments the caller may see (operators: all), in submission order.",
                             role: .user, tag: "experiments",
                             query: [("state", "Only this state."), ("series", "Only this series."), ("user", "Only this user's.")],
                             success: (200, .jsonArray("Experiment")))) { call in
            let state = try call.query("state").map { name in
                guard let state = QueueState(rawValue: name) else {
                    throw APIError.badRequest("state '\(name)' is not one of \(QueueState.allCases.map(\.rawValue).joined(separator: ", "))", field: "state")
                }
                return state
            }
            let (series, owner, user) = (call.query("series"), call.query("user"), call.user)
            let list = try await call.store { try $0.experiments(state: state, visibleTo: user) }
                .filter { series == nil || $0.series == series }.filter { owner == nil || $0.user == owner }
            return try ServiceCoding.response(list.map { View($0) })
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/experiments/{id}", summary: "One experiment, with its definition.",
                             role: .user, tag: "experiments", success: (200, .json("Experiment")), errors: [404])) { call in
            try ServiceCoding.response(View(try await visible(call), definition: true))
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/experiments/{id}/log", summary: "The experiment's step log (its run's progress lines).",
                             role: .user, tag: "experiments", query: [("after", "Only lines after this sequence number.")],
                             success: (200, .jsonArray("LogLine")), errors: [404])) { call in
            let experiment = try await visible(call)
            let after = call.query("after").flatMap(Int64.init) ?? 0
            return try ServiceCoding.response(try await call.store { try $0.log(experiment: experiment.id, after: after) })
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/experiments/{id}/events",
                             summary: "Live progress as server-sent events: `state` (the experiment, at each change), `log` (each step-log line), `end` (once final). The token may be given as ?access_token= for EventSource.",
                             role: .user, tag: "experiments", query: [("access_token", "The API token, for clients that cannot set headers.")],
                             success: (200, .media("text/event-stream")), errors: [404])) { call in
            let experiment = try await visible(call)
            return EventStream.response(for: experiment.id, service: call.service)
        }
        for (verb, summary) in [("abort", "Abort it (a running one is stopped at its next heartbeat)."),
                                ("suspend", "Hold it back (a running one starts again from the beginning on resume)."),
                                ("resume", "Put a suspended experiment back in the queue.")] {
            routes.add(RouteSpec(method: .post, path: "/api/v1/experiments/{id}/\(verb)", summary: summary + " Its owner or an operator.",
                                 role: .user, tag: "experiments", success: (200, .json("Changed")), errors: [403, 404])) { call in
                let experiment = try await visible(call)
                try owns(call, [experiment])
                let changed = try await perform(verb, .experiment(experiment.id), call)
                return try ServiceCoding.response(Changed(changed: changed))
            }
            routes.add(RouteSpec(method: .post, path: "/api/v1/series/{name}/\(verb)", summary: summary.replacingOccurrences(of: "it", with: "every experiment of the series") + " Its owner or an operator.",
                                 role: .user, tag: "experiments", success: (200, .json("Changed")), errors: [403, 404])) { call in
                let name = try call.parameter("name")
                let user = call.user
                let members = try await call.store { try $0.experiments(state: nil, visibleTo: user) }.filter { $0.series == name }
                guard !members.isEmpty else { throw APIError.notFound("series '\(name)'") }
                try owns(call, members)
                let changed = try await perform(verb, .series(name), call)
                return try ServiceCoding.response(Changed(changed: changed))
            }
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/experiments/{id}/shares", summary: "Whom the experiment is shared with.",
                             role: .user, tag: "sharing", success: (200, .jsonArray("Share")), errors: [404])) { call in
            let experiment = try await visible(call)
            return try ServiceCoding.response(try await call.store { try $0.shares(.experiment, experiment.id) })
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/experiments/{id}/shares",
                             summary: "Share the experiment (definition, state, log and result) with a user. Its owner only.",
                             role: .user, tag: "sharing", body: .json("ShareRequest"), success: (201, .json("Share")), errors: [403, 404])) { call in
            let experiment = try await visible(call)
            try ownsStrictly(call, owner: experiment.user)
            let request = try await call.json(ShareRequest.self)
            let owner = call.user.name
            let share = try await call.store { store -> Share in
                guard try store.user(named: request.user) != nil else { throw APIError.notFound("user '\(request.user)'") }
                try store.share(.experiment, experiment.id, with: request.user, by: owner)
                return try store.shares(.experiment, experiment.id).first { $0.user == request.user }!
            }
            return try ServiceCoding.response(share, status: .created)
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/experiments/{id}/shares/{user}", summary: "Stop sharing the experiment with a user. Its owner only.",
                             role: .user, tag: "sharing", success: (204, .media("none")), errors: [403, 404])) { call in
            let experiment = try await visible(call)
            try ownsStrictly(call, owner: experiment.user)
            let other = try call.parameter("user")
            try await call.store { store in
                guard try store.shares(.experiment, experiment.id).contains(where: { $0.user == other }) else { throw APIError.notFound("share with '\(other)'") }
                try store.unshare(.experiment, experiment.id, with: other)
            }
            return Response(status: .noContent)
        }
    }

    /// The experiment of the path, if the caller may see it; else 404 (whether or not it exists).
    static func visible(_ call: Call) async throws -> QueuedExperiment {
        let id = try call.parameter("id")
        let user = call.user
        guard let experiment = try await call.store({ store -> QueuedExperiment? in
            guard let experiment = try store.experiment(id: id), try store.canSee(experiment: experiment, as: user) else { return nil }
            return experiment
        }) else { throw APIError.notFound("experiment '\(id)'") }
        return experiment
    }

    /// Control is for the owner and operators: others who may see it (shared) get 403.
    static func owns(_ call: Call, _ experiments: [QueuedExperiment]) throws {
        let user = call.user
        if user.role >= .operator { return }
        if let other = experiments.first(where: { $0.user != user.name }) {
            throw APIError.forbidden("experiment \(other.id) is \(other.user)'s; only its owner or an operator may control it")
        }
    }

    static func ownsStrictly(_ call: Call, owner: String) throws {
        guard call.user.name == owner else { throw APIError.forbidden("only the owner (\(owner)) may share it") }
    }

    static func perform(_ verb: String, _ target: QueueTarget, _ call: Call) async throws -> Int {
        let by = call.user.name
        return try await call.store { store in
            switch verb {
            case "abort": return try store.abort(target, reason: "aborted by \(by)", at: Date())
            case "suspend": return try store.suspend(target, at: Date())
            default: return try store.resume(target, at: Date())
            }
        }
    }
}

/// Server-sent events of one experiment, read from the store: its state at each change, its
/// step-log lines as they are stored, and `end` once it is final. Bounded: the stream ends
/// after `eventStreamLimit` seconds (clients reconnect), and a comment keeps it alive.
enum EventStream {
    static func response(for id: String, service: LabService) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            let started = Date()
            var lastState: String?
            var logged: Int64 = 0
            var lastWrite = Date()
            let poll = max(0.05, service.configuration.eventPoll)
            while Date().timeIntervalSince(started) < service.configuration.eventStreamLimit {
                let after = logged
                let (experiment, lines) = try await service.withStore { store in
                    (try store.experiment(id: id), try store.log(experiment: id, after: after))
                }
                guard let experiment else { break }
                for line in lines {
                    try await writer.write(event("log", line, id: "\(line.sequence)"))
                    logged = line.sequence
                    lastWrite = Date()
                }
                let view = ExperimentRoutes.View(experiment)
                let stateText = String(decoding: try ServiceCoding.encoder.encode(view), as: UTF8.self)
                if stateText != lastState {
                    try await writer.write(event("state", view))
                    lastState = stateText
                    lastWrite = Date()
                }
                if experiment.state.isFinal {
                    try await writer.write(event("end", view))
                    break
                }
                if Date().timeIntervalSince(lastWrite) > 15 {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = Date()
                }
                try await Task.sleep(nanoseconds: UInt64(poll * 1_000_000_000))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func event<T: Encodable>(_ name: String, _ value: T, id: String? = nil) throws -> ByteBuffer {
        let data = String(decoding: try ServiceCoding.encoder.encode(value), as: UTF8.self)
        var text = "event: \(name)\n"
        if let id { text += "id: \(id)\n" }
        text += "data: \(data)\n\n"
        return ByteBuffer(string: text)
    }
}
