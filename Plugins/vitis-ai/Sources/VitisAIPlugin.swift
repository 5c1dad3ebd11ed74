import Foundation
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
        factories: [.toolchain("vitis-ai") { try PythonToolchain(name: "vitis-ai", configuration: imageConfiguration($0)) }])
}

/// The configuration with the image's interpreter (the `python` setting) as its
/// environment, and that setting removed from the ones PythonToolchain reads.
func imageConfiguration(_ configuration: PluginConfiguration) throws -> PluginConfiguration {
    guard case .object(var settings) = configuration.settings else { return configuration }
    guard let value = settings.removeValue(forKey: "python") else {
        if configuration.environment != nil { return configuration }
        throw PluginFailure(.invalidConfiguration, """
            toolchain 'vitis-ai' has no environment: Vitis AI is not on PyPI, so it cannot be installed with \
            `mlbench toolchains install`; set `python:` in its inventory settings to the interpreter of the \
            Vitis AI docker image (quantize, compile) or board image (run)
            """)
    }
    guard case .string(let python) = value, python.hasPrefix("/") else {
        throw PluginFailure(.invalidConfiguration, "setting 'python': expected the absolute path of the Vitis AI image's interpreter, got \(value)")
    }
    guard FileManager.default.isExecutableFile(atPath: python) else {
        throw PluginFailure(.invalidConfiguration, "setting 'python': \(python) is not an executable file; is this the Vitis AI image?")
    }
    var adjusted = configuration
    adjusted.settings = .object(settings)
    adjusted.environment = EnvironmentInfo(version: "image", root: URL(fileURLWithPath: python).deletingLastPathComponent().path, python: python)
    return adjusted
}
