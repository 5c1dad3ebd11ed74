import Foundation
import Hummingbird
import MLBench

/// Stored results: list, show, compare, export, share, delete. A result the caller may
/// not read is answered 404, the same as one that does not exist.
public enum ResultRoutes {
    struct CompareRequest: Decodable { var ids: [String] }
    struct ComparisonView: Encodable {
        struct Row: Encodable {
            var id: String
            var name: String
            var board: String?
            var toolchain: String?
            var iterations: Int?
            var medianNs: Double?
            var medianCiLowNs: Double?
            var medianCiHighNs: Double?
            var meanNs: Double?
            var preservationRatio: Double?
            /// Median over the baseline's median (nil for the baseline).
            var ratioToBaseline: Double?
            /// Mann–Whitney U two-sided p-value against the baseline, and Holm-adjusted.
            var p: Double?
            var pHolm: Double?
            var significant: Bool?
        }
        var baseline: String
        var level: Double
        var results: [Row]
        /// The same comparison as `mlbench results compare` prints it.
        var text: String
    }
    struct ShareRequest: Decodable { var user: String }
    struct Verification: Encodable {
        var id: String
        var intact: Bool
        var problems: [String]
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/results", summary: "The newest results the caller may read (their own and those shared with them).",
                             role: .user, tag: "results", query: [("limit", "How many (default 50).")],
                             success: (200, .jsonArray("ResultHeadline")))) { call in
            let limit = max(1, min(call.query("limit").flatMap(Int.init) ?? 50, 10_000))
            let user = call.user
            return try ServiceCoding.response(try await call.store { try $0.list(limit: limit, visibleTo: user) })
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/results/{id}",
                             summary: "One result's whole bundle (raw timings, samples, log) as stored; a unique id prefix is enough.",
                             role: .user, tag: "results", success: (200, .json("Result")), errors: [404])) { call in
            try ServiceCoding.response(try await readable(call, try call.parameter("id")))
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/results/{id}/summary", summary: "One result as `mlbench results show` prints it.",
                             role: .user, tag: "results", success: (200, .media("text/plain")), errors: [404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            return ServiceCoding.text(ResultPresenter.summary(result, store: call.service.configuration.store))
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/results/{id}/verify",
                             summary: "Check the result as `mlbench verify` does: its bundle's signature and every file it names, hashed again.",
                             role: .user, tag: "results", success: (200, .json("Verification")), errors: [404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            let home = call.service.lab.home
            let problems = try await call.store { try $0.verify(id: result.id, blobs: home.blobs, trustedKeys: try BundleSigner.trustedKeys(home)) }
            return try ServiceCoding.response(Verification(id: result.id, intact: problems.isEmpty, problems: problems))
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/results/compare",
                             summary: "Results side by side, each against the first: ratio of medians, Mann–Whitney U, Holm-adjusted.",
                             role: .user, tag: "results", body: .json("CompareRequest"), success: (200, .json("Comparison")), errors: [404])) { call in
            let request = try await call.json(CompareRequest.self)
            guard request.ids.count >= 2 else { throw APIError.badRequest("compare needs at least two result ids (got \(request.ids.count))", field: "ids") }
            var results = [ExperimentResult]()
            for id in request.ids { results.append(try await readable(call, id)) }
            return try ServiceCoding.response(comparison(results))
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/results/export",
                             summary: "Results as JSON (whole bundles) or CSV (headline figures), as `mlbench results export` writes them.",
                             role: .user, tag: "results",
                             query: [("ids", "Comma-separated result ids (default: every result the caller may read, newest 1000)."), ("format", "json or csv.")],
                             success: (200, .media("application/json or text/csv")), errors: [404])) { call in
            let format = call.query("format") ?? "json"
            guard format == "json" || format == "csv" else { throw APIError.badRequest("format '\(format)' is not json or csv", field: "format") }
            var ids = (call.query("ids") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if ids.isEmpty {
                let user = call.user
                ids = try await call.store { try $0.list(limit: 1000, visibleTo: user) }.map(\.id)
            }
            var results = [ExperimentResult]()
            for id in ids { results.append(try await readable(call, id)) }
            return format == "json" ? ServiceCoding.text(try ResultExport.json(results), type: "application/json")
                                    : ServiceCoding.text(ResultExport.csv(results), type: "text/csv; charset=utf-8")
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/results/{id}", summary: "Delete a result and the files no other result needs. Its owner or an admin.",
                             role: .user, tag: "results", success: (204, .media("none")), errors: [403, 404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            guard result.user == call.user.name || call.user.role >= .admin else {
                throw APIError.forbidden("result \(result.id) is \(result.user)'s; only its owner or an admin may delete it")
            }
            let blobs = call.service.lab.home.blobs
            _ = try await call.store { try $0.delete(id: result.id, blobs: blobs) }
            return Response(status: .noContent)
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/results/{id}/shares", summary: "Whom the result is shared with.",
                             role: .user, tag: "sharing", success: (200, .jsonArray("Share")), errors: [404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            return try ServiceCoding.response(try await call.store { try $0.shares(.result, result.id) })
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/results/{id}/shares", summary: "Share the result with a user. Its owner only.",
                             role: .user, tag: "sharing", body: .json("ShareRequest"), success: (201, .json("Share")), errors: [403, 404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            guard result.user == call.user.name else { throw APIError.forbidden("only the owner (\(result.user)) may share result \(result.id)") }
            let request = try await call.json(ShareRequest.self)
            let owner = call.user.name
            let share = try await call.store { store -> Share in
                guard try store.user(named: request.user) != nil else { throw APIError.notFound("user '\(request.user)'") }
                try store.share(.result, result.id, with: request.user, by: owner)
                return try store.shares(.result, result.id).first { $0.user == request.user }!
            }
            return try ServiceCoding.response(share, status: .created)
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/results/{id}/shares/{user}", summary: "Stop sharing the result with a user. Its owner only.",
                             role: .user, tag: "sharing", success: (204, .media("none")), errors: [403, 404])) { call in
            let result = try await readable(call, try call.parameter("id"))
            guard result.user == call.user.name else { throw APIError.forbidden("only the owner (\(result.user)) may share result \(result.id)") }
            let other = try call.parameter("user")
            try await call.store { store in
                guard try store.shares(.result, result.id).contains(where: { $0.user == other }) else { throw APIError.notFound("share with '\(other)'") }
                try store.unshare(.result, result.id, with: other)
            }
            return Response(status: .noContent)
        }
    }

    /// The result `id` (or unique prefix), if the caller may read it; else 404.
    static func readable(_ call: Call, _ id: String) async throws -> ExperimentResult {
        let user = call.user
        guard let result = try await call.store({ store -> ExperimentResult? in
            guard let result = try store.result(id: id), try store.canSee(result: result, as: user) else { return nil }
            return result
        }) else { throw APIError.notFound("result '\(id)'") }
        return result
    }

    static func comparison(_ results: [ExperimentResult], level: Double = 0.05) -> ComparisonView {
        var rows = [ComparisonView.Row]()
        var tests = [(row: Int, p: Double)]()
        let baseline = results.first?.measurement
        for (index, result) in results.enumerated() {
            let summary = result.measurement?.summary
            var row = ComparisonView.Row(id: result.id, name: result.name, board: result.board?.name,
                                         toolchain: result.toolchain.map { "\($0.name) \($0.version)" }, iterations: summary?.count,
                                         medianNs: summary?.median, medianCiLowNs: summary?.medianInterval.lower,
                                         medianCiHighNs: summary?.medianInterval.upper, meanNs: summary?.mean,
                                         preservationRatio: result.semanticPreservation?.ratio)
            if index > 0, let baseline, let measurement = result.measurement, !measurement.durationsNs.isEmpty, !baseline.durationsNs.isEmpty {
                let test = Comparison.mannWhitney(measurement.durationsNs.map(Double.init), baseline.durationsNs.map(Double.init))
                row.ratioToBaseline = measurement.summary.median / baseline.summary.median
                row.p = test.p
                tests.append((rows.count, test.p))
            }
            rows.append(row)
        }
        for (test, adjusted) in zip(tests, Comparison.holm(tests.map(\.p))) {
            rows[test.row].pHolm = adjusted
            rows[test.row].significant = adjusted < level
        }
        return ComparisonView(baseline: results.first?.id ?? "", level: level, results: rows,
                              text: ResultPresenter.comparison(results, level: level))
    }
}
