import CMLBenchPlugin
import Foundation
@_exported import MLBenchCore

/// One factory a Swift plugin exports: the role, the kind name inventories use,
/// and how to make an instance from its configuration.
public struct PluginFactory: Sendable {
    let role: Role
    let kind: String
    let make: @Sendable (PluginConfiguration) throws -> AnyObject

    public static func toolchain(_ kind: String, _ make: @escaping @Sendable (PluginConfiguration) throws -> any Toolchain) -> PluginFactory {
        PluginFactory(role: .toolchain, kind: kind, make: { try make($0) })
    }

    public static func board(_ kind: String, _ make: @escaping @Sendable (PluginConfiguration) throws -> any Board) -> PluginFactory {
        PluginFactory(role: .board, kind: kind, make: { try make($0) })
    }

    public static func probe(_ kind: String, _ make: @escaping @Sendable (PluginConfiguration) throws -> any Probe) -> PluginFactory {
        PluginFactory(role: .probe, kind: kind, make: { try make($0) })
    }

    public static func powerSwitch(_ kind: String, _ make: @escaping @Sendable (PluginConfiguration) throws -> any PowerSwitch) -> PluginFactory {
        PluginFactory(role: .powerSwitch, kind: kind, make: { try make($0) })
    }
}

/// Builds the C descriptor of a Swift plugin. A plugin exports it with:
///
/// ```swift
/// @_cdecl("mlbench_plugin_entry")
/// public func mlbenchPluginEntry() -> UnsafeRawPointer {
///     PluginExport.descriptor(name: "myboard", version: "1.0.0", description: "My board",
///                             factories: [.board("myboard") { try MyBoard($0) }])
/// }
/// ```
///
/// The descriptor is built once and lives as long as the library.
public enum PluginExport {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: UnsafeMutablePointer<mlb_plugin_descriptor>?
    nonisolated(unsafe) static var factories: [String: PluginFactory] = [:]

    public static func descriptor(name: String, version: String, description: String,
                                  abiVersion: UInt32 = MLB_ABI_VERSION,
                                  factories: [PluginFactory]) -> UnsafeRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let built { return UnsafeRawPointer(built) }
        self.factories = Dictionary(factories.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })

        let cFactories = UnsafeMutablePointer<mlb_factory>.allocate(capacity: max(factories.count, 1))
        for (index, factory) in factories.enumerated() {
            cFactories[index] = mlb_factory(
                role: factory.role.cValue,
                kind: UnsafePointer(strdup(factory.kind)),
                create: { configuration, instance, reply in Trampolines.create(configuration, instance, reply) },
                destroy: { instance in Trampolines.destroy(instance) },
                table: factory.role.table)
        }
        let descriptor = UnsafeMutablePointer<mlb_plugin_descriptor>.allocate(capacity: 1)
        descriptor.initialize(to: mlb_plugin_descriptor(
            abi_version: abiVersion,
            name: UnsafePointer(strdup(name)),
            version: UnsafePointer(strdup(version)),
            description: UnsafePointer(strdup(description)),
            factory_count: factories.count,
            factories: UnsafePointer(cFactories)))
        built = descriptor
        return UnsafeRawPointer(descriptor)
    }
}

extension Role {
    var cValue: mlb_role {
        switch self {
        case .toolchain: return MLB_ROLE_TOOLCHAIN
        case .board: return MLB_ROLE_BOARD
        case .probe: return MLB_ROLE_PROBE
        case .powerSwitch: return MLB_ROLE_POWER_SWITCH
        }
    }

    var table: UnsafeRawPointer {
        switch self {
        case .toolchain: return UnsafeRawPointer(Tables.toolchain)
        case .board: return UnsafeRawPointer(Tables.board)
        case .probe: return UnsafeRawPointer(Tables.probe)
        case .powerSwitch: return UnsafeRawPointer(Tables.powerSwitch)
        }
    }
}
