import Foundation
import MLBenchCore

/// A toolchain driven by Python scripts in its plugin folder, run with the
/// interpreter of its managed environment:
///
/// - `python/toolchain.py info|check|build ...` prints one JSON line (its last
///   line of output) and exits 0, or exits non-zero with the reason on stderr;
/// - `python/runner.py` is the runner, deployed with `mlbench_runner.py` and the
///   plugin's other modules (every `python/*.py` but `toolchain.py`) beside it.
///
/// Most toolchains with a Python API (TVM, ONNX Runtime, LiteRT, ...) need no
/// more Swift than a factory that makes one of these.
public final class PythonToolchain: Toolchain, @unchecked Sendable {
    public let name: String
    private let python: String
    private let scripts: URL
    private let buildTimeout: Double

    struct Settings: Decodable {
        var buildTimeoutS: Double?
        /// An interpreter the operator names instead of a managed environment, for
        /// toolchains pip cannot install: the Vitis AI image, JetPack's TensorRT.
        var python: String?
    }

    public init(name: String, configuration: PluginConfiguration) throws {
        self.name = name
        let settings = try configuration.decodeSettings(Settings.self, known: ["build_timeout_s", "python"])
        if let given = settings.python {
            guard given.hasPrefix("/") else {
                throw PluginFailure(.invalidConfiguration, "setting 'python': expected the absolute path of an interpreter, got '\(given)'")
            }
            guard FileManager.default.isExecutableFile(atPath: given) else {
                throw PluginFailure(.invalidConfiguration, "setting 'python': \(given) is not an executable file")
            }
            python = given
        } else if let environment = configuration.environment {
            guard FileManager.default.isExecutableFile(atPath: environment.python) else {
                throw PluginFailure(.invalidConfiguration,
                                    "toolchain '\(name)' \(environment.version): interpreter \(environment.python) is missing; reinstall with `mlbench toolchains install \(name) --version \(environment.version)`")
            }
            python = environment.python
        } else {
            throw PluginFailure(.invalidConfiguration,
                                "toolchain '\(name)' has no environment; install one with `mlbench toolchains install \(name)`, or name an interpreter that has it with the setting `python:`")
        }
        scripts = URL(fileURLWithPath: configuration.pluginDirectory).appendingPathComponent("python")
        buildTimeout = settings.buildTimeoutS ?? 1800
    }

    public func describe() throws -> ToolchainDescription {
        try invoke(["info"], timeout: 120)
    }

    public func check(_ request: CompatibilityRequest) throws -> CompatibilityReport {
        try invoke(["check", "--model", request.model, "--target", request.target,
                    "--options", JSONCoding.encode(request.options)], timeout: 600)
    }

    public func build(_ request: BuildRequest) throws -> BuildResult {
        struct Built: Decodable {
            var artifact: String
            var effectiveOptions: JSONValue?
        }
        var arguments = ["build", "--model", request.model, "--target", request.target,
                         "--options", try JSONCoding.encode(request.options), "--output-dir", request.outputDirectory]
        if let calibration = request.calibrationInputs {
            arguments += ["--calibration-inputs", try JSONCoding.encode(calibration)]
        }
        let (built, log): (Built, String) = try invokeWithLog(arguments, timeout: buildTimeout)
        return BuildResult(artifact: built.artifact, log: log, effectiveOptions: built.effectiveOptions ?? .object([:]))
    }

    public func runner(_ request: RunnerRequest) throws -> RunnerSpec {
        // Helper modules the runner imports (parsers, device memory) travel with it;
        // the build script stays behind. Sorted, so the deployment is the same every time.
        let modules = ((try? FileManager.default.contentsOfDirectory(atPath: scripts.path)) ?? [])
            .filter { $0.hasSuffix(".py") && $0 != "toolchain.py" && $0 != "runner.py" && $0 != "mlbench_runner.py" }
            .sorted()
        return RunnerSpec(command: [python, "-u", "runner.py"],
                          environment: ["PYTHONDONTWRITEBYTECODE": "1"],
                          files: (["runner.py", "mlbench_runner.py"] + modules).map { scripts.appendingPathComponent($0).path })
    }

    private func invoke<T: Decodable>(_ arguments: [String], timeout: Double) throws -> T {
        try invokeWithLog(arguments, timeout: timeout).0
    }

    private func invokeWithLog<T: Decodable>(_ arguments: [String], timeout: Double) throws -> (T, String) {
        let command = [python, scripts.appendingPathComponent("toolchain.py").path] + arguments
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(command, environment: ["PYTHONDONTWRITEBYTECODE": "1"], timeout: timeout)
        } catch let error as ChildProcessError where error.kind == .timedOut {
            throw PluginFailure(.timeout, "\(name) \(arguments[0]): \(error)")
        } catch {
            throw PluginFailure(.failed, "\(name) \(arguments[0]): \(error)")
        }
        guard result.status == 0 else {
            let reason = result.stderr.split(separator: "\n").last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
            throw PluginFailure(.failed, "\(name) \(arguments[0]) failed (status \(result.status)): \(reason.map(String.init) ?? "no message")")
        }
        guard let line = result.stdout.split(separator: "\n").last else {
            throw PluginFailure(.failed, "\(name) \(arguments[0]) printed no result")
        }
        do {
            return (try JSONCoding.decode(T.self, from: String(line)), result.stderr)
        } catch {
            throw PluginFailure(.failed, "\(name) \(arguments[0]) printed an unreadable result '\(line.prefix(200))': \(error)")
        }
    }
}
