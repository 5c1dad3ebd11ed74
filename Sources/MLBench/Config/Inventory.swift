import Foundation
import MLBenchCore

/// The lab inventory: which boards exist, through which plugin each is driven,
/// how each is reset (a power switch outlet), the probes and the toolchains.
public struct Inventory: Codable, Sendable, Equatable {
    /// Extra folders to search for plugins, before the default ones.
    public var pluginPaths: [String]?
    public var boards: [String: BoardEntry]
    public var powerSwitches: [String: PluginEntry]?
    public var probes: [String: ProbeEntry]?
    public var toolchains: [String: ToolchainEntry]
    /// The MLflow tracking server results are exported to (`mlbench results mlflow`).
    public var mlflow: MLflowSettings? = nil

    enum CodingKeys: String, CodingKey {
        case pluginPaths = "plugin_paths", boards
        case powerSwitches = "power_switches", probes, toolchains, mlflow
    }

    public struct MLflowSettings: Codable, Sendable, Equatable {
        /// The tracking server's base URL (http://host:5000); credentials come from the
        /// environment (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD), never from this file.
        public var trackingURI: String?
        /// The MLflow experiment runs are logged to (created when missing).
        public var experiment: String?

        enum CodingKeys: String, CodingKey {
            case trackingURI = "tracking_uri", experiment
        }
    }

    public struct PluginEntry: Codable, Sendable, Equatable {
        public var plugin: String
        /// The factory kind, when the plugin provides several of this role.
        public var kind: String?
        public var settings: JSONValue?
    }

    public struct BoardEntry: Codable, Sendable, Equatable {
        public var plugin: String
        public var kind: String?
        public var settings: JSONValue?
        public var power: PowerOutlet?
        /// How long the board may take to be ready after a reset.
        public var resetTimeoutS: Double?

        enum CodingKeys: String, CodingKey {
            case plugin, kind, settings, power
            case resetTimeoutS = "reset_timeout_s"
        }
    }

    public struct PowerOutlet: Codable, Sendable, Equatable {
        /// The inventory name of the power switch.
        public var `switch`: String
        public var outlet: String
        /// How long the outlet stays off during a power cycle.
        public var offTimeS: Double?

        enum CodingKeys: String, CodingKey {
            case `switch`, outlet
            case offTimeS = "off_time_s"
        }
    }

    public struct ProbeEntry: Codable, Sendable, Equatable {
        public var plugin: String
        public var kind: String?
        public var settings: JSONValue?
        /// The board whose quantities the probe measures.
        public var board: String?
    }

    public struct ToolchainEntry: Codable, Sendable, Equatable {
        public var plugin: String
        public var kind: String?
        public var settings: JSONValue?
    }

    /// The inventory used when none is given: the host board and the
    /// toolchains that ship with mlbench.
    public static let embeddedDefault = Inventory(
        pluginPaths: nil,
        boards: ["host": BoardEntry(plugin: "host", kind: nil, settings: nil, power: nil, resetTimeoutS: nil)],
        powerSwitches: nil, probes: nil,
        toolchains: ["onnxruntime": ToolchainEntry(plugin: "onnxruntime", kind: nil, settings: nil),
                     "tvm": ToolchainEntry(plugin: "tvm", kind: nil, settings: nil),
                     "tflite": ToolchainEntry(plugin: "tflite", kind: nil, settings: nil)])
}

/// An inventory as loaded from its file.
public struct InventoryFile: Sendable {
    /// The file, or "(embedded default)".
    public var path: String
    public var inventory: Inventory
    let document: YAMLDocument?

    public static let embeddedDefault = InventoryFile(path: "(embedded default)", inventory: .embeddedDefault, document: nil)

    public static func load(_ path: String) throws -> InventoryFile {
        let document = try YAMLDocument(contentsOf: path)
        let inventory = try document.decode(Inventory.self, schema: try Schemas.inventoryValue())
        return InventoryFile(path: path, inventory: inventory, document: document)
    }

    /// A problem at `path` in this inventory, with its line when known.
    public func error(at path: [String], _ message: String) -> ConfigurationError {
        document?.error(at: path, message) ?? ConfigurationError(file: self.path, field: path.joined(separator: "."), message: message)
    }

    /// Plugin search folders the inventory adds, resolved against its folder.
    public var pluginPaths: [String] {
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        return (inventory.pluginPaths ?? []).map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).standardizedFileURL.path }
    }
}
