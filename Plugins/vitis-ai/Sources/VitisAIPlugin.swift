import MLBenchCore
import MLBenchPluginKit

/// AMD Vitis AI quantizing and compiling ONNX models for a DPU, run through
/// VART. Vitis AI comes as a docker or board image, not from pip, so its
/// interpreter is named by the `python` setting instead of a managed
/// environment; the scripts in python/ then run as for any Python toolchain.
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "vitis-ai", version: "1.0.0",
        description: "AMD Vitis AI (vai_q_onnx/Quark, vai_c_xir, VART) for DPUs",
        factories: [.toolchain("vitis-ai") { configuration in
            // Said here rather than by PythonToolchain, whose advice (`toolchains install`) cannot work.
            if configuration.environment == nil, configuration.settings["python"] == nil {
                throw PluginFailure(.invalidConfiguration, """
                    toolchain 'vitis-ai' has no environment: Vitis AI is not on PyPI, so it cannot be installed with \
                    `mlbench toolchains install`; set `python:` in its inventory settings to the interpreter of the \
                    Vitis AI docker image (quantize, compile) or board image (run)
                    """)
            }
            return try PythonToolchain(name: "vitis-ai", configuration: configuration)
        }])
}
