import Foundation
import Hummingbird
import MLBench

/// What the queue shares out: board time used per user (`mlbench queue usage`) and board
/// reservations (`mlbench boards reserve`).
public enum QueueRoutes {
    struct UsageView: Encodable {
        struct PerUser: Encodable {
            var user: String
            var experiments: Int
            var boardSeconds: Double
            /// The fair share's decayed usage now (half-life `half_life_hours`).
            var fairShareSeconds: Double
        }
        var halfLifeHours: Double
        var users: [PerUser]
        var experiments: [UsageRecord]
    }
    struct NewReservation: Decodable {
        var from: Date
        var to: Date
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/usage",
                             summary: "Board time used: the caller's, or every user's for an operator; with the fair share's decayed usage.",
                             role: .user, tag: "queue", query: [("half_life_hours", "The fair-share half-life, as given to mlbench worker (default 6).")],
                             success: (200, .json("Usage")))) { call in
            let halfLife = call.query("half_life_hours").flatMap(Double.init) ?? 6
            guard halfLife > 0 else { throw APIError.badRequest("half_life_hours must be positive", field: "half_life_hours") }
            let user = call.user
            let only = user.role >= .operator ? nil : user.name
            let view = try await call.store { store -> UsageView in
                let records = try store.usage(user: only)
                let decayed = try store.decayedUsage(policy: SchedulingPolicy(usageHalfLife: halfLife * 3600), at: Date())
                let users = Dictionary(grouping: records, by: \.user).sorted { $0.key < $1.key }.map { name, mine in
                    UsageView.PerUser(user: name, experiments: mine.count, boardSeconds: mine.reduce(0) { $0 + $1.seconds },
                                      fairShareSeconds: decayed[name] ?? 0)
                }
                return UsageView(halfLifeHours: halfLife, users: users, experiments: records)
            }
            return try ServiceCoding.response(view)
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/reservations", summary: "Board reservations (every user's: they decide what may start where).",
                             role: .user, tag: "queue", success: (200, .jsonArray("Reservation")))) { call in
            try ServiceCoding.response(try await call.store { try $0.reservations() })
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/boards/{name}/reservations",
                             summary: "Reserve a board for the caller during a window (ISO 8601 times); refused when it overlaps another.",
                             role: .user, tag: "queue", body: .json("NewReservation"), success: (201, .json("Reservation")), errors: [404])) { call in
            let name = try call.parameter("name")
            let request = try await call.json(NewReservation.self)
            let user = call.user.name
            let reservation = try await call.store { store -> Reservation in
                guard try store.boards().contains(where: { $0.name == name }) else { throw APIError.notFound("board '\(name)'") }
                return try store.reserve(board: name, user: user, from: request.from, to: request.to)
            }
            return try ServiceCoding.response(reservation, status: .created)
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/reservations/{id}", summary: "Cancel a reservation: its holder's, or any for an operator.",
                             role: .user, tag: "queue", success: (204, .media("none")), errors: [403, 404])) { call in
            let id = try call.parameter("id")
            let user = call.user
            try await call.store { store in
                guard let reservation = try store.reservations().first(where: { $0.id == id }) else { throw APIError.notFound("reservation '\(id)'") }
                guard reservation.user == user.name || user.role >= .operator else {
                    throw APIError.forbidden("reservation \(id) is \(reservation.user)'s; only its holder or an operator may cancel it")
                }
                try store.cancelReservation(id: id)
            }
            return Response(status: .noContent)
        }
    }
}
