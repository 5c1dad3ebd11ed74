import Foundation
import MLBench
import JetsonBoard
import LinuxBoardKit
import MLBenchCore
import MLBenchPluginKit
import XCTest

/// An experiment on the Jetson board plugin through the whole pipeline (`mlbench
/// run`), over a real SSH connection to a stand-in board: the recorded AGX Orin
/// of Tests/Fixtures/jetson-agx-orin (sysfs files; nvpmodel, jetson_clocks and
/// tegrastats as stand-in scripts).
final class JetsonEndToEndTests: XCTestCase {
    var board: StandInBoard!

    override func setUpWithError() throws { board = try StandInBoard(fixture: "jetson-agx-orin") }
    override func tearDown() { board?.remove() }

    func testExperimentOnJetsonRecordsAppliesAndRestoresConditions() throws {
        let (outcome, result) = try board.run(inventory: try board.inventory(plugin: "jetson", board: "orin", probe: "jetson-rails",
                                                                                 probes: ["jetson-thermal", "jetson-tegrastats"]),
                                              experiment: try board.experiment(board: "orin", #"conditions: {nvpmodel: "2", jetson_clocks: "true", governor: performance}"#))
        XCTAssertEqual(result.status, .succeeded, "\(result.failure?.stage ?? ""): \(result.failure?.reason ?? "")\n\(outcome.stderr.suffix(3000))")
        XCTAssertEqual(result.semanticPreservation?.ratio, 1.0)
        XCTAssertGreaterThanOrEqual(result.measurement?.durationsNs.count ?? 0, 50)

        // The descriptor, from the board's files.
        let description = try XCTUnwrap(result.board?.description)
        XCTAssertEqual(description.name, "NVIDIA Jetson AGX Orin Developer Kit")
        XCTAssertEqual(description.memories.first?.name, "ram")
        XCTAssertEqual(description.memories.first?.sizeBytes, 31_268_700 * 1024)
        XCTAssertEqual(description.accelerators, ["gpu", "dla0", "dla1"])
        XCTAssertEqual(description.conditions, ["nvpmodel", "jetson_clocks", "governor"])
        XCTAssertEqual(description.runners?.contains("onnxruntime"), true)

        // Applied, with the state before; observed from sysfs, the rails and tegrastats.
        let conditions = try XCTUnwrap(result.board?.conditions)
        XCTAssertEqual(conditions.applied["nvpmodel"], "2 (MODE_30W)")
        XCTAssertEqual(conditions.applied["jetson_clocks"], "true")
        XCTAssertEqual(conditions.applied["governor"], "performance")
        XCTAssertEqual(conditions.before?["nvpmodel"], "0")
        XCTAssertEqual(conditions.before?["governor"], "schedutil")
        XCTAssertEqual(conditions.observed["nvpmodel"], "2 (MODE_30W)", "observed after applying")
        XCTAssertEqual(conditions.observed["governor"], "performance")
        XCTAssertEqual(conditions.observed["l4t_release"], "35.4.1")
        XCTAssertEqual(conditions.observed["jetpack"], "5")
        XCTAssertEqual(conditions.observed["temperature_tj-therm_c"], "46.781")
        XCTAssertEqual(Double(conditions.observed["rail_VDD_GPU_SOC_mw"] ?? ""), 19936.0 * 139 / 1000)
        XCTAssertNil(conditions.observed["rail_NC_mw"], "unconnected channels are skipped")
        XCTAssertNotNil(conditions.observed["tegrastats_VDD_GPU_SOC_mw"])
        XCTAssertEqual(conditions.observed["tegrastats_ram_used_mb"], "1634")

        // Put back when the experiment ended: on the board's state, not only in the record.
        let restored = try XCTUnwrap(result.board?.restored)
        XCTAssertEqual(restored.applied["nvpmodel"], "0")
        XCTAssertEqual(restored.applied["governor"], "schedutil")
        XCTAssertNotNil(restored.applied["jetson_clocks"])
        XCTAssertEqual(try board.state("state/nvpmodel"), "0")
        XCTAssertEqual(try board.state("state/clocks"), "default")
        for cpu in 0..<12 {
            XCTAssertEqual(try board.state("sys/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_governor"), "schedutil")
        }
        XCTAssertEqual(board.deploymentsLeft(), [], "the user's files left the board")

        // The INA3221 rails streamed as a probe through warm-up and measurement, in W.
        let rails = try XCTUnwrap(result.probes?.first { $0.name == "orin-probe" })
        XCTAssertNil(rails.failure, rails.failure ?? "")
        XCTAssertEqual(rails.channels.map(\.name), ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"])
        XCTAssertEqual(rails.channels.first?.unit, "W")
        let gpu = rails.samples.filter { $0.channel == 0 }
        XCTAssertGreaterThan(gpu.count, 2, "sampled every 20 ms while measuring")
        XCTAssertTrue(gpu.allSatisfy { abs($0.value - 19936.0 * 139 / 1e6) < 1e-9 }, "\(gpu.prefix(3))")
        XCTAssertEqual(rails.samples.map(\.timestampNs), rails.samples.map(\.timestampNs).sorted())
        // Sampled on the board at 20 ms, stamped with the board's clock (the runner's): the rate achieved is recorded.
        XCTAssertEqual(rails.clock, "board")
        XCTAssertNil(rails.clockOffsetNs, "board-clock samples are already on the iterations' timeline")
        XCTAssertEqual(rails.rateHz, 50)
        let sampling = try XCTUnwrap(rails.sampling?.first)
        XCTAssertGreaterThan(try XCTUnwrap(sampling.achievedHz), 20, "a loop on the board, not a round trip per sample")
        XCTAssertEqual(sampling.goalIntervalNs, 20_000_000, "power: judged against the 20 ms goal")
        XCTAssertEqual(sampling.requestedHz, 50)
        let measurement = try XCTUnwrap(result.measurement)
        let window = (measurement.startsNs.min()!, zip(measurement.startsNs, measurement.durationsNs).map { $0 + $1 }.max()!)
        XCTAssertLessThanOrEqual(gpu.first!.timestampNs, window.0, "sampling before the first measured iteration")
        XCTAssertGreaterThanOrEqual(gpu.last!.timestampNs, window.1, "and after the last")
        XCTAssertTrue(rails.samples.allSatisfy { $0.timestampNs >= rails.startedNs && $0.timestampNs <= rails.stoppedNs })

        // The runner's clock against the host's, by `clock` exchanges over the SSH channel:
        // on loopback both are one clock, so the estimate is 0 within its bound.
        let clock = try XCTUnwrap(result.clock, "the runner answered 'clock'")
        XCTAssertEqual(clock.before.exchanges, 16)
        XCTAssertLessThanOrEqual(abs(clock.before.offsetNs), clock.before.uncertaintyNs, "\(clock)")
        XCTAssertLessThan(clock.before.uncertaintyNs, 50_000_000, "half a round trip over the SSH channel")
        let after = try XCTUnwrap(clock.after)
        XCTAssertLessThanOrEqual(abs(after.offsetNs), after.uncertaintyNs, "\(clock)")
        XCTAssertLessThanOrEqual(abs(try XCTUnwrap(clock.driftPpm)), try XCTUnwrap(clock.driftBoundPpm), "one clock: no drift beyond the bound")

        // Thermal zones at 100 ms and tegrastats (JetPack 5 lines), also sampled on the board.
        let thermal = try XCTUnwrap(result.probes?.first { $0.name == "orin-jetson-thermal" })
        XCTAssertNil(thermal.failure, thermal.failure ?? "")
        XCTAssertEqual(thermal.rateHz, 10)
        XCTAssertEqual(thermal.clock, "board")
        let tj = try XCTUnwrap(thermal.channels.firstIndex { $0.name == "tj-therm" }, "\(thermal.channels)")
        XCTAssertEqual(thermal.channels[tj].unit, "°C")
        XCTAssertTrue(thermal.samples.contains { $0.channel == UInt32(tj) && abs($0.value - 46.781) < 1e-9 })
        let tegrastats = try XCTUnwrap(result.probes?.first { $0.name == "orin-jetson-tegrastats" })
        XCTAssertNil(tegrastats.failure, tegrastats.failure ?? "")
        let soc = try XCTUnwrap(tegrastats.channels.firstIndex { $0.name == "VDD_GPU_SOC" }, "\(tegrastats.channels)")
        XCTAssertEqual(tegrastats.channels[soc].unit, "W")
        XCTAssertTrue(Set(tegrastats.samples.filter { $0.channel == UInt32(soc) }.map(\.value)).isSubset(of: [2.788, 7.167]),
                      "the instantaneous power of the two recorded lines")
        XCTAssertTrue(tegrastats.channels.contains { $0.name == "temp_tj" && $0.unit == "°C" })
        // Energy per inference: the rail's power integrated over each measured iteration's window.
        let energy = try XCTUnwrap(result.energy?.first { $0.probe == "orin-probe" && $0.channel == "VDD_GPU_SOC" })
        XCTAssertGreaterThan(energy.iterations, 0)
        XCTAssertEqual(energy.iterations + energy.uncoveredIterations, result.measurement?.durationsNs.count)
        XCTAssertEqual(try XCTUnwrap(energy.meanPowerW), 19936.0 * 139 / 1e6, accuracy: 1e-6)
        XCTAssertTrue(result.log.contains { $0.stage == "reset" && $0.message.contains("ssh") }, "readiness over SSH is logged")
    }

    /// A board whose SSH refuses: bounded retries, then a stored failure that names the board and the step.
    func testRefusedSSHIsAStoredTransientFailureNamingBoardAndStep() throws {
        let port = board.sshd.port
        board.sshd.stop()
        let (outcome, result) = try board.run(inventory: try board.inventory(plugin: "jetson", board: "orin", port: port),
                                              experiment: try board.experiment(board: "orin"))
        XCTAssertEqual(outcome.status, 1)
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.kind, .transient)
        XCTAssertEqual(result.attempts, 2, "the lab retried the experiment once (max_retries: 1)")
        let reason = result.failure?.reason ?? ""
        XCTAssertTrue(reason.contains("board 'orin'") && reason.contains("connection refused after 3 attempts"), reason)
        XCTAssertTrue(["setup", "reset"].contains(result.failure?.stage ?? ""), result.failure?.stage ?? "")
    }

    /// A condition the board does not control is refused by name, and nothing is left changed.
    func testUnknownConditionIsRefusedByName() throws {
        let (_, result) = try board.run(inventory: try board.inventory(plugin: "jetson", board: "orin"),
                                        experiment: try board.experiment(board: "orin", #"conditions: {fan: "max"}"#))
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.failure?.stage, "conditions")
        XCTAssertEqual(result.failure?.kind, .userInput)
        XCTAssertTrue(result.failure?.reason.contains("condition 'fan' cannot be controlled on a Jetson (it controls: nvpmodel, jetson_clocks, governor)") == true,
                      result.failure?.reason ?? "")
    }

    /// JetPack 4 (a recorded Nano): INA3221 rails through the iio driver, tegrastats
    /// without units, L4T R32 — through the plugin's own code path, in process.
    func testJetPack4NanoIsDescribedObservedAndRestored() throws {
        let nano = try StandInBoard(fixture: "jetson-nano")
        defer { nano.remove() }
        let jetson = try JetsonBoard(PluginConfiguration(kind: "jetson", pluginDirectory: nano.home.path, settings: nano.settings(board: "nano")))
        let description = try jetson.describe()
        XCTAssertEqual(description.name, "NVIDIA Jetson Nano Developer Kit")
        XCTAssertEqual(description.accelerators, ["gpu"], "no DLA on a Nano")
        XCTAssertTrue(try jetson.reset(ResetRequest(timeoutMs: 5000)).ready)

        let applied = try jetson.conditions(ConditionsRequest(apply: ["nvpmodel": "1"]))
        XCTAssertEqual(applied.applied["nvpmodel"], "1 (5W)")
        XCTAssertEqual(applied.observed["jetpack"], "4")
        XCTAssertEqual(applied.observed["l4t_release"], "32.7.4")
        XCTAssertEqual(applied.observed["rail_POM_5V_IN_mw"], "2545.0")
        XCTAssertEqual(applied.observed["rail_POM_5V_CPU_ma"], "108.0")
        XCTAssertEqual(applied.observed["tegrastats_POM_5V_IN_mw"], "2545.0")
        XCTAssertEqual(applied.observed["temperature_PMIC-Die_c"], "100.0")
        XCTAssertThrowsError(try jetson.conditions(ConditionsRequest(apply: ["nvpmodel": "7"]))) { error in
            XCTAssertTrue("\(error)".contains("NVPM ERROR: Invalid mode id 7"), "the tool's own words: \(error)")
        }
        let restored = try jetson.conditions(ConditionsRequest(restore: true))
        XCTAssertEqual(restored.applied["nvpmodel"], "0")
        XCTAssertEqual(try nano.state("state/nvpmodel"), "0")
    }

    /// JetPack 4's layouts streamed by the samplers on the board: the INA3221 iio
    /// files and tegrastats lines without units, stamped on the board's clock (the
    /// host's, on loopback: so inside the host's recording window).
    func testJetPack4NanoRailsAndTegrastatsStreamOnTheBoardsClock() throws {
        let nano = try StandInBoard(fixture: "jetson-nano")
        defer { nano.remove() }
        let configuration = PluginConfiguration(kind: "jetson", pluginDirectory: nano.home.path, settings: nano.settings(board: "nano"))
        let rails = try BoardFilesProbe.rails(configuration, kind: "jetson", patterns: INA3221Rails.patterns, discover: INA3221Rails.channels)
        let tegrastats = try TegraStatsProbe(configuration)
        let recorder = ProbeRecorder(probes: [(name: "rails", probe: rails), (name: "tegrastats", probe: tegrastats)])
        XCTAssertEqual(recorder.start(), [], "both samplers delivered before the 5 s allowed")
        Thread.sleep(forTimeInterval: 0.5)
        let records = recorder.stop()
        for record in records {
            XCTAssertNil(record.failure, "\(record.name): \(record.failure ?? "")")
            XCTAssertEqual(record.clock, "board")
            XCTAssertFalse(record.samples.isEmpty, record.name)
            XCTAssertTrue(record.samples.allSatisfy { $0.timestampNs >= record.startedNs && $0.timestampNs <= record.stoppedNs }, record.name)
        }
        let railRecord = records[0]
        XCTAssertEqual(railRecord.channels.map(\.name), ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"])
        XCTAssertEqual(railRecord.rateHz, 50)
        XCTAssertTrue(railRecord.samples.filter { $0.channel == 0 }.allSatisfy { $0.value == 2.545 }, "in_power0_input is mW")
        XCTAssertGreaterThan(railRecord.samples.filter { $0.channel == 0 }.count, 5, "0.5 s at 20 ms")
        let stats = records[1]
        let input = try XCTUnwrap(stats.channels.firstIndex { $0.name == "POM_5V_IN" }, "\(stats.channels)")
        XCTAssertTrue(stats.samples.filter { $0.channel == UInt32(input) }.allSatisfy { $0.value == 2.545 }, "'POM_5V_IN 2545/2547': the first is now")
        XCTAssertTrue(stats.channels.contains { $0.name == "temp_PMIC" && $0.unit == "°C" }, "\(stats.channels)")
    }

    /// A sampler that dies on the board ends its probe's stream with an error naming
    /// the board and what the sampler said; the recording keeps the gap after it.
    func testASamplerThatDiesOnTheBoardIsANamedProbeFailure() throws {
        let nano = try StandInBoard(fixture: "jetson-nano")
        defer { nano.remove() }
        let configuration = PluginConfiguration(kind: "jetson", pluginDirectory: nano.home.path, settings: nano.settings(board: "nano"))
        let rails = try BoardFilesProbe.rails(configuration, kind: "jetson", patterns: INA3221Rails.patterns, discover: INA3221Rails.channels)
        let recorder = ProbeRecorder(probes: [(name: "rails", probe: rails)])
        XCTAssertEqual(recorder.start(), [])
        // The rail file empties (a driver that stops answering): the sampler exits saying which.
        let file = try XCTUnwrap(FileManager.default.enumerator(atPath: nano.root.path)?.compactMap { $0 as? String }.first { $0.hasSuffix("in_power0_input") })
        try Data().write(to: nano.root.appendingPathComponent(file))
        Thread.sleep(forTimeInterval: 0.5)
        let record = try XCTUnwrap(recorder.stop().first)
        let failure = try XCTUnwrap(record.failure)
        XCTAssertTrue(failure.contains("the sampler on board 'nano' ended") && failure.contains("in_power0_input is empty"), failure)
        XCTAssertFalse(record.samples.isEmpty, "the samples before it are kept")
        XCTAssertGreaterThan(try XCTUnwrap(record.gap).seconds, 0.2)
    }
}
