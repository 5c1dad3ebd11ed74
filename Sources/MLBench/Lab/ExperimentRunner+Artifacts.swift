import Foundation
import MLBenchCore
import OpenSSLDriver

// The check and build steps: compatibility before the board is touched, and the
// artifact cache keyed on everything that changes a build.
extension ExperimentRunner {
    struct Artifact {
        var directory: URL
        var file: String
        var hash: String
        var log: String
        var effectiveOptions: JSONValue?
        var cache: String
    }

    /// Runs the compatibility checks and ends the experiment on any error,
    /// before the board is touched; warnings are logged and kept in the result.
    func checkCompatibility(toolchain: PluginToolchain, description: ToolchainDescription, model: String,
                                    target: String, options: JSONValue, boardName: String, board: BoardDescription?,
                                    stagePrefix: String, result: inout ExperimentResult) throws -> CompatibilityCheck {
        let check = try stage(stagePrefix + "check") {
            try CompatibilityCheck.run(model: model, toolchain: toolchain, description: description, target: target,
                                       options: options, boardName: boardName, board: board)
        }
        for finding in check.findings where finding.severity != .error {
            log(&result, stagePrefix + "check", finding.description)
        }
        guard check.compatible else {
            throw StageFailure(stage: stagePrefix + "check", reason: "\(description.name) \(description.version) cannot build this model for '\(target)' on \(boardName): \(check.errorSummary)",
                               kind: .userInput)
        }
        log(&result, stagePrefix + "check", "compatible (\(check.findings.count) finding(s))" + (check.needsCalibrationData ? "; the build calibrates on the experiment's inputs" : ""))
        return check
    }

    /// What a cache entry records: the artifact's file and the SHA-256 of every
    /// file in the entry, so that a changed byte is noticed before it is deployed.
    struct CacheRecord: Codable {
        var artifact: String
        var hash: String
        var log: String
        var effectiveOptions: JSONValue?
        var files: [String: String]?
    }

    /// Builds, or reuses the artifact cached under the SHA-256 of the model, the
    /// toolchain's name, version and environment lock, the plugin version, the
    /// target, the options and (when the build calibrates) the calibration inputs.
    /// A cache entry whose files no longer match their hashes is removed and rebuilt.
    func buildArtifact(toolchain: PluginToolchain, description: ToolchainDescription, model: String, modelHash: String,
                               target: String, options: JSONValue, calibration: [String: String]?, stagePrefix: String,
                               result: inout ExperimentResult) throws -> Artifact {
        let buildStage = stagePrefix + "build"
        let key = try stage(buildStage) { () -> String in
            var parts = [modelHash, description.name, description.version, toolchain.environment?.lock ?? "no environment",
                         toolchain.plugin.version, target, try JSONCoding.encode(options)]
            for (name, path) in (calibration ?? [:]).sorted(by: { $0.key < $1.key }) {
                parts.append("calibration \(name) \(try SHA256Digest.hex(ofFile: path))")
            }
            return try SHA256Digest.hex(of: Data(parts.joined(separator: "\n").utf8))
        }
        let cached = lab.home.artifacts.appendingPathComponent(key, isDirectory: true)
        let recordFile = cached.appendingPathComponent("artifact.json")
        var cacheOutcome = "built"
        if let data = try? Data(contentsOf: recordFile) {
            let record = try? JSONDecoder().decode(CacheRecord.self, from: data)
            if let record, let problem = Self.damage(of: cached, record) {
                log(&result, buildStage, "cache entry \(key.prefix(12)) is corrupted (\(problem)); removing it and building again")
                try? FileManager.default.removeItem(at: cached)
                cacheOutcome = "rebuilt"
            } else if let record {
                log(&result, buildStage, "cache hit: reusing artifact \(key.prefix(12)), all \(record.files?.count ?? 1) file(s) match their SHA-256")
                return Artifact(directory: cached, file: record.artifact, hash: record.hash, log: record.log,
                                effectiveOptions: record.effectiveOptions, cache: "cache hit")
            } else {
                log(&result, buildStage, "cache entry \(key.prefix(12)) has an unreadable record; removing it and building again")
                try? FileManager.default.removeItem(at: cached)
                cacheOutcome = "rebuilt"
            }
        } else {
            log(&result, buildStage, "cache miss for \(key.prefix(12))")
        }
        log(&result, buildStage, "building with \(description.name) \(description.version) for \(target)")
        let staging = lab.home.artifacts.appendingPathComponent(".\(key)-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        return try stage(buildStage) {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            let built = try toolchain.build(BuildRequest(model: model, target: target, options: options, outputDirectory: staging.path,
                                                         calibrationInputs: calibration))
            let artifactURL = URL(fileURLWithPath: built.artifact)
            guard artifactURL.deletingLastPathComponent().standardizedFileURL.path == staging.standardizedFileURL.path else {
                throw StageFailure(stage: buildStage, reason: "the toolchain put its artifact outside the build folder: \(built.artifact)")
            }
            let hash = try hashFile(built.artifact, role: "artifact")
            let record = CacheRecord(artifact: artifactURL.lastPathComponent, hash: hash, log: built.log,
                                     effectiveOptions: built.effectiveOptions, files: try Self.fileHashes(in: staging))
            try JSONEncoder().encode(record).write(to: staging.appendingPathComponent("artifact.json"))
            // Another run may have built the same artifact meanwhile: theirs is as good.
            if (try? FileManager.default.moveItem(at: staging, to: cached)) == nil, !FileManager.default.fileExists(atPath: recordFile.path) {
                throw StageFailure(stage: buildStage, reason: "cannot place the artifact in the cache \(cached.path)")
            }
            return Artifact(directory: cached, file: record.artifact, hash: hash, log: built.log,
                            effectiveOptions: built.effectiveOptions, cache: cacheOutcome)
        }
    }

    /// SHA-256 of every regular file under `folder` (but the record itself), by relative path.
    static func fileHashes(in folder: URL) throws -> [String: String] {
        var hashes = [String: String]()
        let root = folder.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: root) else { return hashes }
        for case let relative as String in walker where relative != "artifact.json" {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                hashes[relative] = try SHA256Digest.hex(ofFile: path)
            }
        }
        return hashes
    }

    /// What is wrong with a cache entry, or nil when every recorded file is there with its hash.
    static func damage(of entry: URL, _ record: CacheRecord) -> String? {
        let expected = record.files ?? [record.artifact: record.hash]
        for (relative, hash) in expected.sorted(by: { $0.key < $1.key }) {
            let path = entry.appendingPathComponent(relative).path
            guard FileManager.default.fileExists(atPath: path) else { return "\(relative) is missing" }
            guard (try? SHA256Digest.hex(ofFile: path)) == hash else { return "\(relative) does not match its SHA-256" }
        }
        return nil
    }
}
