import CMLBenchPlugin
import Foundation
import MLBenchCore
#if canImport(Glibc)
import Glibc
#endif

/// A plugin found on the search path: its manifest and where it lives. No code
/// has been loaded.
public struct DiscoveredPlugin: Sendable, Equatable {
    public var manifest: PluginManifest
    /// The plugin's folder.
    public var directory: String
    public var libraryPath: String

    public var name: String { manifest.name }
}

/// Finds plugins on a search path by their manifests, and dlopens them only
/// when something of theirs is used.
public final class PluginCatalog: @unchecked Sendable {
    /// The folders searched, in order.
    public let searchPath: [String]
    /// Plugins found, by name (duplicates excluded).
    public private(set) var plugins: [String: DiscoveredPlugin] = [:]
    /// Manifests that could not be read, and names found more than once.
    public private(set) var problems: [PluginError] = []
    private var duplicates: [String: [String]] = [:]
    private var loaded: [String: LoadedPlugin] = [:]
    private let lock = NSLock()

    /// The environment variable that adds folders (colon-separated) to the search path.
    public static let pathVariable = "MLBENCH_PLUGIN_PATH"

    /// The search path: explicit folders first, then `MLBENCH_PLUGIN_PATH`, then
    /// the folders installed beside the `mlbench` executable.
    public static func searchPath(explicit: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        var path = explicit
        if let variable = environment[pathVariable] {
            path += variable.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first.map(resolveExecutable) ?? ".").deletingLastPathComponent()
        path.append(executable.appendingPathComponent("mlbench-plugins").path)
        path.append(executable.deletingLastPathComponent().appendingPathComponent("lib/mlbench/plugins").path)
        var seen = Set<String>()
        return path.map { URL(fileURLWithPath: $0).standardizedFileURL.path }.filter { seen.insert($0).inserted }
    }

    private static func resolveExecutable(_ argument: String) -> String {
        // /proc/self/exe names the binary even when it was found through PATH.
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? argument
    }

    /// Scans every folder of `searchPath`: each subfolder holding a plugin.yaml is a plugin.
    public init(searchPath: [String]) {
        self.searchPath = searchPath
        var found: [String: [DiscoveredPlugin]] = [:]
        for folder in searchPath {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? []
            for entry in entries {
                let directory = URL(fileURLWithPath: folder).appendingPathComponent(entry)
                let manifestPath = directory.appendingPathComponent(PluginManifest.fileName).path
                guard FileManager.default.fileExists(atPath: manifestPath) else { continue }
                do {
                    let manifest = try PluginManifest.load(manifestPath)
                    let library = directory.appendingPathComponent(manifest.library).standardizedFileURL.path
                    found[manifest.name, default: []].append(
                        DiscoveredPlugin(manifest: manifest, directory: directory.path, libraryPath: library))
                } catch let error as ConfigurationError {
                    problems.append(.invalidManifest(error))
                } catch {
                    problems.append(.invalidManifest(ConfigurationError(file: manifestPath, message: "\(error)")))
                }
            }
        }
        for (name, candidates) in found {
            if candidates.count == 1 {
                plugins[name] = candidates[0]
            } else {
                let paths = candidates.map(\.directory)
                duplicates[name] = paths
                problems.append(.duplicate(name: name, paths: paths))
            }
        }
    }

    /// The plugin named `name`, found but not loaded.
    public func discovered(_ name: String) throws -> DiscoveredPlugin {
        if let paths = duplicates[name] { throw PluginError.duplicate(name: name, paths: paths) }
        guard let plugin = plugins[name] else { throw PluginError.notFound(name: name, searchPath: searchPath) }
        return plugin
    }

    /// Loads the plugin named `name` (once) and checks it against its manifest.
    public func load(_ name: String) throws -> LoadedPlugin {
        lock.lock()
        defer { lock.unlock() }
        if let plugin = loaded[name] { return plugin }
        let plugin = try LoadedPlugin(try discovered(name))
        loaded[name] = plugin
        return plugin
    }
}

/// A plugin whose library is loaded and whose descriptor agrees with its
/// manifest. Libraries are never unloaded: Swift runtimes do not support it.
public final class LoadedPlugin: @unchecked Sendable {
    public let discovered: DiscoveredPlugin
    let descriptor: UnsafePointer<mlb_plugin_descriptor>
    /// The descriptor's own words.
    public let name: String
    public let version: String
    public let summary: String
    public let factories: [(role: Role, kind: String)]

    init(_ plugin: DiscoveredPlugin) throws {
        discovered = plugin
        let name = plugin.name
        let path = plugin.libraryPath
        guard FileManager.default.fileExists(atPath: path) else { throw PluginError.libraryMissing(plugin: name, path: path) }
        try LoadedPlugin.checkELF(plugin: name, path: path)
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let message = dlerror().map { String(cString: $0) } ?? "unknown error"
            if message.contains("cannot open shared object file") || message.contains("undefined symbol") {
                throw PluginError.unresolvedDependency(plugin: name, path: path, dlerror: message)
            }
            throw PluginError.loadFailed(plugin: name, path: path, dlerror: message)
        }
        guard let symbol = dlsym(handle, MLBABI.entrySymbol) else {
            throw PluginError.entryMissing(plugin: name, path: path)
        }
        let entry = unsafeBitCast(symbol, to: mlb_entry_function.self)
        guard let descriptor = entry() else {
            throw PluginError.descriptorMismatch(plugin: name, path: path, detail: "the entry function returned no descriptor")
        }
        // The ABI version is the first field: read it before trusting anything else.
        let abi = descriptor.pointee.abi_version
        guard abi == MLBABI.version else {
            throw PluginError.abiMismatch(plugin: name, path: path, found: abi, expected: MLBABI.version)
        }
        guard UInt32(plugin.manifest.abiVersion) == abi else {
            throw PluginError.descriptorMismatch(plugin: name, path: path,
                                                 detail: "the manifest says ABI version \(plugin.manifest.abiVersion), the library \(abi)")
        }
        self.descriptor = descriptor
        self.name = descriptor.pointee.name.map { String(cString: $0) } ?? ""
        version = descriptor.pointee.version.map { String(cString: $0) } ?? ""
        summary = descriptor.pointee.description.map { String(cString: $0) } ?? ""
        var factories = [(role: Role, kind: String)]()
        for index in 0..<descriptor.pointee.factory_count {
            let factory = descriptor.pointee.factories[index]
            guard let role = Role(factory.role) else {
                throw PluginError.descriptorMismatch(plugin: name, path: path, detail: "factory \(index) has an unknown role \(factory.role.rawValue)")
            }
            factories.append((role, factory.kind.map { String(cString: $0) } ?? ""))
        }
        self.factories = factories
        if self.name != plugin.manifest.name {
            throw PluginError.descriptorMismatch(plugin: name, path: path, detail: "the manifest names it '\(plugin.manifest.name)', the library '\(self.name)'")
        }
        if version != plugin.manifest.version {
            throw PluginError.descriptorMismatch(plugin: name, path: path, detail: "the manifest says version \(plugin.manifest.version), the library \(version)")
        }
        let declared = Set(plugin.manifest.provides.map { "\($0.role)/\($0.kind)" })
        let actual = Set(factories.map { "\($0.role)/\($0.kind)" })
        if declared != actual {
            throw PluginError.descriptorMismatch(
                plugin: name, path: path,
                detail: "the manifest provides [\(declared.sorted().joined(separator: ", "))], the library [\(actual.sorted().joined(separator: ", "))]")
        }
    }

    /// A library that is not ELF is refused before dlopen, with a plain reason.
    private static func checkELF(plugin: String, path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PluginError.notSharedObject(plugin: plugin, path: path, detail: "it cannot be read")
        }
        defer { try? handle.close() }
        let magic = (try? handle.read(upToCount: 4)) ?? Data()
        if magic != Data([0x7f, 0x45, 0x4c, 0x46]) {
            throw PluginError.notSharedObject(plugin: plugin, path: path, detail: magic.count < 4 ? "the file is too short" : "no ELF header")
        }
    }

    /// The factory for `role` (and `kind`, when the plugin has several of that role).
    func factory(role: Role, kind: String?) throws -> UnsafePointer<mlb_factory> {
        let matching = (0..<descriptor.pointee.factory_count).filter { index in
            let factory = descriptor.pointee.factories[index]
            return Role(factory.role) == role && (kind == nil || factory.kind.map { String(cString: $0) } == kind)
        }
        let available = factories.filter { $0.role == role }.map(\.kind)
        guard let index = matching.first, kind != nil || matching.count == 1 else {
            throw PluginError.noSuchKind(plugin: name, role: role, kind: kind, available: available)
        }
        return descriptor.pointee.factories + index
    }
}

extension Role {
    init?(_ role: mlb_role) {
        switch role {
        case MLB_ROLE_TOOLCHAIN: self = .toolchain
        case MLB_ROLE_BOARD: self = .board
        case MLB_ROLE_PROBE: self = .probe
        case MLB_ROLE_POWER_SWITCH: self = .powerSwitch
        default: return nil
        }
    }
}
