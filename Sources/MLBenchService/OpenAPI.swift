import Foundation
import Hummingbird
import MLBench

/// The OpenAPI 3 document of the API, made from the routes as they are registered (so it
/// lists exactly what the router serves; `ServiceTests` checks both ways against a live router).
public enum OpenAPI {
    public static let version = "3.0.3"

    /// Request and response bodies with their fields; other named schemas are plain objects.
    static var schemas: [String: Any] { [
        "Error": object(["error": object(["status": ["type": "integer"], "message": ["type": "string"],
                                          "field": ["type": "string", "description": "The request part at fault, when one is."]],
                                         required: ["status", "message"])], required: ["error"]),
        "Health": object(["status": ["type": "string"], "service": ["type": "string"], "api_version": ["type": "string"]]),
        "User": object(["name": ["type": "string"], "role": role, "created_at": time], required: ["name", "role"]),
        "NewUser": object(["name": ["type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"], "role": role], required: ["name"]),
        "RoleChange": object(["role": role], required: ["role"]),
        "TokenRequest": object(["label": ["type": "string"]]),
        "IssuedToken": object(["user": ["type": "string"], "token": ["type": "string", "description": "Shown once."],
                               "label": ["type": "string"], "note": ["type": "string"]]),
        "Token": object(["id": ["type": "string", "description": "The first 12 hex digits of the token's SHA-256."],
                         "user": ["type": "string"], "label": ["type": "string"], "created_at": time]),
        "Message": object(["id": ["type": "integer"], "author": ["type": "string"], "recipient": ["type": "string", "nullable": true],
                           "text": ["type": "string"], "created_at": time]),
        "NewMessage": object(["text": ["type": "string"], "to": ["type": "string", "description": "One user; everyone when absent."]],
                             required: ["text"]),
        "Board": object(["name": ["type": "string"], "host": ["type": "string"],
                         "health": ["type": "string", "enum": BoardHealth.allCases.map(\.rawValue)], "enabled": ["type": "boolean"],
                         "note": ["type": "string"]]),
        "BoardSwitch": object(["note": ["type": "string", "description": "Why (kept with the board)."]]),
        "BoardHealthChange": object(["health": ["type": "string", "enum": BoardHealth.allCases.map(\.rawValue)], "note": ["type": "string"]],
                                    required: ["health"]),
        "Upload": object(["sha256": ["type": "string"], "kind": ["type": "string", "enum": ["model", "input"]],
                          "format": ["type": "string", "enum": ["onnx", "npy"]], "size": ["type": "integer"],
                          "dtype": ["type": "string"], "shape": ["type": "array", "items": ["type": "integer"]]]),
        "UploadRecord": object(["sha256": ["type": "string"], "user": ["type": "string"], "kind": ["type": "string"],
                                "size": ["type": "integer"], "created_at": time]),
        "NewExperiment": object([
            "definition": ["type": "string", "description": "The experiment (YAML or JSON text) as `mlbench run` takes it; its files named `sha256:HEX` or by a key of `files`."],
            "files": ["type": "object", "additionalProperties": ["type": "string"], "description": "Names used in the definition → SHA-256 of the caller's uploads."],
            "series": ["type": "string"], "board": ["type": "string", "description": "Another board of the same kind than the definition's."],
            "any_board": ["type": "boolean", "description": "Let the lab choose: a compatible board, enabled, in good health, least busy."],
            "notify_email": ["type": "string"], "notify_webhook": ["type": "string"]], required: ["definition"]),
        "NewSweep": object([
            "definition": ["type": "string"], "files": ["type": "object", "additionalProperties": ["type": "string"]],
            "parameters": ["type": "array", "items": ["type": "string"], "description": "PATH=V1,V2,..."],
            "boards": ["type": "array", "items": ["type": "string"]], "series": ["type": "string"],
            "notify_email": ["type": "string"], "notify_webhook": ["type": "string"]], required: ["definition"]),
        "Experiment": object([
            "id": ["type": "string"], "name": ["type": "string"], "user": ["type": "string"], "board": ["type": "string"],
            "series": ["type": "string"], "state": ["type": "string", "enum": QueueState.allCases.map(\.rawValue)],
            "submitted_at": time, "started_at": time, "finished_at": time, "attempts": ["type": "integer"],
            "worker": ["type": "string"], "result_id": ["type": "string"], "note": ["type": "string"],
            "definition": ["type": "string", "description": "In answers about one experiment."]]),
        "Sweep": object(["series": ["type": "string"], "boards": ["type": "array", "items": ["type": "string"]],
                         "experiments": ["type": "array", "items": ["$ref": "#/components/schemas/Experiment"]]]),
        "Changed": object(["changed": ["type": "integer", "description": "How many experiments changed state."]]),
        "LogLine": object(["sequence": ["type": "integer"], "at": time, "line": ["type": "string"]]),
        "Share": object(["kind": ["type": "string", "enum": ShareKind.allCases.map(\.rawValue)], "object_id": ["type": "string"],
                         "user": ["type": "string"], "granted_by": ["type": "string"], "created_at": time]),
        "ShareRequest": object(["user": ["type": "string"]], required: ["user"]),
        "ResultHeadline": object(["id": ["type": "string"], "name": ["type": "string"], "status": ["type": "string"],
                                  "board": ["type": "string"], "toolchain": ["type": "string"], "toolchain_version": ["type": "string"],
                                  "median_ns": ["type": "number"], "preservation_ratio": ["type": "number"], "finished_at": time,
                                  "failure_reason": ["type": "string"], "user": ["type": "string"]]),
        "Result": ["type": "object", "description": "A stored result bundle (as `mlbench results show --json`): measurement.durations_ns and starts_ns, warm_up.durations_ns, probes[].samples, energy, semantic_preservation, log."],
        "Verification": object(["id": ["type": "string"], "intact": ["type": "boolean"],
                                "problems": ["type": "array", "items": ["type": "string"]]]),
        "Usage": object(["half_life_hours": ["type": "number"],
                         "users": ["type": "array", "items": object(["user": ["type": "string"], "experiments": ["type": "integer"],
                                                                     "board_seconds": ["type": "number"], "fair_share_seconds": ["type": "number"]])],
                         "experiments": ["type": "array", "items": object(["experiment_id": ["type": "string"], "user": ["type": "string"],
                                                                           "board": ["type": "string"], "seconds": ["type": "number"],
                                                                           "finished_at": time])]]),
        "Reservation": object(["id": ["type": "string"], "board": ["type": "string"], "user": ["type": "string"], "start": time, "end": time]),
        "NewReservation": object(["from": time, "to": time], required: ["from", "to"]),
        "CompareRequest": object(["ids": ["type": "array", "items": ["type": "string"], "minItems": 2]], required: ["ids"]),
        "Comparison": object(["baseline": ["type": "string"], "level": ["type": "number"], "text": ["type": "string"],
                              "results": ["type": "array", "items": object([
                                "id": ["type": "string"], "name": ["type": "string"], "median_ns": ["type": "number"],
                                "ratio_to_baseline": ["type": "number"], "p": ["type": "number"], "p_holm": ["type": "number"],
                                "significant": ["type": "boolean"]])]]),
    ] }

    static var time: [String: Any] { ["type": "string", "format": "date-time"] }
    static var role: [String: Any] { ["type": "string", "enum": ServiceRole.allCases.map(\.rawValue)] }

    static func object(_ properties: [String: Any], required: [String] = []) -> [String: Any] {
        var schema: [String: Any] = ["type": "object", "properties": properties]
        if !required.isEmpty { schema["required"] = required }
        return schema
    }

    static func content(_ body: RouteSpec.Body) -> [String: Any]? {
        switch body {
        case .json(let name):
            let schema: [String: Any] = name == "object" ? ["type": "object"] : ["$ref": "#/components/schemas/\(name)"]
            return ["application/json": ["schema": schema]]
        case .jsonArray(let name):
            return ["application/json": ["schema": ["type": "array", "items": ["$ref": "#/components/schemas/\(name)"]]]]
        case .media("none"):
            return nil
        case .media(let type):
            return [type: ["schema": ["type": "string", "format": type.contains("octet") ? "binary" : "text"]]]
        }
    }

    /// The document, as a JSON-ready dictionary.
    public static func document(_ specs: [RouteSpec]) -> [String: Any] {
        var paths = [String: [String: Any]]()
        for spec in specs {
            var operation: [String: Any] = [
                "operationId": operationID(spec), "summary": spec.summary, "tags": [spec.tag],
            ]
            var parameters = spec.pathParameters.map { name -> [String: Any] in
                ["name": name, "in": "path", "required": true, "schema": ["type": "string"]]
            }
            parameters += spec.query.map { name, description in
                ["name": name, "in": "query", "required": false, "description": description, "schema": ["type": "string"]]
            }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let body = spec.body, let content = content(body) {
                operation["requestBody"] = ["required": true, "content": content]
            }
            var responses = [String: Any]()
            var success: [String: Any] = ["description": "Success."]
            if let content = content(spec.success.1) { success["content"] = content }
            responses["\(spec.success.0)"] = success
            let error: [String: Any] = ["description": "", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
            var statuses = Set(spec.errors)
            if spec.body != nil || !spec.query.isEmpty || !spec.pathParameters.isEmpty { statuses.insert(400) }
            if let role = spec.role {
                statuses.insert(401)
                if role > .user { statuses.insert(403) }
            } else {
                operation["security"] = [[String: Any]]()
            }
            for status in statuses.sorted() {
                var answer = error
                answer["description"] = description(status)
                responses["\(status)"] = answer
            }
            operation["responses"] = responses
            if let role = spec.role { operation["x-mlbench-role"] = role.rawValue }
            paths[spec.path, default: [:]][spec.method.rawValue.lowercased()] = operation
        }
        return [
            "openapi": version,
            "info": ["title": "mlbench", "version": "1",
                     "description": "The mlbench lab as a service: submit and follow experiments, control the queue and boards, read and compare results. Every route but /api/v1/health, /api/v1/openapi.json and /metrics needs `Authorization: Bearer TOKEN` (`mlbench users token NAME`)."],
            "servers": [["url": "/"]],
            "paths": paths,
            "components": ["schemas": schemas,
                           "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "An API token (mlb_...)."]]],
            "security": [["bearer": [String]()]],
        ]
    }

    static func description(_ status: Int) -> String {
        switch status {
        case 400: return "The request is malformed (the error names the field)."
        case 401: return "No valid API token."
        case 403: return "The caller's role or ownership does not allow it."
        case 404: return "Not found, or not visible to the caller."
        case 409: return "Conflicts with what is stored."
        case 413: return "The body is larger than the configured limit."
        case 422: return "The content is refused (the error says why); nothing was stored."
        default: return "Error."
        }
    }

    static func operationID(_ spec: RouteSpec) -> String {
        let words = spec.path.split(separator: "/").filter { $0 != "api" && $0 != "v1" }
            .map { $0.hasPrefix("{") ? "by_" + $0.dropFirst().dropLast() : String($0) }
        return spec.method.rawValue.lowercased() + "_" + words.joined(separator: "_").replacingOccurrences(of: ".", with: "_")
    }

    public static func json(_ specs: [RouteSpec]) throws -> Data {
        try JSONSerialization.data(withJSONObject: document(specs), options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }
}

/// Serves the document.
public enum OpenAPIRoutes {
    public static let spec = RouteSpec(method: .get, path: "/api/v1/openapi.json", summary: "This document (no token needed).",
                                       role: nil, tag: "service", success: (200, .json("object")))

    static func register(_ routes: APIRoutes) {
        let box = DocumentBox()
        routes.add(spec) { _ in
            ServiceCoding.text(String(decoding: box.data, as: UTF8.self), type: "application/json")
        }
        box.data = (try? OpenAPI.json(routes.specs)) ?? Data("{}".utf8)
    }

    final class DocumentBox: @unchecked Sendable {
        var data = Data()
    }
}
