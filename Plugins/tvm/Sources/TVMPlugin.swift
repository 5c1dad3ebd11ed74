import MLBenchPluginKit

/// Apache TVM (Relax) compiling ONNX models for the LLVM CPU target. Its
/// checks, builds and runner are the Python scripts in python/, run in its
/// managed environment.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "tvm", version: "1.0.0",
        description: "Apache TVM (Relax), LLVM CPU target",
        factories: [.toolchain("tvm") { try PythonToolchain(name: "tvm", configuration: $0) }])
}
