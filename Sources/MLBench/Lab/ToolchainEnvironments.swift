import Foundation
import MLBenchCore
import OpenSSLDriver

/// Managed Python environments of toolchains: one virtual environment per
/// toolchain version, side by side, under `<home>/toolchains/<name>/<version>/`.
public struct ToolchainEnvironments: Sendable {
    public let home: LabHome

    public init(home: LabHome) { self.home = home }

    /// What `environment.json` records of an installed environment.
    public struct Record: Codable, Sendable, Equatable {
        public var toolchain: String
        public var version: String
        public var packages: [String]
        public var python: String
        public var installedAt: Date
        /// `pip freeze` of the environment: every package version, for replay.
        public var frozen: [String]

        /// SHA-256 of the sorted package list: two environments with the same
        /// lock build the same artifacts, so the artifact cache is keyed on it.
        public var lock: String {
            (try? SHA256Digest.hex(of: Data(frozen.sorted().joined(separator: "\n").utf8))) ?? ""
        }
    }

    public func folder(_ toolchain: String, _ version: String) -> URL {
        home.toolchains.appendingPathComponent(toolchain).appendingPathComponent(version)
    }

    /// Installed versions of `toolchain`, newest first.
    public func installed(_ toolchain: String) -> [Record] {
        let base = home.toolchains.appendingPathComponent(toolchain)
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return versions.compactMap { version in
            guard let data = try? Data(contentsOf: base.appendingPathComponent(version).appendingPathComponent("environment.json")) else { return nil }
            return try? ToolchainEnvironments.decoder.decode(Record.self, from: data)
        }.sorted { VersionOrder.less($1.version, $0.version) }
    }

    /// The installed environment of `version`, or the newest one; when there is none,
    /// an error that names `what` is missing, what is installed, and the command
    /// (`install`, without `--version`) that installs it.
    public func required(_ toolchain: String, version: String?, what: String, install: String) throws -> Record {
        let records = installed(toolchain)
        if let record = version.map({ wanted in records.first { $0.version == wanted } }) ?? records.first { return record }
        let which = version.map { "version \($0) of \(what) is not installed" } ?? "\(what) has no installed environment"
        throw LabError.environment("\(which) (installed: \(records.isEmpty ? "none" : records.map(\.version).joined(separator: ", "))); "
                                   + "run `\(install)\(version.map { " --version \($0)" } ?? "")`")
    }

    /// Creates the environment of `version` with pip. Nothing is left behind on
    /// failure, and an existing environment of another version is never touched.
    @discardableResult
    public func install(_ toolchain: String, version: String, spec: PluginManifest.PythonSpec,
                        log: (String) -> Void = { _ in }) throws -> Record {
        let target = folder(toolchain, version)
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: target.appendingPathComponent("environment.json").path) {
            throw LabError.environment("toolchain '\(toolchain)' \(version) is already installed in \(target.path); remove it first to reinstall")
        }
        let staging = target.deletingLastPathComponent().appendingPathComponent(".\(version).partial-\(getpid())")
        try? fileManager.removeItem(at: staging)
        try fileManager.createDirectory(at: staging.deletingLastPathComponent(), withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(at: staging) }

        let basePython = ProcessInfo.processInfo.environment["MLBENCH_PYTHON"] ?? "python3"
        let venv = staging.appendingPathComponent("venv")
        log("creating a virtual environment with \(basePython)")
        try run([basePython, "-m", "venv", venv.path], what: "python -m venv", timeout: 300)
        let packages = spec.packages.map { $0.replacingOccurrences(of: "{version}", with: version) }
        let pip = venv.appendingPathComponent("bin/pip").path
        let extra = (ProcessInfo.processInfo.environment["MLBENCH_PIP_ARGS"] ?? "").split(separator: " ").map(String.init)
        log("pip install \(packages.joined(separator: " "))")
        try run([pip, "install", "--disable-pip-version-check", "--quiet"] + extra + packages, what: "pip install", timeout: 3600)
        let frozen = try run([pip, "freeze", "--disable-pip-version-check"], what: "pip freeze", timeout: 300)
            .split(separator: "\n").map(String.init)

        // A venv records its own path; move it by recreating the scripts' shebangs is fragile,
        // so the final folder is created first and the venv built in place is moved only as a whole.
        if fileManager.fileExists(atPath: target.path) { try fileManager.removeItem(at: target) }
        try fileManager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        try fileManager.moveItem(at: staging, to: target)
        try fixShebangs(in: target.appendingPathComponent("venv"), from: staging.path, to: target.path)
        let record = Record(toolchain: toolchain, version: version, packages: packages,
                            python: target.appendingPathComponent("venv/bin/python").path,
                            installedAt: Date(), frozen: frozen)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(record).write(to: target.appendingPathComponent("environment.json"), options: .atomic)
        return record
    }

    /// Removes an installed environment.
    public func remove(_ toolchain: String, version: String) throws {
        let target = folder(toolchain, version)
        guard FileManager.default.fileExists(atPath: target.path) else {
            throw LabError.environment("toolchain '\(toolchain)' \(version) is not installed")
        }
        try FileManager.default.removeItem(at: target)
    }

    /// Scripts in venv/bin name the interpreter by absolute path; after the
    /// staging folder is renamed they must name the final one.
    private func fixShebangs(in venv: URL, from old: String, to new: String) throws {
        let bin = venv.appendingPathComponent("bin")
        for name in try FileManager.default.contentsOfDirectory(atPath: bin.path) {
            let file = bin.appendingPathComponent(name)
            guard let text = try? String(contentsOf: file, encoding: .utf8), text.contains(old) else { continue }
            try text.replacingOccurrences(of: old, with: new).write(to: file, atomically: true, encoding: .utf8)
        }
        let config = venv.appendingPathComponent("pyvenv.cfg")
        if let text = try? String(contentsOf: config, encoding: .utf8), text.contains(old) {
            try text.replacingOccurrences(of: old, with: new).write(to: config, atomically: true, encoding: .utf8)
        }
    }

    @discardableResult
    private func run(_ command: [String], what: String, timeout: Double) throws -> String {
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(command, timeout: timeout)
        } catch {
            throw LabError.environment("\(what): \(error)")
        }
        guard result.status == 0 else {
            let tail = result.stderr.split(separator: "\n").suffix(8).joined(separator: "\n")
            throw LabError.environment("\(what) failed (status \(result.status)):\n\(tail)")
        }
        return result.stdout
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()
}

/// Orders version strings by their numeric parts ("0.27.0.post1" > "0.26.0").
enum VersionOrder {
    static func less(_ a: String, _ b: String) -> Bool {
        let left = parts(a), right = parts(b)
        for (x, y) in zip(left, right) where x != y {
            if let i = Int(x), let j = Int(y) { return i < j }
            return x < y
        }
        return left.count < right.count
    }

    private static func parts(_ version: String) -> [String] {
        version.split(whereSeparator: { $0 == "." || $0 == "-" || $0 == "+" }).map(String.init)
    }
}
