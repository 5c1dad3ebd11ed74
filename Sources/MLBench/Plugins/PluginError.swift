import Foundation
import CMLBenchPlugin
import MLBenchCore

/// Why a plugin could not be found, loaded or used. Every case names the
/// plugin and the file concerned.
public enum PluginError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidManifest(ConfigurationError)
    case duplicate(name: String, paths: [String])
    case notFound(name: String, searchPath: [String])
    case libraryMissing(plugin: String, path: String)
    case notSharedObject(plugin: String, path: String, detail: String)
    case unresolvedDependency(plugin: String, path: String, dlerror: String)
    case loadFailed(plugin: String, path: String, dlerror: String)
    case entryMissing(plugin: String, path: String)
    case abiMismatch(plugin: String, path: String, found: UInt32, expected: UInt32)
    case descriptorMismatch(plugin: String, path: String, detail: String)
    case noSuchKind(plugin: String, role: Role, kind: String?, available: [String])
    case tableTooSmall(plugin: String, role: Role, size: UInt32, expected: UInt32)
    case call(plugin: String, kind: String, operation: String, failure: PluginFailure)

    public var description: String {
        switch self {
        case .invalidManifest(let error):
            return "invalid plugin manifest: \(error)"
        case .duplicate(let name, let paths):
            return "two plugins are named '\(name)': \(paths.joined(separator: " and ")); remove one or take one off the plugin path"
        case .notFound(let name, let searchPath):
            return "no plugin named '\(name)' in the plugin path (\(searchPath.isEmpty ? "empty" : searchPath.joined(separator: ":")))"
        case .libraryMissing(let plugin, let path):
            return "plugin '\(plugin)': its library \(path) is missing (was the plugin built and installed?)"
        case .notSharedObject(let plugin, let path, let detail):
            return "plugin '\(plugin)': \(path) is not a shared object (\(detail))"
        case .unresolvedDependency(let plugin, let path, let dlerror):
            return "plugin '\(plugin)': \(path) needs a library that cannot be resolved: \(dlerror)"
        case .loadFailed(let plugin, let path, let dlerror):
            return "plugin '\(plugin)': cannot load \(path): \(dlerror)"
        case .entryMissing(let plugin, let path):
            return "plugin '\(plugin)': \(path) does not export the entry symbol \(MLBABI.entrySymbol)"
        case .abiMismatch(let plugin, let path, let found, let expected):
            return "plugin '\(plugin)': \(path) was built for plugin ABI version \(found), but this mlbench speaks ABI version \(expected); rebuild the plugin against this mlbench's mlbench_plugin.h"
        case .descriptorMismatch(let plugin, let path, let detail):
            return "plugin '\(plugin)': the manifest and the descriptor of \(path) disagree: \(detail)"
        case .noSuchKind(let plugin, let role, let kind, let available):
            let what = kind.map { "no \(role) of kind '\($0)'" } ?? "no \(role)"
            return "plugin '\(plugin)' provides \(what) (it provides: \(available.isEmpty ? "nothing of that role" : available.joined(separator: ", ")))"
        case .tableTooSmall(let plugin, let role, let size, let expected):
            return "plugin '\(plugin)': its \(role) table has \(size) bytes, fewer than the \(expected) this mlbench needs"
        case .call(let plugin, let kind, let operation, let failure):
            return "plugin '\(plugin)' (\(kind)) \(operation): \(failure)"
        }
    }
}

/// Constants of the C ABI, in one place for the Swift side.
public enum MLBABI {
    public static let entrySymbol = MLB_ENTRY_SYMBOL
    public static let version = UInt32(MLB_ABI_VERSION)
}
