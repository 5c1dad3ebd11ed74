import MLBenchPluginKit

/// NVIDIA TensorRT building engines from ONNX models for the GPU it runs on.
/// Its checks, builds and runner are the Python scripts in python/, run in its
/// managed environment (the tensorrt wheel, or trtexec on PATH).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "tensorrt", version: "1.0.0",
        description: "NVIDIA TensorRT (engine build with fp32/fp16/int8), CUDA GPUs and Jetson",
        factories: [.toolchain("tensorrt") { try PythonToolchain(name: "tensorrt", configuration: $0) }])
}
