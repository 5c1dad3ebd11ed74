import MLBenchPluginKit

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "fnirsi", version: "1.0.0",
        description: "FNIRSI USB power meters (FNB48, C1, FNB48S, FNB58) over libusb: V, A, W, °C at 100 S/s",
        factories: [.probe("fnirsi") { try FNIRSIMeter($0) }])
}
