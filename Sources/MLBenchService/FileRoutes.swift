import Foundation
import Hummingbird
import MLBench

/// Uploads: models (ONNX) and inputs (NumPy .npy), checked, then kept in the blob store
/// under their SHA-256. The client's file name is never used: experiments name uploads by
/// hash (`files` of a submission). A refused upload stores nothing.
public enum FileRoutes {
    struct Uploaded: Encodable {
        var sha256: String
        var kind: String
        var format: String
        var size: Int64
        var dtype: String?
        var shape: [Int]?
    }

    public static func register(_ routes: APIRoutes) {
        routes.add(RouteSpec(method: .post, path: "/api/v1/files",
                             summary: "Upload a model (ONNX) or an input (NumPy .npy) as the raw request body; answers its SHA-256, by which experiments name it.",
                             role: .user, tag: "files", query: [("kind", "model or input (default: told by the file's first bytes).")],
                             body: .media("application/octet-stream"), success: (201, .json("Upload")), errors: [413, 422])) { call in
            let configuration = call.service.configuration
            let kind = call.query("kind")
            if let kind, kind != "model", kind != "input" { throw APIError.badRequest("kind '\(kind)' is not model or input", field: "kind") }
            let limit = kind == "model" ? configuration.maxModelBytes : kind == "input" ? configuration.maxInputBytes
                : max(configuration.maxModelBytes, configuration.maxInputBytes)
            let data = try await call.bytes(limit: limit, what: "the \(kind ?? "uploaded") file")
            let accepted: UploadValidation.Accepted
            do {
                accepted = try UploadValidation.check(data, kind: kind)
            } catch let failure as UploadValidation.Failure {
                throw APIError(.unprocessableContent, failure.message, field: "body")
            }
            let fileKind = accepted.format == "onnx" ? "model" : "input"
            let own = fileKind == "model" ? configuration.maxModelBytes : configuration.maxInputBytes
            guard data.count <= own else { throw APIError(.contentTooLarge, "the \(fileKind) file is larger than the limit of \(own) bytes") }
            let blobs = call.service.lab.home.blobs
            let user = call.user.name
            let sha256 = try blobs.put(data: data)
            try await call.store { store in
                try store.recordUpload(UploadRecord(sha256: sha256, user: user, kind: fileKind, size: Int64(data.count), createdAt: Date()))
            }
            return try ServiceCoding.response(Uploaded(sha256: sha256, kind: fileKind, format: accepted.format, size: Int64(data.count),
                                                       dtype: accepted.dtype, shape: accepted.shape), status: .created)
        }
        routes.add(RouteSpec(method: .get, path: "/api/v1/files/{sha256}", summary: "What the caller uploaded under this SHA-256.",
                             role: .user, tag: "files", success: (200, .json("UploadRecord")), errors: [404])) { call in
            let sha256 = try call.parameter("sha256").lowercased()
            let user = call.user.name
            guard let record = try await call.store({ try $0.upload(sha256: sha256, user: user) }) else {
                throw APIError.notFound("upload \(sha256)")
            }
            return try ServiceCoding.response(record)
        }
    }
}
