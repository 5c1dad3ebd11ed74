import Foundation
import MLBenchCore

/// `mlbench lab check`: every inventory entry resolved against the plugins,
/// and every instance actually created, so that bad settings are found by
/// the plugin that reads them.
public struct LabCheck {
    public struct Finding: Sendable, Equatable, CustomStringConvertible {
        public var entry: String
        public var problem: String
        public var description: String { "\(entry): \(problem)" }
    }

    public static func run(_ lab: Lab) -> [Finding] {
        var findings = [Finding]()
        let inventory = lab.inventory.inventory
        func note(_ path: [String], _ problem: String) {
            let located = lab.inventory.error(at: path, problem)
            let location = [located.file, located.line.map(String.init)].compactMap { $0 }.joined(separator: ":")
            findings.append(Finding(entry: "\(location) \(path.joined(separator: "."))", problem: problem))
        }

        for (name, entry) in inventory.boards.sorted(by: { $0.key < $1.key }) {
            let path = ["boards", name]
            do {
                let plugin = try lab.catalog.load(entry.plugin)
                let provision = plugin.discovered.manifest.provides.first { $0.role == .board && (entry.kind == nil || $0.kind == entry.kind) }
                if let power = entry.power {
                    if inventory.powerSwitches?[power.switch] == nil {
                        note(path + ["power", "switch"], "no power switch named '\(power.switch)' in power_switches")
                    }
                } else if provision?.resetsItself != true {
                    note(path, "has no way to reset it: give it a power switch outlet (power: {switch, outlet}), or use a board plugin that resets itself")
                }
                _ = try lab.board(name)
            } catch {
                note(path, "\(error)")
            }
        }
        for (name, entry) in (inventory.powerSwitches ?? [:]).sorted(by: { $0.key < $1.key }) {
            do {
                let outlets = try lab.powerSwitch(name).describe().outlets
                for (board, boardEntry) in inventory.boards where boardEntry.power?.switch == name {
                    if let outlet = boardEntry.power?.outlet, !outlets.contains(outlet) {
                        note(["boards", board, "power", "outlet"], "power switch '\(name)' has no outlet '\(outlet)' (it has: \(outlets.joined(separator: ", ")))")
                    }
                }
            } catch {
                note(["power_switches", name], "\(error) (plugin \(entry.plugin))")
            }
        }
        for (name, entry) in (inventory.probes ?? [:]).sorted(by: { $0.key < $1.key }) {
            do {
                let plugin = try lab.catalog.load(entry.plugin)
                _ = try PluginProbe(plugin: plugin, kind: entry.kind, configuration: PluginConfiguration(
                    kind: entry.kind ?? "", pluginDirectory: plugin.discovered.directory, settings: entry.settings ?? .object([:])))
                if let board = entry.board, inventory.boards[board] == nil {
                    note(["probes", name, "board"], "no board named '\(board)'")
                }
            } catch {
                note(["probes", name], "\(error)")
            }
        }
        for (name, entry) in inventory.toolchains.sorted(by: { $0.key < $1.key }) {
            do {
                let plugin = try lab.catalog.load(entry.plugin)
                _ = try plugin.factory(role: .toolchain, kind: entry.kind)
                if lab.environments.installed(entry.plugin).isEmpty, entry.settings?["python"] == nil,
                   plugin.discovered.manifest.provides.contains(where: { $0.environment != nil }) {
                    note(["toolchains", name], "no environment installed yet (run `mlbench toolchains install \(entry.plugin)`)")
                } else {
                    _ = try lab.toolchain(name, version: nil)
                }
            } catch {
                note(["toolchains", name], "\(error)")
            }
        }
        return findings
    }
}
