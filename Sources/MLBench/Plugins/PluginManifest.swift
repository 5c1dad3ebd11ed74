import Foundation
import MLBenchCore

/// `plugin.yaml`: what a plugin is and provides, read without loading its code.
public struct PluginManifest: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var abiVersion: Int
    /// The shared object, relative to the manifest's folder.
    public var library: String
    public var description: String?
    public var requires: Requirements?
    public var provides: [Provision]

    enum CodingKeys: String, CodingKey {
        case name, version, library, description, requires, provides
        case abiVersion = "abi_version"
    }

    public struct Requirements: Codable, Sendable, Equatable {
        public var libraries: [String]?
    }

    public struct Provision: Codable, Sendable, Equatable {
        public var role: Role
        public var kind: String
        public var resetsItself: Bool?
        public var environment: EnvironmentSpec?
        /// The settings an inventory entry may give, each with a one-line meaning.
        public var settings: [String: String]?
        /// USB devices this kind drives: `vvvv:pppp` (hex) to a model name.
        public var usbDevices: [String: String]?
        /// True when this kind drives GPIO lines of a chip.
        public var gpioChips: Bool?

        enum CodingKeys: String, CodingKey {
            case role, kind, environment, settings
            case usbDevices = "usb_devices"
            case gpioChips = "gpio_chips"
            case resetsItself = "resets_itself"
        }
    }

    public struct EnvironmentSpec: Codable, Sendable, Equatable {
        public var python: PythonSpec
    }

    public struct PythonSpec: Codable, Sendable, Equatable {
        public var defaultVersion: String
        /// pip requirements; `{version}` stands for the version installed.
        public var packages: [String]

        enum CodingKeys: String, CodingKey {
            case packages
            case defaultVersion = "default_version"
        }
    }

    public static let fileName = "plugin.yaml"

    public static func load(_ path: String) throws -> PluginManifest {
        try YAMLDocument(contentsOf: path).decode(PluginManifest.self, schema: try Schemas.manifestValue())
    }
}
