import Foundation
import Hummingbird
import MLBench
import MLBenchCore

/// One documented operation of the API: what the OpenAPI document says of it.
public struct RouteSpec: Sendable, Equatable {
    public var method: HTTPRequest.Method
    /// OpenAPI form: `/api/v1/experiments/{id}`.
    public var path: String
    public var summary: String
    /// Nil: no token needed. Else the least role that may call it.
    public var role: ServiceRole?
    /// The OpenAPI tag (the area: experiments, results, boards, ...).
    public var tag: String
    /// Query parameters: name and description.
    public var query: [(String, String)] = []
    /// What the request body is, when it has one: a schema name in the document, or a media type.
    public var body: Body?
    /// The success status and what it returns: a schema name or a media type.
    public var success: (Int, Body) = (200, .json("object"))
    /// Statuses this operation may answer besides success and the usual ones.
    public var errors: [Int] = []

    public enum Body: Sendable, Equatable {
        /// A JSON body of this schema (`components/schemas`), or `object`.
        case json(String)
        /// A JSON array of this schema.
        case jsonArray(String)
        /// Raw bytes or text of this media type.
        case media(String)
    }

    public static func == (a: RouteSpec, b: RouteSpec) -> Bool { a.method == b.method && a.path == b.path }

    /// The path parameters (`{id}` → `id`).
    public var pathParameters: [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map { String($0.dropFirst().dropLast()) }
    }

    /// Hummingbird's form of the path: `{id}` → `:id`.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : part
        }.joined(separator: "/")
    }
}

/// What a handler gets: the request, its context, the caller and the service.
public struct Call: Sendable {
    public var request: Request
    public var context: BasicRequestContext
    /// The authenticated caller; nil only on routes that need no token.
    public let caller: ServiceUser?
    public let service: LabService

    /// The caller of a route that needs a token.
    public var user: ServiceUser { caller! }

    public func parameter(_ name: String) throws -> String {
        guard let value = context.parameters.get(name) else { throw APIError.badRequest("the path lacks '\(name)'") }
        return value
    }

    public func query(_ name: String) -> String? {
        request.uri.queryParameters.get(name)
    }

    public func queryAll(_ name: String) -> [String] {
        request.uri.queryParameters.getAll(name).map { String($0) }
    }

    /// The request body, refused with 413 beyond `limit` bytes.
    public func bytes(limit: Int, what: String = "the request body") async throws -> Data {
        var data = Data()
        for try await buffer in request.body {
            data.append(contentsOf: buffer.readableBytesView)
            if data.count > limit {
                throw APIError(.contentTooLarge, "\(what) is larger than the limit of \(limit) bytes")
            }
        }
        return data
    }

    /// The JSON body as `T` (snake_case keys).
    public func json<T: Decodable>(_ type: T.Type) async throws -> T {
        let data = try await bytes(limit: service.configuration.maxJSONBytes)
        guard !data.isEmpty else { throw APIError.badRequest("the request needs a JSON body") }
        do {
            return try ServiceCoding.decoder.decode(T.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw APIError.badRequest("the JSON body lacks '\(key.stringValue.snakeCased)'", field: key.stringValue.snakeCased)
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.map(\.stringValue.snakeCased).joined(separator: ".")
            throw APIError.badRequest("'\(field)' has the wrong type: \(context.debugDescription)", field: field)
        } catch {
            throw APIError.badRequest("the body is not the JSON expected: \(error)")
        }
    }

    /// Runs `body` with the store; lab errors become answers (usage errors 400).
    public func store<T: Sendable>(_ body: @escaping @Sendable (LabStore) throws -> T) async throws -> T {
        do { return try await service.withStore(body) } catch { throw APIError.from(error) }
    }

    /// Refused with 403 unless the caller has at least `role`.
    public func require(_ role: ServiceRole, _ what: String) throws {
        guard user.role >= role else { throw APIError.forbidden("\(what) needs the \(role.rawValue) role; \(user.name) is a \(user.role.rawValue)") }
    }
}

/// JSON as the API writes and reads it: snake_case keys, ISO 8601 times with fractions.
public enum ServiceCoding {
    public static var encoder: JSONEncoder { ResultCoding.encoder }
    /// Times as ISO 8601, with or without fractions of a second.
    public static var decoder: JSONDecoder {
        let decoder = ResultCoding.decoder
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = ResultCoding.date(text) ?? ISO8601DateFormatter().date(from: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an ISO 8601 time"))
            }
            return date
        }
        return decoder
    }

    public static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    public static func text(_ text: String, type: String = "text/plain; charset=utf-8", status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

extension String {
    var snakeCased: String {
        var out = ""
        for character in self {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }
}

/// Where routes are added: each area of the API has a registration function taking this
/// (`ExperimentRoutes.register(_:)` and so on). Every route added here is documented in the
/// OpenAPI document (`specs`) and authenticated as its spec says; `page` adds routes that are
/// not part of the API (the web panel's HTML, scripts and styles), which the document leaves out.
public final class APIRoutes: @unchecked Sendable {
    public let router: Router<BasicRequestContext>
    public let service: LabService
    public private(set) var specs: [RouteSpec] = []
    /// Routes outside the API (method and router path), for the coverage test.
    public private(set) var pages: [(HTTPRequest.Method, String)] = []

    init(router: Router<BasicRequestContext>, service: LabService) {
        self.router = router
        self.service = service
    }

    /// Adds an API route: `handler` runs once the caller is authenticated (when `spec.role`
    /// is set) and has at least that role (else 401 or 403).
    public func add(_ spec: RouteSpec, _ handler: @escaping @Sendable (Call) async throws -> Response) {
        precondition(!specs.contains(spec), "route \(spec.method) \(spec.path) added twice")
        specs.append(spec)
        let service = self.service
        router.on(RouterPath(spec.routerPath), method: spec.method) { request, context -> Response in
            do {
                var caller: ServiceUser?
                if let role = spec.role {
                    let user = try await Authentication.caller(of: request, service: service)
                    guard user.role >= role else {
                        throw APIError.forbidden("\(spec.method) \(spec.path) needs the \(role.rawValue) role; \(user.name) is a \(user.role.rawValue)")
                    }
                    caller = user
                }
                return try await handler(Call(request: request, context: context, caller: caller, service: service))
            } catch {
                throw APIError.from(error)
            }
        }
    }

    /// Adds a route outside the API (not in the OpenAPI document, no token checked here).
    public func page(_ path: String, method: HTTPRequest.Method = .get,
                     _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response) {
        pages.append((method, path))
        router.on(RouterPath(path), method: method) { request, context in try await handler(request, context) }
    }
}

/// API tokens: `Authorization: Bearer mlb_...` (or, for EventSource clients that cannot set
/// headers, `?access_token=` on event streams). Unknown, revoked or missing tokens get 401.
public enum Authentication {
    public static func token(of request: Request) -> String? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
            return nil
        }
        if request.uri.path.hasSuffix("/events"), let token = request.uri.queryParameters.get("access_token") { return token }
        return nil
    }

    /// The user whose token the request carries; 401 without a valid one. Pages outside the
    /// API (`APIRoutes.page`) call this to authenticate what they serve.
    public static func caller(of request: Request, service: LabService) async throws -> ServiceUser {
        guard let token = token(of: request) else { throw APIError.unauthorized() }
        guard let user = try await service.withStore({ try $0.authenticate(token: token) }) else {
            throw APIError.unauthorized("the API token is not valid (unknown or revoked)")
        }
        return user
    }
}
