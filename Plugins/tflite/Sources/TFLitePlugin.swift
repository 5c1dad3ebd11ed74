import MLBenchPluginKit

/// TFLite/LiteRT: converts ONNX (through onnx2tf), SavedModel and Keras models
/// to .tflite in float32, float16 or int8 and runs them with LiteRT. Its checks,
/// builds and runner are the Python scripts in python/, run in its managed environment.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "tflite", version: "1.0.0",
        description: "TFLite/LiteRT (CPU), float32, float16 and int8 post-training quantization",
        factories: [.toolchain("tflite") { try PythonToolchain(name: "tflite", configuration: $0) }])
}
