import Foundation
import Hummingbird
import MLBench

/// The service itself: health, the caller.
public enum MetaRoutes {
    struct Health: Encodable {
        var status = "ok"
        var service = "mlbench"
        var apiVersion = "1"
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/health", summary: "Whether the service is up (no token needed).",
                             role: nil, tag: "service", success: (200, .json("Health")))) { _ in
            try ServiceCoding.response(Health())
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/me", summary: "The caller: name and role.",
                             role: .user, tag: "service", success: (200, .json("User")))) { call in
            try ServiceCoding.response(call.user)
        }
    }
}

/// Users and their API tokens (admins), and the messages operators post to users.
public enum UserRoutes {
    struct NewUser: Decodable {
        var name: String
        var role: ServiceRole?
    }
    struct RoleChange: Decodable { var role: ServiceRole }
    struct TokenRequest: Decodable { var label: String? }
    struct IssuedToken: Encodable {
        var user: String
        var token: String
        var label: String?
        var note = "keep this token: the service stores only its SHA-256 and cannot show it again"
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/users", summary: "Every registered user.", role: .admin, tag: "users",
                             success: (200, .jsonArray("User")))) { call in
            try ServiceCoding.response(try await call.store { try $0.users() })
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/users", summary: "Register a user (role user unless given).", role: .admin,
                             tag: "users", body: .json("NewUser"), success: (201, .json("User")), errors: [409])) { call in
            let new = try await call.json(NewUser.self)
            let user = try await call.store { store -> ServiceUser in
                if try store.user(named: new.name) != nil { throw APIError(.conflict, "user '\(new.name)' already exists", field: "name") }
                return try store.addUser(new.name, role: new.role ?? .user)
            }
            return try ServiceCoding.response(user, status: .created)
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/users/{name}", summary: "Remove a user, their tokens and what was shared with them.",
                             role: .admin, tag: "users", success: (204, .media("none")), errors: [404])) { call in
            let name = try call.parameter("name")
            try await call.store { store in
                guard try store.user(named: name) != nil else { throw APIError.notFound("user '\(name)'") }
                try store.removeUser(name)
            }
            return Response(status: .noContent)
        }
        routes.add(RouteSpec(method: .put, path: "/api/v1/users/{name}/role", summary: "Change a user's role.", role: .admin, tag: "users",
                             body: .json("RoleChange"), success: (200, .json("User")), errors: [404])) { call in
            let name = try call.parameter("name")
            let change = try await call.json(RoleChange.self)
            let user = try await call.store { store -> ServiceUser in
                guard try store.user(named: name) != nil else { throw APIError.notFound("user '\(name)'") }
                try store.setRole(change.role, user: name)
                return try store.user(named: name)!
            }
            return try ServiceCoding.response(user)
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/users/{name}/tokens",
                             summary: "Issue an API token for a user (shown once; only its SHA-256 is stored).", role: .admin, tag: "users",
                             body: .json("TokenRequest"), success: (201, .json("IssuedToken")), errors: [404])) { call in
            let name = try call.parameter("name")
            let request = (try? await call.json(TokenRequest.self)) ?? TokenRequest(label: nil)
            let token = try await call.store { store -> String in
                guard try store.user(named: name) != nil else { throw APIError.notFound("user '\(name)'") }
                return try store.issueToken(user: name, label: request.label)
            }
            return try ServiceCoding.response(IssuedToken(user: name, token: token, label: request.label), status: .created)
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/tokens", summary: "API tokens (ids and labels, never the tokens): the caller's, or everyone's for an admin.",
                             role: .user, tag: "users", success: (200, .jsonArray("Token")))) { call in
            let user = call.user
            return try ServiceCoding.response(try await call.store { try $0.tokens(user: user.role >= .admin ? nil : user.name) })
        }
        routes.add(RouteSpec(method: .delete, path: "/api/v1/tokens/{id}", summary: "Revoke a token by its id (the caller's own, or any for an admin).",
                             role: .user, tag: "users", success: (204, .media("none")), errors: [404])) { call in
            let id = try call.parameter("id").lowercased()
            let user = call.user
            try await call.store { store in
                guard let token = try store.tokens(user: nil).first(where: { $0.id.hasPrefix(id) || id.hasPrefix($0.id) }),
                      token.user == user.name || user.role >= .admin else { throw APIError.notFound("token '\(id)'") }
                try store.revokeToken(id: token.id)
            }
            return Response(status: .noContent)
        }
    }
}

public enum MessageRoutes {
    struct NewMessage: Decodable {
        var text: String
        /// One user; everyone when absent.
        var to: String?
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/messages", summary: "Messages for the caller (to them or to everyone), newest first.",
                             role: .user, tag: "messages", query: [("limit", "How many (default 100).")],
                             success: (200, .jsonArray("Message")))) { call in
            let name = call.user.name
            let limit = call.query("limit").flatMap(Int.init) ?? 100
            return try ServiceCoding.response(try await call.store { try $0.messages(for: name, limit: max(1, min(limit, 1000))) })
        }
        routes.add(RouteSpec(method: .post, path: "/api/v1/messages", summary: "Post a message to one user or to everyone (maintenance notices).",
                             role: .operator, tag: "messages", body: .json("NewMessage"), success: (201, .json("Message")), errors: [404])) { call in
            let new = try await call.json(NewMessage.self)
            let author = call.user.name
            let message = try await call.store { store -> ServiceMessage in
                if let to = new.to, try store.user(named: to) == nil { throw APIError.notFound("user '\(to)'") }
                return try store.postMessage(author: author, recipient: new.to, text: new.text)
            }
            return try ServiceCoding.response(message, status: .created)
        }
    }
}

/// Boards: everyone sees them; operators switch them on and off and set their health.
public enum BoardRoutes {
    struct Switch: Decodable { var note: String? }
    struct HealthChange: Decodable {
        var health: BoardHealth
        var note: String?
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .get, path: "/api/v1/boards", summary: "Registered boards: host, health, enabled.", role: .user,
                             tag: "boards", success: (200, .jsonArray("Board")))) { call in
            try ServiceCoding.response(try await call.store { try $0.boards() })
        }
        for (verb, enabled) in [("enable", true), ("disable", false)] {
            routes.add(RouteSpec(method: .post, path: "/api/v1/boards/{name}/\(verb)",
                                 summary: enabled ? "Let a board start work again." : "Stop a board from starting work (its queue is kept).",
                                 role: .operator, tag: "boards", body: .json("BoardSwitch"), success: (200, .json("Board")), errors: [404])) { call in
                let name = try call.parameter("name")
                let note = (try? await call.json(Switch.self))?.note ?? "\(verb)d by \(call.user.name)"
                return try ServiceCoding.response(try await call.store { store -> LabBoard in
                    guard try store.boards().contains(where: { $0.name == name }) else { throw APIError.notFound("board '\(name)'") }
                    try store.setEnabled(enabled, board: name, note: note)
                    return try store.boards().first { $0.name == name }!
                })
            }
        }
        routes.add(RouteSpec(method: .put, path: "/api/v1/boards/{name}/health", summary: "Set a board's health (good, unknown, bad, maintenance, retired).",
                             role: .operator, tag: "boards", body: .json("BoardHealthChange"), success: (200, .json("Board")), errors: [404])) { call in
            let name = try call.parameter("name")
            let change = try await call.json(HealthChange.self)
            return try ServiceCoding.response(try await call.store { store -> LabBoard in
                guard try store.boards().contains(where: { $0.name == name }) else { throw APIError.notFound("board '\(name)'") }
                try store.setHealth(change.health, board: name, note: change.note)
                return try store.boards().first { $0.name == name }!
            })
        }
    }
}
