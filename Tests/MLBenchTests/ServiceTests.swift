import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import MLBench
@testable import MLBenchService
import XCTest

/// The service in process: upload checks, definitions made from uploads, and the OpenAPI
/// document against the router (every documented operation is served, every route is documented).
final class ServiceTests: XCTestCase {
    // MARK: Upload checks

    static func npy(_ header: String, _ payload: Data, version: UInt8 = 1) -> Data {
        var text = Data(header.utf8)
        let prefix = version == 1 ? 10 : 12
        let padding = 64 - (prefix + text.count + 1) % 64
        text += Data(repeating: 0x20, count: padding) + Data([0x0a])
        var data = Data([0x93]) + Data("NUMPY".utf8) + Data([version, 0])
        if version == 1 {
            data += Data([UInt8(text.count & 0xff), UInt8(text.count >> 8)])
        } else {
            data += Data([UInt8(text.count & 0xff), UInt8((text.count >> 8) & 0xff), 0, 0])
        }
        return data + text + payload
    }

    func testNPYFilesAreCheckedByHeaderDtypeAndLength() throws {
        let good = Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Data(count: 24))
        XCTAssertEqual(try UploadValidation.check(good, kind: "input"), .init(format: "npy", dtype: "<f4", shape: [2, 3]))
        XCTAssertEqual(try UploadValidation.check(good, kind: nil).format, "npy", "told by its magic")
        XCTAssertEqual(try UploadValidation.npy(Self.npy("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", Data(count: 1), version: 2)).shape, [])
        let cases: [(Data, String)] = [
            (Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Data(count: 20)), "needs 24"),
            (Self.npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", Data(count: 8)), "object"),
            (Self.npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", Data(count: 4)), "descr"),
            (Self.npy("{'descr': '<f3', 'fortran_order': False, 'shape': (1,), }", Data(count: 3)), "not a plain number type"),
            (Self.npy("{'descr': '<f4', 'shape': (1,), }", Data(count: 4)), "fortran_order"),
            (Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", Data(count: 4)), "shape"),
            (Data("PK\u{3}\u{4}zip".utf8), "\\x93NUMPY"),
            (Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0, 0xff, 0xff]), "longer than the file"),
            (Data([0x93]) + Data("NUMPY".utf8) + Data([9, 0, 0, 0]), "version 9"),
        ]
        for (data, words) in cases {
            XCTAssertThrowsError(try UploadValidation.check(data, kind: "input")) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error) should say '\(words)'")
            }
        }
    }

    func testModelsMustParseAsONNX() throws {
        // ir_version 8 (field 1 varint), graph (field 7, 2 bytes), opset (field 8, 0 bytes).
        let minimal = Data([0x08, 0x08, 0x3a, 0x02, 0x0a, 0x00, 0x42, 0x00])
        XCTAssertEqual(try UploadValidation.check(minimal, kind: "model").format, "onnx")
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample/model.onnx")
        if let data = try? Data(contentsOf: sample) {
            XCTAssertEqual(try UploadValidation.check(data, kind: "model").format, "onnx", "the sample model")
            XCTAssertEqual(try UploadValidation.check(data, kind: nil).format, "onnx")
            XCTAssertThrowsError(try UploadValidation.check(data.prefix(data.count / 2), kind: "model"), "a truncated model")
        }
        let cases: [(Data, String)] = [
            (Data(), "empty"),
            (Data("hello, world".utf8), "not an ONNX model"),
            (Data([0x08, 0x08]), "no graph"),
            (Data([0x3a, 0x02, 0x0a, 0x00]), "no ir_version"),
            (Data([0x08, 0x08, 0x3a, 0x10, 0x0a]), "more than the file has left"),
            (Data([0x08, 0x08, 0x3b]), "wire type 3"),
            (Data([0x08, 0xff]), "varint"),
            (Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Data(count: 4)), "NumPy"),
        ]
        for (data, words) in cases {
            XCTAssertThrowsError(try UploadValidation.check(data, kind: "model")) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error) should say '\(words)'")
            }
        }
        XCTAssertThrowsError(try UploadValidation.check(minimal, kind: "weights")) { XCTAssertTrue("\($0)".contains("not model or input")) }
    }

    // MARK: Definitions

    func testADefinitionIsMadeFromUploadsUnderNamesTheServiceChooses() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-service-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LabStore(sqlitePath: folder.appendingPathComponent("lab.sqlite").path)
        let blobs = BlobStore(root: folder.appendingPathComponent("blobs"))
        _ = try store.addUser("alice", role: .user)
        _ = try store.addUser("bob", role: .user)
        let model = try blobs.put(data: Data([0x08, 0x08, 0x3a, 0x00]))
        let input = try blobs.put(data: Self.npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Data(count: 4)))
        try store.recordUpload(UploadRecord(sha256: model, user: "alice", kind: "model", size: 4, createdAt: Date()))
        try store.recordUpload(UploadRecord(sha256: input, user: "alice", kind: "input", size: 4, createdAt: Date()))
        let definition = """
            name: named
            model: ../../etc/passwd
            inputs: {image: /etc/shadow}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: host
            semantic_preservation: {metric: cosine, threshold: 1.0e-6}
            """
        let target = folder.appendingPathComponent("experiment")
        let file = try Definitions.prepare(definition: definition, files: ["../../etc/passwd": model, "/etc/shadow": input],
                                           user: "alice", store: store, blobs: blobs, into: target)
        XCTAssertEqual(file.experiment.model, "model.onnx")
        XCTAssertEqual(file.experiment.inputs, ["image": "input-1.npy"])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: target.appendingPathComponent("model.onnx").path),
                       blobs.path(of: model).path)
        XCTAssertEqual(file.directory.standardizedFileURL.path, target.standardizedFileURL.path)
        XCTAssertFalse(file.text.contains("passwd") || file.text.contains("shadow"), file.text)

        // Files not uploaded (or uploaded by someone else) are refused, and the folder goes.
        let refused = folder.appendingPathComponent("refused")
        for (files, user, words) in [([String: String](), "alice", "no uploaded file"), (["../../etc/passwd": model, "/etc/shadow": input], "bob", "uploaded by bob"),
                                     (["../../etc/passwd": input, "/etc/shadow": input], "alice", "must be an uploaded model"),
                                     (["../../etc/passwd": "nothex"], "alice", "not a SHA-256")] {
            XCTAssertThrowsError(try Definitions.prepare(definition: definition, files: files, user: user, store: store, blobs: blobs, into: refused)) { error in
                XCTAssertTrue("\(error)".contains(words), "\(error) should say '\(words)'")
                XCTAssertEqual((error as? APIError)?.status.code, 422)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: refused.path))
        }
        for path in ["/etc/passwd", "~/x", "../x", "a/../../x"] {
            let options = definition.replacingOccurrences(of: "target: cpu}", with: "target: cpu, options: {nested: {cache: '\(path)'}}}")
            XCTAssertThrowsError(try Definitions.prepare(definition: options, files: ["../../etc/passwd": model, "/etc/shadow": input], user: "alice",
                                                         store: store, blobs: blobs, into: refused)) { error in
                XCTAssertEqual((error as? APIError)?.field, "definition.toolchain.options.nested.cache", "\(error)")
            }
        }
        XCTAssertThrowsError(try Definitions.prepare(definition: "[1, 2]", files: [:], user: "alice", store: store, blobs: blobs, into: refused))
        XCTAssertThrowsError(try Definitions.prepare(definition: "name: x\nmodel: sha256:\(model)\n", files: [:], user: "alice",
                                                     store: store, blobs: blobs, into: refused)) { error in
            XCTAssertTrue("\(error)".contains("not a valid experiment"), "\(error)")
        }
    }

    // MARK: The document against the router

    func testEveryRouteIsDocumentedAndEveryDocumentedOperationIsServed() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-service-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let lab = Lab(home: LabHome(root: folder), inventory: .embeddedDefault)
        var configuration = ServiceConfiguration(store: folder.appendingPathComponent("results.sqlite").path)
        configuration.port = 0
        let service = try LabService(lab: lab, configuration: configuration, signer: nil)

        let routes = MLBenchServer.routes(service)
        let document = try XCTUnwrap(try JSONSerialization.jsonObject(with: try OpenAPI.json(routes.specs)) as? [String: Any])
        let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } })
        let registered = Set(routes.specs.map { "\($0.method.rawValue) \($0.path)" })
        XCTAssertEqual(documented, registered, "the document lists exactly the registered API routes")
        XCTAssertGreaterThan(registered.count, 30)
        for (method, path) in routes.pages {
            // Pages (a web panel's HTML and scripts) are outside the API and its document.
            XCTAssertFalse(path.hasPrefix("/api/") || path == "/metrics", "\(method) \(path): an API route must be added with routes.add, documented")
            XCTAssertNil(paths[path], "\(path) is a page, not an API operation")
        }
        for spec in routes.specs {
            let operation = try XCTUnwrap(paths[spec.path]?[spec.method.rawValue.lowercased()] as? [String: Any])
            let parameters = (operation["parameters"] as? [[String: Any]] ?? []).filter { $0["in"] as? String == "path" }.compactMap { $0["name"] as? String }
            XCTAssertEqual(parameters, spec.pathParameters, "\(spec.path): its path parameters are documented")
            let responses = try XCTUnwrap(operation["responses"] as? [String: Any])
            if spec.role != nil { XCTAssertNotNil(responses["401"], "\(spec.path) documents 401") }
        }

        // Every schema the document refers to is in it.
        let schemas = try XCTUnwrap((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let documentText = String(decoding: try OpenAPI.json(routes.specs), as: UTF8.self)
        let pattern = try NSRegularExpression(pattern: ##""#/components/schemas/([A-Za-z]+)""##)
        let matches = pattern.matches(in: documentText, range: NSRange(documentText.startIndex..., in: documentText))
        let references: [String] = matches.map { match in String(documentText[Range(match.range(at: 1), in: documentText)!]) }
        XCTAssertFalse(references.isEmpty)
        for name in Set(references) { XCTAssertNotNil(schemas[name], "schema \(name) is referred to but not defined") }

        // Served: every documented operation answers on a live server — 401 without a token
        // for those that need one (an unknown route would be 404), not 404 for the open ones.
        let port = PortBox()
        let server = Task { try await MLBenchServer.run(service) { port.set($0) } }
        defer { server.cancel() }
        var waited = 0
        while port.value == nil, waited < 200 { try await Task.sleep(nanoseconds: 50_000_000); waited += 1 }
        let base = "http://127.0.0.1:\(try XCTUnwrap(port.value, "the server did not start"))"
        for spec in routes.specs {
            let path = spec.path.replacingOccurrences(of: #"\{[^}]+\}"#, with: "x", options: .regularExpression)
            let (status, body) = try await Self.call(base + path, method: spec.method.rawValue)
            if spec.role == nil {
                XCTAssertEqual(status, 200, "\(spec.method) \(path): \(body)")
            } else {
                XCTAssertEqual(status, 401, "\(spec.method) \(path): \(body)")
                XCTAssertTrue(body.contains("\"status\":401") && body.contains("token"), body)
            }
        }
        let (unknown, _) = try await Self.call(base + "/api/v1/nothing-here", method: "GET")
        XCTAssertEqual(unknown, 404, "an unregistered route is 404, so 401 above means served")
        let (served, text) = try await Self.call(base + "/api/v1/openapi.json", method: "GET")
        XCTAssertEqual(served, 200)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary, document as NSDictionary,
                       "the server serves this document")

        // A token of a user gets through; an operator route then answers 403 to a plain user.
        let token = try await service.withStore { store in
            _ = try store.addUser("alice", role: .user)
            return try store.issueToken(user: "alice", label: nil)
        }
        let (me, who) = try await Self.call(base + "/api/v1/me", method: "GET", token: token)
        XCTAssertEqual(me, 200)
        XCTAssertTrue(who.contains("\"name\":\"alice\""), who)
        let (forbidden, why) = try await Self.call(base + "/api/v1/boards/host/disable", method: "POST", token: token)
        XCTAssertEqual(forbidden, 403, why)
        XCTAssertTrue(why.contains("operator"), why)
        let (revoked, _) = try await Self.call(base + "/api/v1/me", method: "GET", token: token + "x")
        XCTAssertEqual(revoked, 401)
    }

    final class PortBox: @unchecked Sendable {
        private let lock = NSLock()
        private var port: Int?
        var value: Int? { lock.lock(); defer { lock.unlock() }; return port }
        func set(_ value: Int) { lock.lock(); port = value; lock.unlock() }
    }

    static func call(_ url: String, method: String, token: String? = nil) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if method == "POST" || method == "PUT" { request.httpBody = Data("{}".utf8) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
