import Foundation
import MLBench
import MLBenchCore
import XCTest

/// The host probes through the plugin ABI, in this process: they read this
/// machine's kernel, and say plainly what it does not offer.
final class HostProbesTests: XCTestCase {
    func probe(_ kind: String, _ settings: [String: JSONValue] = [:]) throws -> PluginProbe {
        let catalog = PluginCatalog(searchPath: [try PluginStaging.stage(["host-probes"], for: self).path])
        let plugin = try catalog.load("host-probes")
        return try PluginProbe(plugin: plugin, kind: kind, configuration: PluginConfiguration(
            kind: kind, pluginDirectory: plugin.discovered.directory, settings: .object(settings)))
    }

    func stream(_ probe: PluginProbe, for seconds: Double, while work: () -> Void = {}) throws -> [ProbeSample] {
        let collected = ProbeSampleBuffer()
        try probe.start { collected.add($0) }
        let start = Date()
        work()
        Thread.sleep(forTimeInterval: max(0, seconds - Date().timeIntervalSince(start)))
        try probe.stop()
        return collected.all
    }

    func testSoftwarePerfCountersOfThisProcessGrow() throws {
        let probe = try probe("perf", ["events": .array([.string("task_clock"), .string("context_switches")]), "interval_ms": .number(20)])
        XCTAssertEqual(try probe.describe().channels, [ProbeChannel(name: "task_clock", unit: "ns"), ProbeChannel(name: "context_switches", unit: "count")])
        XCTAssertEqual(try probe.describe().rateHz, 50)
        let samples = try stream(probe, for: 0.3) {
            var x = 0.0
            for i in 0..<3_000_000 { x += Double(i).squareRoot() }
            XCTAssertGreaterThan(x, 0)
        }
        let clock = samples.filter { $0.channel == 0 }
        XCTAssertGreaterThanOrEqual(clock.count, 5)
        XCTAssertTrue(zip(clock, clock.dropFirst()).allSatisfy { $0.value <= $1.value && $0.timestampNs < $1.timestampNs }, "cumulative and in time order")
        XCTAssertGreaterThan(clock.last!.value - clock.first!.value, 1e6, "the loop above ran for more than 1 ms of CPU time")
    }

    func testHardwareCountersOrAPlainNotAvailable() throws {
        let hasPMU = FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/cpu")
            || FileManager.default.fileExists(atPath: "/sys/bus/event_source/devices/cpu_core")
        if hasPMU {
            let channels = try probe("perf").describe().channels.map(\.name)
            XCTAssertFalse(channels.isEmpty)
            XCTAssertTrue(Set(channels).isSubset(of: ["instructions", "cycles", "cache_references", "cache_misses", "branch_misses"]), "\(channels)")
        } else {
            XCTAssertThrowsError(try probe("perf")) {
                XCTAssertTrue("\($0)".contains("perf counters not available: the kernel offers none of instructions, cycles, cache_references, cache_misses, branch_misses on this machine"), "\($0)")
            }
            XCTAssertThrowsError(try probe("perf", ["events": .array([.string("cycles")])])) {
                XCTAssertTrue("\($0)".contains("perf counter 'cycles' of process \(getpid()): perf_event_open failed"), "\($0)")
                XCTAssertTrue("\($0)".contains("not available"), "\($0)")
            }
        }
        XCTAssertThrowsError(try probe("perf", ["events": .array([.string("flops")])])) {
            XCTAssertTrue("\($0)".contains("setting 'events': 'flops' is not a counter this probe knows"), "\($0)")
        }
    }

    /// A child process that touches 64 MiB after 0.5 s: its peak RSS must show it
    /// (this test process's own peak may already be higher from earlier tests).
    func testPeakRSSOfAnotherProcessFollowsItsAllocation() throws {
        let child = try ChildProcess(["python3", "-c", "import time; time.sleep(0.5); b = b'x' * (64 << 20); time.sleep(1.5)"])
        defer { child.terminate(); _ = try? child.wait(timeout: 5) }
        // Until the child has exec'd python, its status is the spawning process's.
        Thread.sleep(forTimeInterval: 0.25)
        let probe = try probe("rss", ["pid": .number(Double(child.pid)), "interval_ms": .number(20)])
        let samples = try stream(probe, for: 1.0)
        let peaks = samples.filter { $0.channel == 0 }.map(\.value)
        XCTAssertGreaterThan(peaks.count, 10)
        XCTAssertGreaterThanOrEqual(peaks.last! - peaks.first!, Double(60 << 20), "64 MiB touched shows in the peak: \(peaks.first!) → \(peaks.last!)")
        XCTAssertTrue(zip(peaks, peaks.dropFirst()).allSatisfy { $0 <= $1 }, "a peak never goes down")
    }

    func testSensorsThisMachineLacksAreNamed() throws {
        if Hwmon.isAbsentHere {
            XCTAssertThrowsError(try probe("thermal")) {
                XCTAssertTrue("\($0)".contains("host sensors not available: this machine has no thermal zone"), "\($0)")
            }
        }
        if !FileManager.default.fileExists(atPath: "/sys/class/powercap") {
            XCTAssertThrowsError(try probe("rapl")) {
                XCTAssertTrue("\($0)".contains("RAPL not available: no powercap domain (/sys/class/powercap/intel-rapl:*/energy_uj) on this machine"), "\($0)")
            }
        }
        XCTAssertThrowsError(try probe("rss", ["pid": .number(999_999_999)])) {
            XCTAssertTrue("\($0)".contains("RSS of process 999999999: /proc/999999999/status: cannot be read"), "\($0)")
        }
    }
}

import HostSensors

extension Hwmon {
    /// No thermal zone and no hwmon sensor on this machine.
    static var isAbsentHere: Bool { ThermalZones.discover().isEmpty && Hwmon.discover().isEmpty }
}
