import Foundation
import MLBench
import MLBenchCore
import XCTest

/// Recording probes beside a measurement: one failing probe never stops the
/// others, and what it failed to measure is recorded as a gap.
final class ProbeRecorderTests: XCTestCase {
    /// Streams a sample every 10 ms from its own thread; `dies` makes its stream
    /// end (as an unplugged meter's does) after that many samples.
    final class TestProbe: Probe, @unchecked Sendable {
        let dies: Int?
        let refuses: Bool
        /// Seconds before the first sample (a sampler coming up), or nil: never one.
        var firstAfter: Double? = 0
        private var thread: Thread?
        private let lock = NSLock()
        private var running = false
        private var ended = false

        init(dies: Int? = nil, refuses: Bool = false) {
            self.dies = dies
            self.refuses = refuses
        }

        func describe() throws -> ProbeDescription { ProbeDescription(channels: [ProbeChannel(name: "power", unit: "W")], rateHz: 100) }

        func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
            if refuses { throw PluginFailure(.device, "meter serial 'X' not found") }
            lock.lock(); running = true; lock.unlock()
            let thread = Thread { [self] in
                guard let firstAfter else { return }
                Thread.sleep(forTimeInterval: firstAfter)
                var count = 0
                while true {
                    lock.lock(); let go = running; lock.unlock()
                    guard go else { break }
                    if let dies, count >= dies { lock.lock(); ended = true; lock.unlock(); break }
                    var now = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &now)
                    deliver([ProbeSample(timestampNs: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec), channel: 0, value: 1.5)])
                    count += 1
                    Thread.sleep(forTimeInterval: 0.01)
                }
            }
            self.thread = thread
            thread.start()
        }

        func stop() throws {
            lock.lock(); running = false; let ended = self.ended; lock.unlock()
            if ended { throw PluginFailure(.device, "meter: the stream ended early") }
        }
    }

    /// Measuring starts once every probe samples: a slow starter is waited for, a
    /// silent one no longer than the timeout, and named.
    func testStartWaitsForEveryProbesFirstSampleWithinATimeout() throws {
        let slow = TestProbe()
        slow.firstAfter = 0.3
        let began = Date()
        let recorder = ProbeRecorder(probes: [(name: "slow", probe: slow), (name: "quick", probe: TestProbe())])
        XCTAssertEqual(recorder.start(firstSampleTimeout: 5), [])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(began), 0.3)
        XCTAssertFalse(recorder.stop()[0].samples.isEmpty)

        let silent = TestProbe()
        silent.firstAfter = nil
        let again = Date()
        let quiet = ProbeRecorder(probes: [(name: "silent", probe: silent), (name: "quick", probe: TestProbe())])
        XCTAssertEqual(quiet.start(firstSampleTimeout: 0.3), ["silent"])
        XCTAssertLessThan(Date().timeIntervalSince(again), 2)
        _ = quiet.stop()
    }

    func testAFailingProbeLeavesANamedGapAndTheOthersGoOn() throws {
        let recorder = ProbeRecorder(probes: [(name: "steady", probe: TestProbe()), (name: "unplugged", probe: TestProbe(dies: 5)),
                                              (name: "absent", probe: TestProbe(refuses: true))])
        recorder.start()
        Thread.sleep(forTimeInterval: 0.4)
        let records = recorder.stop()
        XCTAssertEqual(records.map(\.name), ["steady", "unplugged", "absent"])

        let steady = records[0]
        XCTAssertNil(steady.failure)
        XCTAssertNil(steady.gap)
        XCTAssertGreaterThan(steady.samples.count, 15)
        XCTAssertEqual(steady.channels, [ProbeChannel(name: "power", unit: "W")])

        let unplugged = records[1]
        XCTAssertEqual(unplugged.samples.count, 5)
        XCTAssertEqual(unplugged.failure, "device error: meter: the stream ended early")
        let gap = try XCTUnwrap(unplugged.gap)
        XCTAssertEqual(gap.fromNs, unplugged.samples.last!.timestampNs, "the gap starts at the last sample")
        XCTAssertEqual(gap.toNs, unplugged.stoppedNs)
        XCTAssertGreaterThan(gap.seconds, 0.25)

        let absent = records[2]
        XCTAssertEqual(absent.failure, "did not start: device error: meter serial 'X' not found")
        XCTAssertEqual(absent.gap, ProbeRecorder.Gap(fromNs: absent.startedNs, toNs: absent.stoppedNs), "nothing measured at all")
        XCTAssertTrue(absent.samples.isEmpty)

        // A record survives the round trip through JSON (the result store's format).
        let decoded = try JSONCoding.decode([ProbeRecorder.Record].self, from: JSONCoding.encode(records))
        XCTAssertEqual(decoded, records)
    }
}
