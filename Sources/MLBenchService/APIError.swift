import Foundation
import Hummingbird
import MLBench

/// An error answered as JSON: `{"error": {"status": 404, "message": "...", "field": "..."}}`.
/// Every 4xx names what is wrong; `field` names the request part at fault, when one is.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var field: String?

    public init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) {
        self.status = status
        self.message = message
        self.field = field
    }

    public var description: String { "\(status.code) \(message)" }

    public static func unauthorized(_ message: String = "a valid API token is required (Authorization: Bearer TOKEN)") -> APIError {
        APIError(.unauthorized, message)
    }
    public static func forbidden(_ message: String) -> APIError { APIError(.forbidden, message) }
    public static func notFound(_ what: String) -> APIError { APIError(.notFound, "\(what) not found") }
    public static func badRequest(_ message: String, field: String? = nil) -> APIError { APIError(.badRequest, message, field: field) }

    struct Body: Encodable {
        struct Inner: Encodable {
            var status: Int
            var message: String
            var field: String?
        }
        var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"mlbench\"" }
        let data = try JSONEncoder().encode(Body(error: .init(status: Int(status.code), message: message, field: field)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The lab's errors as answers: a usage error is the caller's (400), the rest the server's.
    static func from(_ error: any Error) -> any Error {
        switch error {
        case let error as APIError: return error
        case let error as HTTPError: return error
        case LabError.usage(let message): return APIError(.badRequest, message)
        // What the definition asks for that this lab lacks (a toolchain version not installed, say).
        case LabError.environment(let message), LabError.inventory(let message): return APIError(.unprocessableContent, message, field: "definition")
        case let error as ConfigurationError: return APIError(.unprocessableContent, "\(error)", field: "definition")
        default: return APIError(.internalServerError, "\(error)")
        }
    }
}
