import Foundation
import MLBench
import Yams

/// A definition submitted through the API, made into an experiment file the queue can run:
/// every file it names (model, inputs, reference model and outputs, labels) must be an upload
/// of the submitter's, named either `sha256:HEX` or by a key of `files` (a name → SHA-256
/// map). The service writes the definition into a folder of its own with links to those
/// blobs under names it chooses (`model.onnx`, `input-1.npy`, ...): no name a client sends is
/// ever used as a path.
public enum Definitions {
    public static func prepare(definition text: String, files: [String: String], user: String, store: LabStore,
                               blobs: BlobStore, into folder: URL) throws -> ExperimentFile {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw APIError(.unprocessableContent, "the definition is neither YAML nor JSON: \(error)", field: "definition")
        }
        guard var document = loaded as? [String: Any] else {
            throw APIError(.unprocessableContent, "the definition must be a mapping (an experiment)", field: "definition")
        }
        // Toolchain options reach plugins as they are; a path among them (a calibration cache,
        // say) would reach the server's file system, which remote users may not name.
        if let toolchain = document["toolchain"] as? [String: Any], let options = toolchain["options"] {
            try refusePaths(options, field: "toolchain.options")
        }
        for (name, hash) in files where !isSHA256(hash) {
            throw APIError(.unprocessableContent, "files['\(name)'] is not a SHA-256 (64 hex digits)", field: "files")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        do {
            var counter = [String: Int]()
            /// Links the upload `reference` names into the folder; returns the name given to it.
            func link(_ reference: Any?, field: String, prefix: String, ext: String, kind: String) throws -> String {
                guard let reference = reference as? String else {
                    throw APIError(.unprocessableContent, "'\(field)' must name an uploaded file", field: "definition.\(field)")
                }
                let hash: String
                if reference.hasPrefix("sha256:"), isSHA256(String(reference.dropFirst(7))) {
                    hash = String(reference.dropFirst(7)).lowercased()
                } else if let mapped = files[reference] {
                    hash = mapped.lowercased()
                } else {
                    throw APIError(.unprocessableContent,
                                   "'\(field)' names '\(reference)', which is no uploaded file: upload it (POST /api/v1/files) and name it 'sha256:HEX' or list it in 'files'",
                                   field: "definition.\(field)")
                }
                guard let upload = try store.upload(sha256: hash, user: user) else {
                    throw APIError(.unprocessableContent, "'\(field)': no file with SHA-256 \(hash) was uploaded by \(user)", field: "definition.\(field)")
                }
                guard upload.kind == kind else {
                    throw APIError(.unprocessableContent, "'\(field)' must be an uploaded \(kind), but \(hash) is an uploaded \(upload.kind)",
                                   field: "definition.\(field)")
                }
                guard case .intact = try blobs.check(hash) else {
                    throw APIError(.conflict, "'\(field)': the uploaded file \(hash) is missing or changed in the blob store; upload it again")
                }
                counter[prefix, default: 0] += 1
                let name = counter[prefix] == 1 && prefix.hasPrefix("model") ? "\(prefix).\(ext)" : "\(prefix)-\(counter[prefix]!).\(ext)"
                try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: blobs.path(of: hash))
                return name
            }
            document["model"] = try link(document["model"], field: "model", prefix: "model", ext: "onnx", kind: "model")
            if let inputs = document["inputs"] as? [String: Any] {
                var linked = [String: Any]()
                for name in inputs.keys.sorted() {
                    linked[name] = try link(inputs[name], field: "inputs.\(name)", prefix: "input", ext: "npy", kind: "input")
                }
                document["inputs"] = linked
            }
            if var reference = document["reference"] as? [String: Any] {
                if let model = reference["model"] {
                    reference["model"] = try link(model, field: "reference.model", prefix: "model-reference", ext: "onnx", kind: "model")
                }
                if let outputs = reference["outputs"] as? [String: Any] {
                    var linked = [String: Any]()
                    for name in outputs.keys.sorted() {
                        linked[name] = try link(outputs[name], field: "reference.outputs.\(name)", prefix: "reference", ext: "npy", kind: "input")
                    }
                    reference["outputs"] = linked
                }
                document["reference"] = reference
            }
            if var criterion = document["semantic_preservation"] as? [String: Any], var labels = criterion["labels"] as? [String: Any],
               let file = labels["file"] {
                labels["file"] = try link(file, field: "semantic_preservation.labels.file", prefix: "labels", ext: "npy", kind: "input")
                criterion["labels"] = labels
                document["semantic_preservation"] = criterion
            }
            let path = folder.appendingPathComponent("experiment.yaml")
            try Yams.dump(object: document, sortKeys: true).write(to: path, atomically: true, encoding: .utf8)
            do {
                return try ExperimentFile.load(path.path)
            } catch {
                throw APIError(.unprocessableContent, "the definition is not a valid experiment: \(error)", field: "definition")
            }
        } catch {
            try? FileManager.default.removeItem(at: folder)
            throw error
        }
    }

    /// Refuses strings that look like file paths (absolute, home-relative, or climbing out).
    static func refusePaths(_ value: Any, field: String) throws {
        switch value {
        case let text as String:
            if text.hasPrefix("/") || text.hasPrefix("~") || text == ".." || text.hasPrefix("../") || text.contains("/../") || text.hasSuffix("/..") {
                throw APIError(.unprocessableContent, "'\(field)' is '\(text)': file paths are not accepted through the service", field: "definition.\(field)")
            }
        case let mapping as [String: Any]:
            for (key, inner) in mapping { try refusePaths(inner, field: "\(field).\(key)") }
        case let list as [Any]:
            for (index, inner) in list.enumerated() { try refusePaths(inner, field: "\(field)[\(index)]") }
        default:
            break
        }
    }

    static func isSHA256(_ text: String) -> Bool { text.count == 64 && text.allSatisfy(\.isHexDigit) }
}
