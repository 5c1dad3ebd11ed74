import Foundation
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// swift-board: the local machine as a board, written against MLBenchPluginKit
/// and built out of tree. The kit turns this class into the C tables of
/// mlbench_plugin.h: each method receives the decoded JSON request and returns
/// the reply, and a thrown `PluginFailure` becomes a status code and a message.
///
/// What it does, honestly:
/// - describe: host name and architecture from uname(2), RAM from /proc/meminfo;
/// - reset: nothing to power-cycle, a fresh deployment folder is the clean state
///   (the manifest says `resets_itself: true`);
/// - conditions: observes the kernel, architecture, CPU count and load; controls
///   nothing, so any condition asked for is refused as unsupported;
/// - deploy / fetch / cleanup: files in a fresh folder under the `work_root` setting;
/// - start_runner / exchange / stop_runner: NOT implemented — they throw
///   `PluginFailure(.unsupported, …)`. A real board starts the runner (a local
///   process, or over SSH) and relays one line of the runner wire protocol per
///   exchange; see Plugins/host in the mlbench repository for one that does.
final class SwiftBoard: Board, @unchecked Sendable {
    /// The inventory entry's `settings:`, snake_case in YAML (`work_root`).
    struct Settings: Decodable {
        /// Where deployments are made, each in a fresh folder inside.
        var workRoot: String?
    }

    static let folderPrefix = "swift-board-"
    private let workRoot: URL

    init(_ configuration: PluginConfiguration) throws {
        // Unknown settings are refused (and named) by decodeSettings.
        let settings = try configuration.decodeSettings(Settings.self, known: ["work_root"])
        let root = settings.workRoot ?? FileManager.default.temporaryDirectory.path
        guard root.hasPrefix("/") else {
            throw PluginFailure(.invalidConfiguration, "setting 'work_root': expected an absolute path, not '\(root)'")
        }
        workRoot = URL(fileURLWithPath: root, isDirectory: true).standardizedFileURL
    }

    func describe() throws -> BoardDescription {
        let names = try Self.uname()
        var memories = [MemoryRegion]()
        let memory = Self.meminfo()
        if let total = memory["MemTotal"] {
            let used = memory["MemAvailable"].flatMap { $0 <= total ? total - $0 : nil }
            memories.append(MemoryRegion(name: "ram", sizeBytes: total, usedBytes: used))
        }
        return BoardDescription(name: names.nodename, architecture: names.machine, memories: memories)
    }

    func reset(_ request: ResetRequest) throws -> ResetReport {
        ResetReport(ready: true, log: "swift-board is ready (the local machine is not power-cycled: each deployment is a fresh folder)")
    }

    func conditions(_ request: ConditionsRequest) throws -> ConditionsReport {
        if let name = request.apply.keys.sorted().first {
            throw PluginFailure(.unsupported, "condition '\(name)' cannot be controlled on the swift-board (it controls none; it observes kernel, architecture, cpu_count, load_average)")
        }
        let names = try Self.uname()
        var observed = ["kernel": names.release, "architecture": names.machine,
                        "cpu_count": String(ProcessInfo.processInfo.activeProcessorCount)]
        if let load = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) {
            observed["load_average"] = load.split(separator: " ").prefix(3).joined(separator: " ")
        }
        return ConditionsReport(applied: [:], observed: observed)
    }

    func deploy(_ request: DeployRequest) throws -> Deployment {
        for file in request.files where !Self.isPlainName(file.name) {
            throw PluginFailure(.invalidRequest, "deploy: '\(file.name)' is not a plain file name")
        }
        let files = FileManager.default
        do {
            try files.createDirectory(at: workRoot, withIntermediateDirectories: true)
        } catch {
            throw PluginFailure(.device, "deploy: cannot create the work root \(workRoot.path): \(error.localizedDescription)")
        }
        // mkdtemp: a fresh folder no one else has, even across processes.
        var template = Array(workRoot.appendingPathComponent(Self.folderPrefix + "XXXXXX").path.utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw PluginFailure(.device, "deploy: cannot create a folder in \(workRoot.path): \(String(cString: strerror(errno)))")
        }
        let directory = URL(fileURLWithPath: String(cString: made), isDirectory: true)
        for file in request.files {
            do {
                try files.copyItem(atPath: file.source, toPath: directory.appendingPathComponent(file.name).path)
            } catch {
                try? files.removeItem(at: directory)
                let missing = !files.fileExists(atPath: file.source)
                throw PluginFailure(missing ? .invalidRequest : .device,
                                    "deploy: cannot copy \(file.source) to \(directory.path): \(missing ? "it does not exist" : error.localizedDescription)")
            }
        }
        return Deployment(directory: directory.path)
    }

    func startRunner(_ request: RunnerLaunch) throws -> RunnerSession { throw Self.noRunner("start_runner") }
    func exchange(_ request: RunnerExchange) throws -> RunnerExchangeReply { throw Self.noRunner("exchange") }
    func stopRunner(_ request: RunnerStop) throws -> RunnerExit { throw Self.noRunner("stop_runner") }

    func fetch(_ request: FetchRequest) throws {
        let source = try deployment(request.directory, inside: true)
        let files = FileManager.default
        for name in request.names where !Self.isPlainName(name) {
            throw PluginFailure(.invalidRequest, "fetch: '\(name)' is not a plain file name")
        }
        do {
            try files.createDirectory(atPath: request.destination, withIntermediateDirectories: true)
            for name in request.names {
                let target = URL(fileURLWithPath: request.destination).appendingPathComponent(name).path
                try? files.removeItem(atPath: target)
                try files.copyItem(atPath: source.appendingPathComponent(name).path, toPath: target)
            }
        } catch {
            throw PluginFailure(.device, "fetch from \(source.path): \(error.localizedDescription)")
        }
    }

    func cleanup(_ request: CleanupRequest) throws {
        let directory = try deployment(request.directory, inside: false)
        guard FileManager.default.fileExists(atPath: directory.path) else { return }
        do {
            try FileManager.default.removeItem(at: directory)
        } catch {
            throw PluginFailure(.device, "cleanup: cannot remove \(directory.path): \(error.localizedDescription)")
        }
    }

    /// A deployment folder of this board (or, with `inside`, a folder in one);
    /// nothing else is ever read or removed.
    private func deployment(_ path: String, inside: Bool) throws -> URL {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let root = workRoot.path == "/" ? "" : workRoot.path
        let rest = path.hasPrefix(root + "/") ? path.dropFirst(root.count + 1).split(separator: "/").map(String.init) : []
        guard !components.contains(".."), !components.contains("."),
              let first = rest.first, first.hasPrefix(Self.folderPrefix), inside || rest.count == 1 else {
            throw PluginFailure(.invalidRequest, "'\(path)' is not a deployment of this board")
        }
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    private static func noRunner(_ operation: String) -> PluginFailure {
        PluginFailure(.unsupported, "\(operation): the swift-board example does not run runners (it demonstrates an out-of-tree Swift plugin: describe, reset, conditions, deploy, fetch, cleanup); use the host board to run experiments")
    }

    private static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("/") && name != "." && name != ".."
    }

    private static func uname() throws -> (nodename: String, machine: String, release: String) {
        var names = utsname()
        guard Glibc.uname(&names) == 0 else {
            throw PluginFailure(.device, "uname: \(String(cString: strerror(errno)))")
        }
        func field<T>(_ value: inout T) -> String {
            withUnsafeBytes(of: &value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return (field(&names.nodename), field(&names.machine), field(&names.release))
    }

    /// /proc/meminfo in bytes, by field name.
    private static func meminfo() -> [String: UInt64] {
        var values = [String: UInt64]()
        let text = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, parts[0].hasSuffix(":"), let kib = UInt64(parts[1]) {
                values[String(parts[0].dropLast())] = kib * 1024
            }
        }
        return values
    }
}

/// The one symbol mlbench looks up. The descriptor must agree with plugin.yaml.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "swift-board", version: "1.1.0",
        description: "The local machine as a board, written in Swift with MLBenchPluginKit (an out-of-tree example)",
        factories: [.board("swift-board") { try SwiftBoard($0) }])
}
