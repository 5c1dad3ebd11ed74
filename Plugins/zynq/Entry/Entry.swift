import LinuxBoardKit
import MLBenchPluginKit
import ZynqBoard

// The plugin's one exported symbol; the board lives in the ZynqBoard module, which the tests link directly.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "zynq", version: "1.0.0",
        description: "Zynq UltraScale+ (ZCU102, ZCU104, KV260) with PetaLinux and Vitis AI, over SSH",
        factories: [.board("zynq") { try ZynqBoard($0) },
                    .probe("zynq-rails") { try BoardFilesProbe.rails($0, kind: "zynq", patterns: INA2xxRails.patterns, discover: INA2xxRails.channels) }])
}
