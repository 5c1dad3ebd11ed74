import Foundation
import MLBenchPluginKit

/// What the toolchain says about the model it linked into the harness, deployed
/// beside the ELF as `harness-model.json`: the harness itself only knows byte
/// counts, the lab needs names, element types and shapes.
///
/// ```json
/// {"inputs": [{"name": "x", "dtype": "<f4", "shape": [8]}],
///  "outputs": [{"name": "y", "dtype": "<f4", "shape": [4]}]}
/// ```
struct HarnessModel: Decodable {
    struct TensorSpec: Decodable {
        var name: String
        /// A NumPy dtype: `<f4`, `<f8`, `|i1`, `|u1`, `<i2`, `<i4`.
        var dtype: String
        /// Per sample, without the leading sample axis.
        var shape: [Int]

        var elementCount: Int { shape.reduce(1, *) }
        var byteCount: Int { elementCount * (HarnessBytes.width(dtype) ?? 0) }
    }

    var inputs: [TensorSpec]
    var outputs: [TensorSpec]

    static let fileName = "harness-model.json"
}

/// Tensor elements as the little-endian bytes a TriCore program reads and writes.
enum HarnessBytes {
    static func width(_ dtype: String) -> Int? {
        ["<f4": 4, "<f8": 8, "|i1": 1, "|u1": 1, "<i2": 2, "<i4": 4][dtype]
    }

    static func encode(_ values: ArraySlice<Double>, dtype: String) -> [UInt8] {
        var bytes = [UInt8]()
        for value in values {
            switch dtype {
            case "<f4": bytes += withUnsafeBytes(of: Float(value).bitPattern.littleEndian, Array.init)
            case "<f8": bytes += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
            case "|i1": bytes.append(UInt8(bitPattern: Int8(value)))
            case "|u1": bytes.append(UInt8(value))
            case "<i2": bytes += withUnsafeBytes(of: Int16(value).littleEndian, Array.init)
            default: bytes += withUnsafeBytes(of: Int32(value).littleEndian, Array.init)
            }
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8], dtype: String) -> [Double] {
        let step = width(dtype) ?? 1
        return stride(from: 0, to: bytes.count - step + 1, by: step).map { offset in
            var word: UInt64 = 0
            for i in 0..<step { word |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
            switch dtype {
            case "<f4": return Double(Float(bitPattern: UInt32(word)))
            case "<f8": return Double(bitPattern: word)
            case "|i1": return Double(Int8(bitPattern: UInt8(word)))
            case "|u1": return Double(word)
            case "<i2": return Double(Int16(bitPattern: UInt16(word)))
            default: return Double(Int32(bitPattern: UInt32(word)))
            }
        }
    }
}

/// The runner wire protocol (load, run, outputs, quit) on top of the UART
/// harness: the board plugin plays the runner, the harness does the work.
final class HarnessRunner {
    let harness: UARTHarness
    let directory: URL
    let model: HarnessModel
    let profile: HarnessProfile
    /// Static RAM of the flashed program: what the board's memory can tell of a "peak".
    let ramBytes: Int64
    private var samples: [[UInt8]] = []
    private var loadedSample: Int?
    /// Counter sums of the last `run`, for the conditions observed after the run.
    private(set) var lastCounters: [String: UInt64?] = [:]
    private(set) var countedInferences = 0

    init(harness: UARTHarness, directory: URL, ramBytes: Int64) throws {
        self.harness = harness
        self.directory = directory
        self.ramBytes = ramBytes
        let file = directory.appendingPathComponent(HarnessModel.fileName)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw PluginFailure(.invalidRequest, "the deployment has no \(HarnessModel.fileName) (the toolchain writes it beside the ELF)")
        }
        do {
            model = try JSONDecoder().decode(HarnessModel.self, from: data)
        } catch {
            throw PluginFailure(.invalidRequest, "\(HarnessModel.fileName): \(error)")
        }
        guard model.inputs.count == 1, let input = model.inputs.first, let output = model.outputs.first, model.outputs.count == 1 else {
            throw PluginFailure(.invalidRequest, "\(HarnessModel.fileName): the harness takes one input and gives one output")
        }
        for spec in model.inputs + model.outputs where HarnessBytes.width(spec.dtype) == nil {
            throw PluginFailure(.invalidRequest, "\(HarnessModel.fileName): dtype '\(spec.dtype)' of '\(spec.name)' is not one of <f4 <f8 |i1 |u1 <i2 <i4")
        }
        do { profile = try harness.profile() } catch let failure as TransportFailure { throw failure.pluginFailure }
        guard profile.inputBytes == input.byteCount, profile.outputBytes == output.byteCount else {
            throw PluginFailure(.invalidRequest, "the flashed harness takes \(profile.inputBytes) and gives \(profile.outputBytes) bytes, \(HarnessModel.fileName) says \(input.byteCount) and \(output.byteCount)")
        }
    }

    var greeting: String {
        (try? JSONCoding.encode(RunnerGreeting(protocolVersion: RunnerProtocol.version, runtime: "uart-harness",
                                               runtimeVersion: "\(profile.profile) \(profile.model)"))) ?? "{}"
    }

    /// One request line → one reply line; a refusal is a reply with `ok: false`, as runners answer.
    func handle(_ line: String) -> String {
        do {
            let command = try JSONCoding.decode(RunnerCommand.self, from: line)
            switch command.op {
            case "load": return try load(command)
            case "run": return try run(command)
            case "outputs": return try outputs(command)
            case "quit": return #"{"ok":true}"#
            // The clock the starts are taken on (the host's: the harness sends only laps).
            case "clock": return try JSONCoding.encode(Clock(nowNs: monotonicNanoseconds()))
            default: throw PluginFailure(.invalidRequest, "unknown op '\(command.op)'")
            }
        } catch {
            let reason = (error as? TransportFailure).map { "\($0)" } ?? (error as? PluginFailure)?.message ?? "\(error)"
            return (try? JSONCoding.encode(Refusal(ok: false, error: reason))) ?? #"{"ok":false}"#
        }
    }

    private struct Refusal: Encodable { var ok: Bool; var error: String }
    private struct Clock: Encodable { var ok = true; var nowNs: Int64 }
    private struct Loaded: Encodable { var ok = true; var samples: Int; var loadNs: Int64 }
    private struct Timings: Encodable {
        var ok = true; var startsNs: [Int64]; var durationsNs: [Int64]; var peakMemoryBytes: Int64
        // `db load` puts the sample in the harness's RAM before `infer` times anything.
        var inputPlacement = InputPlacement.device
        var inputPlacementDetail = "the harness's input buffer in RAM, loaded by db load before infer"
    }
    private struct Outputs: Encodable { var ok = true; var outputs: [String: String]; var order: [String] }

    private func load(_ command: RunnerCommand) throws -> String {
        let spec = model.inputs[0]
        guard let file = command.inputs?[spec.name] ?? (command.inputs?.count == 1 ? command.inputs?.values.first : nil) else {
            throw PluginFailure(.invalidRequest, "load: no input named '\(spec.name)' (given: \((command.inputs ?? [:]).keys.sorted().joined(separator: ", ")))")
        }
        try PlainFileName.check(file, step: "load")
        let began = monotonicNanoseconds()
        let tensor = try NPY.read(contentsOf: directory.appendingPathComponent(file))
        guard tensor.shape.count >= 1, tensor.elementCount / max(tensor.shape[0], 1) == spec.elementCount else {
            throw PluginFailure(.invalidRequest, "load: \(file) has shape \(tensor.shape); the model takes samples of shape \(spec.shape)")
        }
        let per = spec.elementCount
        samples = (0..<tensor.shape[0]).map { HarnessBytes.encode(tensor.values[($0 * per)..<(($0 + 1) * per)], dtype: spec.dtype) }
        loadedSample = nil
        try select(0)
        return try JSONCoding.encode(Loaded(samples: samples.count, loadNs: monotonicNanoseconds() - began))
    }

    private func select(_ sample: Int) throws {
        guard samples.indices.contains(sample) else {
            throw PluginFailure(.invalidRequest, "sample \(sample) does not exist (\(samples.count) loaded)")
        }
        if loadedSample != sample {
            try harness.load(samples[sample])
            loadedSample = sample
        }
    }

    /// The board times each inference with its own timer (µs); the starts are the
    /// host's monotonic clock at the request plus the laps before (the harness does
    /// not send its timer's start values).
    private func run(_ command: RunnerCommand) throws -> String {
        let iterations = command.iterations ?? 1
        guard iterations > 0 else { throw PluginFailure(.invalidRequest, "run: iterations must be positive") }
        try select(command.sample ?? 0)
        let began = monotonicNanoseconds()
        let result = try harness.infer(iterations)
        lastCounters = result.counters
        countedInferences = iterations
        let durations = result.lapsUs.map { Int64($0) * 1000 }
        var starts = [Int64]()
        var clock = began
        for duration in durations {
            starts.append(clock)
            clock += duration
        }
        return try JSONCoding.encode(Timings(startsNs: starts, durationsNs: durations, peakMemoryBytes: ramBytes))
    }

    /// Every sample once; the raw output bytes become `DIR/<output>.npy`, samples stacked.
    private func outputs(_ command: RunnerCommand) throws -> String {
        let spec = model.outputs[0]
        let folder = directory.appendingPathComponent(command.directory ?? "outputs")
        guard folder.standardizedFileURL.path.hasPrefix(directory.standardizedFileURL.path + "/") else {
            throw PluginFailure(.invalidRequest, "outputs: '\(command.directory ?? "")' is outside the deployment")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var values = [Double]()
        for sample in samples.indices {
            try select(sample)
            _ = try harness.infer(1)
            let bytes = try harness.results()
            guard bytes.count == spec.byteCount else {
                throw PluginFailure(.device, "results: \(bytes.count) bytes, the model gives \(spec.byteCount)")
            }
            values += HarnessBytes.decode(bytes, dtype: spec.dtype)
        }
        let name = "\(spec.name).npy"
        try NPY.write(Tensor(shape: [samples.count] + spec.shape, dtype: spec.dtype, values: values), to: folder.appendingPathComponent(name))
        return try JSONCoding.encode(Outputs(outputs: [spec.name: name], order: [spec.name]))
    }
}
