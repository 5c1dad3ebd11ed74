import Foundation
import Yams

/// Replaying a stored result: its experiment as it was submitted (the stored definition),
/// run again on the very files it used, taken from the blob store by their SHA-256 — not
/// on whatever the original paths hold today.
public enum Replay {
    /// Writes `folder/experiment.yaml` — the stored definition with every file path pointing
    /// at a link (named like the original file) to its blob — and returns its path. Refuses
    /// when a file the result names is missing from the blob store or changed.
    public static func prepare(_ result: ExperimentResult, blobs: BlobStore, into folder: URL) throws -> String {
        guard var document = try Yams.load(yaml: result.experimentText) as? [String: Any] else {
            throw LabError.usage("result \(result.id): its stored definition is not a YAML mapping")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var used = Set<String>()
        /// Links the blob `key` names under the original file's name; returns that name.
        func link(_ original: String, _ key: String) throws -> String {
            guard let sha256 = result.checksums[key] else {
                throw LabError.usage("result \(result.id) cannot be replayed: it recorded no SHA-256 for its \(key)")
            }
            switch try blobs.check(sha256) {
            case .intact: break
            case .missing: throw LabError.usage("result \(result.id) cannot be replayed: its \(key) (\(sha256)) is not in the blob store \(blobs.root.path)")
            case .changed: throw LabError.usage("result \(result.id) cannot be replayed: its \(key) (\(sha256)) was changed in the blob store (mlbench verify \(result.id))")
            }
            var name = URL(fileURLWithPath: original).lastPathComponent
            if used.contains(name) { name = key.replacingOccurrences(of: ":", with: "-") + "-" + name }
            used.insert(name)
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: blobs.path(of: sha256))
            return name
        }
        if let model = document["model"] as? String { document["model"] = try link(model, "model") }
        if var inputs = document["inputs"] as? [String: Any] {
            for (name, path) in inputs { if let path = path as? String { inputs[name] = try link(path, "input:\(name)") } }
            document["inputs"] = inputs
        }
        if var reference = document["reference"] as? [String: Any] {
            if let model = reference["model"] as? String { reference["model"] = try link(model, "reference_model") }
            if var outputs = reference["outputs"] as? [String: Any] {
                for (name, path) in outputs { if let path = path as? String { outputs[name] = try link(path, "reference:\(name)") } }
                reference["outputs"] = outputs
            }
            document["reference"] = reference
        }
        if var criterion = document["semantic_preservation"] as? [String: Any], var labels = criterion["labels"] as? [String: Any],
           let file = labels["file"] as? String {
            labels["file"] = try link(file, "labels")
            criterion["labels"] = labels
            document["semantic_preservation"] = criterion
        }
        let path = folder.appendingPathComponent("experiment.yaml")
        try Yams.dump(object: document, sortKeys: true).write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }
}
