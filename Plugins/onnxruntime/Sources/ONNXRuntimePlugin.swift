import MLBenchPluginKit

/// ONNX Runtime on the CPU: the reference toolchain. Its checks, builds and
/// runner are the Python scripts in python/, run in its managed environment.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "onnxruntime", version: "1.0.0",
        description: "ONNX Runtime (CPU), the reference toolchain",
        factories: [.toolchain("onnxruntime") { try PythonToolchain(name: "onnxruntime", configuration: $0) }])
}
