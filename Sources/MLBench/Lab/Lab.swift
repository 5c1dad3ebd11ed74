import Foundation
import MLBenchCore

/// The lab as configured: its home folder, its inventory and the plugins on
/// its search path. It makes plugin instances for inventory entries.
public final class Lab: @unchecked Sendable {
    public let home: LabHome
    public let inventory: InventoryFile
    public let catalog: PluginCatalog
    public let environments: ToolchainEnvironments

    /// The board plugin that reference toolchains run on: the machine of the lab itself.
    public static let referenceBoardPlugin = "host"

    public init(home: LabHome, inventory: InventoryFile, extraPluginPaths: [String] = []) {
        self.home = home
        self.inventory = inventory
        catalog = PluginCatalog(searchPath: PluginCatalog.searchPath(explicit: extraPluginPaths + inventory.pluginPaths))
        environments = ToolchainEnvironments(home: home)
    }

    /// The toolchain called `name` in the inventory, in the environment of `version` (or the newest).
    public func toolchain(_ name: String, version: String?) throws -> PluginToolchain {
        guard let entry = inventory.inventory.toolchains[name] else {
            throw inventory.error(at: ["toolchains"], "no toolchain named '\(name)' (known: \(inventory.inventory.toolchains.keys.sorted().joined(separator: ", ")))")
        }
        let plugin = try catalog.load(entry.plugin)
        let provision = plugin.discovered.manifest.provides.first { $0.role == .toolchain && (entry.kind == nil || $0.kind == entry.kind) }
        var environment: EnvironmentInfo?
        var record: ToolchainEnvironments.Record?
        // A `python` setting names an interpreter the operator installed (JetPack's
        // TensorRT, say): then no managed environment is needed.
        if provision?.environment != nil, entry.settings?["python"] == nil {
            let installed = try environments.required(entry.plugin, version: version, what: "toolchain '\(name)'",
                                                      install: "mlbench toolchains install \(entry.plugin)")
            record = installed
            environment = EnvironmentInfo(version: installed.version, root: environments.folder(entry.plugin, installed.version).path,
                                          python: installed.python)
        }
        return try PluginToolchain(plugin: plugin, kind: entry.kind, configuration: PluginConfiguration(
            kind: entry.kind ?? "", pluginDirectory: plugin.discovered.directory,
            settings: entry.settings ?? .object([:]), environment: environment), environment: record)
    }

    /// The board called `name` in the inventory.
    public func board(_ name: String) throws -> PluginBoard {
        guard let entry = inventory.inventory.boards[name] else {
            throw inventory.error(at: ["boards"], "no board named '\(name)' (known: \(inventory.inventory.boards.keys.sorted().joined(separator: ", ")))")
        }
        let plugin = try catalog.load(entry.plugin)
        return try PluginBoard(plugin: plugin, kind: entry.kind, configuration: PluginConfiguration(
            kind: entry.kind ?? "", pluginDirectory: plugin.discovered.directory, settings: entry.settings ?? .object([:])))
    }

    /// The board reference toolchains run on.
    public func referenceBoard() throws -> PluginBoard {
        if let name = inventory.inventory.boards.first(where: { $0.value.plugin == Lab.referenceBoardPlugin })?.key {
            return try board(name)
        }
        let plugin = try catalog.load(Lab.referenceBoardPlugin)
        return try PluginBoard(plugin: plugin, kind: nil, configuration: PluginConfiguration(
            kind: "", pluginDirectory: plugin.discovered.directory))
    }

    /// The power switch called `name` in the inventory.
    public func powerSwitch(_ name: String) throws -> PluginPowerSwitch {
        guard let entry = inventory.inventory.powerSwitches?[name] else {
            throw inventory.error(at: ["power_switches"], "no power switch named '\(name)'")
        }
        return try create(plugin: entry.plugin, kind: entry.kind, settings: entry.settings, PluginPowerSwitch.init)
    }

    /// The probe named `name` in the inventory, created with its settings, or
    /// with `settings` instead when given (the runner's pid filled in, say).
    public func probe(_ name: String, settings: JSONValue? = nil) throws -> PluginProbe {
        guard let entry = inventory.inventory.probes?[name] else {
            throw inventory.error(at: ["probes"], "no probe named '\(name)'")
        }
        return try create(plugin: entry.plugin, kind: entry.kind, settings: settings ?? entry.settings, PluginProbe.init)
    }

    /// Loads an entry's plugin and creates the instance with the entry's settings.
    private func create<Instance>(plugin name: String, kind: String?, settings: JSONValue?,
                                  _ make: (LoadedPlugin, String?, PluginConfiguration) throws -> Instance) throws -> Instance {
        let plugin = try catalog.load(name)
        return try make(plugin, kind, PluginConfiguration(kind: kind ?? "", pluginDirectory: plugin.discovered.directory,
                                                          settings: settings ?? .object([:])))
    }

    /// The Python environment spec a toolchain plugin declares.
    public func environmentSpec(plugin name: String) throws -> PluginManifest.PythonSpec {
        let plugin = try catalog.discovered(name)
        guard let spec = plugin.manifest.provides.first(where: { $0.role == .toolchain && $0.environment != nil })?.environment?.python else {
            throw LabError.environment("plugin '\(name)' declares no Python environment (it needs none, or is not a toolchain)")
        }
        return spec
    }
}
