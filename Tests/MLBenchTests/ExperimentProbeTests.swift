import Foundation
import MLBench
import MLBenchCore
import XCTest

/// Probes attached to the board in the inventory are recorded through the warm-up and
/// measurement of a real experiment (the sample, on the host): a working probe's
/// samples are stored, and a probe whose device is missing is stored as failed,
/// with the gap it leaves, while the experiment itself succeeds.
final class ExperimentProbeTests: XCTestCase {
    func testProbesAreRecordedAndAMissingMeterLeavesANamedGap() throws {
        let home = try MLBenchBinary.temporaryHome()
        addTeardownBlock { try? FileManager.default.removeItem(at: home) }
        let inventory = home.appendingPathComponent("inventory.yaml")
        try """
            boards:
              host: {plugin: host}
            toolchains:
              onnxruntime: {plugin: onnxruntime}
              tvm: {plugin: tvm}
            probes:
              memory: {plugin: host-probes, kind: rss, board: host, settings: {interval_ms: 20}}
              meter: {plugin: fnirsi, board: host}
              runner-cpu: {plugin: host-probes, kind: perf, board: host, settings: {pid: runner, events: [task_clock, page_faults]}}
              runner-memory: {plugin: host-probes, kind: rss, board: host, settings: {pid: runner, interval_ms: 50}}
            """.write(to: inventory, atomically: true, encoding: .utf8)
        let experiment = MLBenchBinary.repository.appendingPathComponent("Examples/sample/experiment.yaml").path
        let outcome = try MLBenchBinary.run(["run", "--json", "-q", experiment, "--inventory", inventory.path], home: home)
        let result = try ResultCoding.decoder.decode(ExperimentResult.self, from: Data(outcome.stdout.utf8))
        XCTAssertEqual(result.status, .succeeded, outcome.stderr)
        let probes = try XCTUnwrap(result.probes)
        XCTAssertEqual(probes.map(\.name), ["memory", "meter", "runner-cpu", "runner-memory"])

        let memory = probes[0]
        XCTAssertNil(memory.failure)
        XCTAssertEqual(memory.channels.map(\.name), ["peak_rss", "rss"])
        XCTAssertGreaterThan(memory.samples.count, 10, "the measurement lasts at least 1 s at 50 Hz")
        // Each channel's achieved rate is judged and stored: memory has no goal, and 50 Hz shows as such.
        let sampling = try XCTUnwrap(memory.sampling)
        XCTAssertEqual(sampling.map(\.channel), ["peak_rss", "rss"])
        XCTAssertTrue(sampling.allSatisfy { $0.verdict == .noGoal && $0.samples > 10 }, "\(sampling)")
        let achieved = try XCTUnwrap(sampling[1].achievedHz)
        XCTAssertTrue((20...55).contains(achieved), "interval_ms 20 gives about 50 Hz, less on a loaded 2-core host: \(achieved)")
        let measurement = try XCTUnwrap(result.measurement)
        let firstIteration = try XCTUnwrap(measurement.startsNs.first)
        XCTAssertLessThanOrEqual(memory.startedNs, firstIteration, "the probes run on the iterations' clock, from before the first measured one")

        let meter = probes[1]
        XCTAssertTrue(meter.samples.isEmpty)
        XCTAssertTrue(meter.failure?.contains("FNIRSI meter not found") == true, meter.failure ?? "no failure")
        let gap = try XCTUnwrap(meter.gap)
        XCTAssertEqual(gap.fromNs, meter.startedNs)
        XCTAssertGreaterThan(gap.seconds, 0.9, "nothing was measured for the whole measurement")
        XCTAssertTrue(result.log.contains { $0.stage == "measure" && $0.message.hasPrefix("probe meter: 0 samples, then a gap of") }, "\(result.log)")

        // 'pid: runner' follows the runner process the host board reports, not the lab's own.
        let runnerPID = try XCTUnwrap(result.board?.runnerConditions?["runner_pid"].flatMap { Int32($0) })
        XCTAssertNotEqual(runnerPID, 0)
        let cpu = probes[2]
        XCTAssertNil(cpu.failure)
        let taskClock = cpu.samples.filter { $0.channel == 0 }.map(\.value)
        XCTAssertGreaterThan(taskClock.count, 5)
        XCTAssertGreaterThan(taskClock.last! - taskClock.first!, 1e8, "the runner ran its iterations for more than 0.1 s of CPU time")
        let runnerMemory = probes[3]
        XCTAssertNil(runnerMemory.failure)
        XCTAssertGreaterThan(runnerMemory.samples.filter { $0.channel == 0 }.last?.value ?? 0, Double(50 << 20),
                            "the runner holds the TVM runtime and the model: well over 50 MiB at its peak")
    }
}
