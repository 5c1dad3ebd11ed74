import Foundation
import MLBench
import MLBenchCore
import XCTest

/// An experiment on the TC3xx board plugin through the whole pipeline (`mlbench
/// run`): a stand-in TriCore toolchain (Tests/Fixtures/harness-toolchain) links the
/// harness and a model's C at TC397 addresses (for the memory table) and for the
/// host; a stand-in flasher boots the host build on a pseudo-terminal at the
/// board's UART path; the plugin drives it through the termios driver. The board's
/// supply is measured as on the bench, by an external meter: an INA226 on an FT232H
/// (the ina2xx probe plugin, through the real libftdi and libusb), emulated by
/// umockdev around the `mlbench run` process (Tests/USBEmulation, serve-ina226).
final class TC3xxEndToEndTests: XCTestCase {
    var home: URL!
    var oldProgram: ChildProcess?

    override func setUpWithError() throws { home = try MLBenchBinary.temporaryHome() }

    override func tearDown() {
        oldProgram?.terminate()
        _ = try? oldProgram?.wait(timeout: 5)
        TC3xxFixtures.stopBoard(pidFile: home.appendingPathComponent("harness.pid"))
        try? FileManager.default.removeItem(at: home)
    }

    func floats(_ rows: [[Float]]) -> Tensor {
        Tensor(shape: [rows.count, rows[0].count], dtype: "<f4", values: rows.flatMap { $0.map(Double.init) })
    }

    func testExperimentOnATC397StoresTimingsCountersAndTheMemoryTable() throws {
        let repository = MLBenchBinary.repository
        let fixture = repository.appendingPathComponent("Tests/Fixtures/harness-toolchain")
        // The stand-in toolchain, compiled as the plugin loader expects it.
        let plugin = home.appendingPathComponent("plugins/harness-c")
        try FileManager.default.createDirectory(at: plugin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("plugin.yaml"), to: plugin.appendingPathComponent("plugin.yaml"))
        let compile = try ChildProcess.run(["cc", "-shared", "-fPIC", "-I", repository.appendingPathComponent("Sources/CMLBenchPlugin/include").path,
                                            "-I", repository.appendingPathComponent("Tests/Fixtures/include").path,
                                            fixture.appendingPathComponent("harness_toolchain.c").path,
                                            "-o", plugin.appendingPathComponent("libmlbench-harness-c.so").path], timeout: 120)
        XCTAssertEqual(compile.status, 0, compile.stderr)

        // The board runs an older harness program when the experiment starts.
        let link = home.appendingPathComponent("ttyTC3").path
        oldProgram = try ChildProcess([try TC3xxFixtures.hostHarness().path, "--link", link])
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: link), Date() < deadline { usleep(10_000) }

        // The stand-in flasher: the host build beside the flashed ELF becomes the board's program.
        let flasher = home.appendingPathComponent("flash.sh")
        let pidFile = home.appendingPathComponent("harness.pid").path
        try """
            #!/bin/sh
            [ -f "$1" ] || { echo "flash.sh: no ELF at $1" >&2; exit 1; }
            [ -x "$(dirname "$1")/program-host" ] || { echo "flash.sh: no host build beside $1" >&2; exit 1; }
            [ -f '\(pidFile)' ] && kill "$(cat '\(pidFile)')" 2>/dev/null
            kill \(oldProgram!.pid) 2>/dev/null
            rm -f '\(link)'
            nohup "$(dirname "$1")/program-host" --link '\(link)' >/dev/null 2>&1 &
            echo $! > '\(pidFile)'
            for i in $(seq 50); do [ -e '\(link)' ] && exit 0; sleep 0.1; done
            echo "flash.sh: the board did not come up" >&2; exit 1
            """.write(to: flasher, atomically: true, encoding: .utf8)
        chmod(flasher.path, 0o755)

        let inventory = home.appendingPathComponent("lab.yaml")
        try """
            plugin_paths: [plugins]
            boards:
              tc397:
                plugin: tc3xx
                reset_timeout_s: 3
                settings:
                  name: tc397
                  device: \(link)
                  memory_map: tc397
                  flasher: [\(flasher.path), "{elf}"]
                  work_root: \(home.appendingPathComponent("work").path)
                  reply_timeout_s: 5
                  transcript: \(home.appendingPathComponent("uart.log").path)
            probes:
              tc397-supply:
                plugin: ina2xx
                board: tc397
                settings: {serial: FT232HTC, address: 64, shunt_ohms: 0.1, current_lsb: 0.0001, conversion_time_us: 140}
            toolchains:
              harness-c:
                plugin: harness-c
                settings:
                  harness: \(repository.appendingPathComponent("Plugins/tc3xx/harness").path)
                  linker_script: \(repository.appendingPathComponent("Tests/Fixtures/tc3xx-elf/tc397.ld").path)
            """.write(to: inventory, atomically: true, encoding: .utf8)

        // Inputs 0, e3, 2·e3, -e3: the dense layer gives bias + k × its fourth weight column, exactly.
        let e3: [Float] = [0, 0, 0, 1, 0, 0, 0, 0]
        try NPY.write(floats([[Float](repeating: 0, count: 8), e3, e3.map { 2 * $0 }, e3.map { -$0 }]),
                      to: home.appendingPathComponent("inputs.npy"))
        let bias: [Float] = [0.1, -0.2, 0.3, 0.0], column: [Float] = [1.0, -0.125, 0.0, 0.5]
        try NPY.write(floats([0, 1, 2, -1].map { k in zip(bias, column).map { $0 + Float(k) * $1 } }),
                      to: home.appendingPathComponent("reference.npy"))
        let experiment = home.appendingPathComponent("tc397.yaml")
        try """
            name: dense-on-tc397
            model: \(repository.appendingPathComponent("Plugins/tc3xx/harness/model_dense.c").path)
            inputs: {x: \(home.appendingPathComponent("inputs.npy").path)}
            reference: {outputs: {y: \(home.appendingPathComponent("reference.npy").path)}}
            toolchain: {name: harness-c, target: tc397, options: {description: \(fixture.appendingPathComponent("model_dense.json").path)}}
            board: tc397
            measurement: {min_iterations: 50, min_time_s: 0.2, max_time_s: 2, max_warmup_iterations: 200, canary: false}
            semantic_preservation: {metric: max_abs, threshold: 1.0e-6}
            """.write(to: experiment, atomically: true, encoding: .utf8)

        // The meter: an emulated FT232H + INA226 that the mlbench process (and nothing else) sees.
        let emulation = MLBenchBinary.executable.deletingLastPathComponent().appendingPathComponent("mlbench-usb-emulation").path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: emulation), "\(emulation) is not built (swift build --build-tests builds it)")
        let wrapper = try XCTUnwrap(["/usr/bin/umockdev-wrapper", "/usr/local/bin/umockdev-wrapper"].first(where: FileManager.default.isExecutableFile),
                                    "umockdev-wrapper is missing: install the Debian package umockdev (scripts/setup does)")
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", "--inventory", inventory.path, experiment.path], home: home,
                                            through: [wrapper, emulation, "serve-ina226"])
        let result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        XCTAssertEqual(result.status, .succeeded, "\(result.failure?.stage ?? ""): \(result.failure?.reason ?? "")\n\(outcome.stderr.suffix(3000))")
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0, "the outputs came back over the UART bit for bit")
        XCTAssertGreaterThanOrEqual(result.measurement?.durationsNs.count ?? 0, 50)
        XCTAssertTrue(result.measurement?.durationsNs.allSatisfy { $0 % 1000 == 0 } == true, "per-inference µs from the board's timer")

        // The memory table of the flashed program, in the stored description.
        let memories = Dictionary(uniqueKeysWithValues: (result.board?.description?.memories ?? []).map { ($0.name, $0) })
        XCTAssertEqual(memories.count, 19, "every TC397 memory is listed")
        XCTAssertGreaterThan(memories["DSPR0"]?.usedBytes ?? 0, 8192, "the harness buffers are in DSPR0")
        XCTAssertGreaterThan(memories["PFlash"]?.usedBytes ?? 0, 0, "code and constants are in PFlash")
        XCTAssertEqual(memories["LMU"]?.usedBytes, 0)
        XCTAssertEqual(result.board?.description?.architecture, "tricore")

        // Conditions: nothing is controllable on a TC3xx; what it is running is observed before the run.
        let conditions = try XCTUnwrap(result.board?.conditions)
        XCTAssertEqual(conditions.applied, [:])
        XCTAssertEqual(conditions.observed["memory_map"], "tc397")
        XCTAssertEqual(conditions.observed["device"], link)
        XCTAssertNotNil(conditions.observed["harness_timer"], "the harness answered its profile: \(conditions.observed)")

        // Counters of the last measured batch, observed after the run: cycles where the port has them.
        let after = try XCTUnwrap(result.board?.conditionsAfter?.observed)
        XCTAssertEqual(after["counter_icnt_per_inference"], "not available", "the host port has no instruction counter")
        #if arch(x86_64)
        XCTAssertGreaterThan(Double(after["counter_ccnt_per_inference"] ?? "") ?? 0, 0)
        #endif
        XCTAssertEqual(after["memory_DSPR0_used_bytes"].flatMap(UInt64.init), memories["DSPR0"]?.usedBytes)
        XCTAssertTrue(((try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("work").path)) ?? []).isEmpty,
                      "the deployment is removed")
        XCTAssertTrue(try String(contentsOf: home.appendingPathComponent("uart.log"), encoding: .utf8).contains("> infer "))

        // The supply meter's series, through warm-up and measurement, on the iterations' timeline.
        let supply = try XCTUnwrap(result.probes?.first { $0.name == "tc397-supply" }, "\(result.probes?.map(\.name) ?? [])")
        XCTAssertNil(supply.failure, supply.failure ?? "")
        XCTAssertEqual(supply.channels.map(\.name), ["bus_voltage", "shunt_voltage", "current", "power"])
        let power = supply.samples.filter { $0.channel == 3 }
        XCTAssertGreaterThan(power.count, 10)
        // 2.5 mV across 0.1 Ω at 12.0 V: 0.3 W, in the INA226's 2.5 mW steps.
        XCTAssertTrue(power.allSatisfy { abs($0.value - 0.3) < 1e-9 }, "\(power.prefix(3))")
        let times = supply.samples.map(\.timestampNs)
        XCTAssertEqual(times, times.sorted())
        XCTAssertTrue(times.allSatisfy { $0 >= supply.startedNs && $0 <= supply.stoppedNs }, "samples inside the recording")
        let measurement = try XCTUnwrap(result.measurement)
        let window = (measurement.startsNs.min()!, zip(measurement.startsNs, measurement.durationsNs).map { $0 + $1 }.max()!)
        XCTAssertLessThanOrEqual(power.first!.timestampNs, window.0, "the meter was sampling before the first measured iteration")
        XCTAssertGreaterThanOrEqual(power.last!.timestampNs, window.1, "and after the last")
        XCTAssertGreaterThan(power.filter { $0.timestampNs >= window.0 && $0.timestampNs <= window.1 }.count, 0, "samples inside the measurement window")
        // Every measured iteration lies within the samples: energy per inference for each.
        let energy = try XCTUnwrap(result.energy?.first { $0.probe == "tc397-supply" && $0.channel == "power" })
        XCTAssertEqual(energy.iterations, measurement.durationsNs.count)
        XCTAssertEqual(energy.uncoveredIterations, 0, "\(supply.sampling?.last?.note ?? "")")
        XCTAssertEqual(try XCTUnwrap(energy.meanPowerW), 0.3, accuracy: 1e-9)
    }
}
