import MLBenchPluginKit
import TC3xxBoard

// The plugin's one exported symbol; the board lives in the TC3xxBoard module, which the tests link directly.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "tc3xx", version: "1.0.0",
        description: "AURIX TC3xx (TC375 Lite Kit, TC397 TriBoard), bare metal, over a UART harness",
        factories: [.board("tc3xx") { try TC3xxBoard($0) }])
}
