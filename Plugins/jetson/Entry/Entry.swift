import JetsonBoard
import LinuxBoardKit
import MLBenchPluginKit

// The plugin's one exported symbol; the board itself lives in the JetsonBoard
// module, which the tests link directly.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "jetson", version: "1.0.0",
        description: "NVIDIA Jetson (Nano, Xavier, Orin; JetPack 4-6) over SSH",
        factories: [.board("jetson") { try JetsonBoard($0) },
                    .probe("jetson-rails") { try BoardFilesProbe.rails($0, kind: "jetson", patterns: INA3221Rails.patterns, discover: INA3221Rails.channels) },
                    .probe("jetson-thermal") { try BoardFilesProbe.thermal($0, kind: "jetson") },
                    .probe("jetson-tegrastats") { try TegraStatsProbe($0) }])
}
