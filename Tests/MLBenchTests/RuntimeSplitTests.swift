@testable import MLBench
import MLBenchCore
import XCTest

/// The runtime's own split of each iteration (TensorRT's h2d/compute/d2h), from
/// the runner's reply to the stored measurement.
final class RuntimeSplitTests: XCTestCase {
    func testTheRunnerReplyCarriesPhasesAndOlderRepliesStillDecode() throws {
        let split = try JSONCoding.decode(RunnerTimings.self, from: """
            {"ok":true,"starts_ns":[1,2],"durations_ns":[50,60],"peak_memory_bytes":7,
             "phases_ns":{"h2d":[1,2],"compute":[40,45],"d2h":[3,4]}}
            """)
        XCTAssertEqual(split.phasesNs, ["h2d": [1, 2], "compute": [40, 45], "d2h": [3, 4]])
        let plain = try JSONCoding.decode(RunnerTimings.self, from: #"{"ok":true,"starts_ns":[1],"durations_ns":[5],"peak_memory_bytes":7}"#)
        XCTAssertNil(plain.phasesNs)
    }

    func testPhasesOfEveryBatchAreKeptInIterationOrderWithSummaries() throws {
        var split = RuntimeSplit()
        split.add(batch(3, phases: ["h2d": [1, 2, 3], "compute": [10, 20, 30]]))
        split.add(batch(2, phases: ["compute": [40, 50], "h2d": [4, 5]]))
        let record = try XCTUnwrap(split.record)
        XCTAssertEqual(record["h2d"]?.durationsNs, [1, 2, 3, 4, 5])
        XCTAssertEqual(record["compute"]?.durationsNs, [10, 20, 30, 40, 50])
        XCTAssertEqual(record["compute"]?.summary.count, 5)
        XCTAssertEqual(record["compute"]?.summary.median, 30)
    }

    func testAPartialSplitIsDroppedRatherThanMisaligned() {
        var missingBatch = RuntimeSplit()
        missingBatch.add(batch(2, phases: ["compute": [1, 2]]))
        missingBatch.add(batch(2, phases: nil))
        missingBatch.add(batch(2, phases: ["compute": [5, 6]]))
        XCTAssertNil(missingBatch.record)
        XCTAssertFalse(missingBatch.complete)

        var otherPhases = RuntimeSplit()
        otherPhases.add(batch(1, phases: ["compute": [1]]))
        otherPhases.add(batch(1, phases: ["gpu": [1]]))
        XCTAssertNil(otherPhases.record)

        var shortPhase = RuntimeSplit()
        shortPhase.add(batch(3, phases: ["compute": [1, 2]]))
        XCTAssertNil(shortPhase.record)

        var noSplit = RuntimeSplit()
        noSplit.add(batch(4, phases: nil))
        XCTAssertNil(noSplit.record)
    }

    func testNativeBenchmarkRequestsNameTheirDurationAndOthersStayAsTheyWere() throws {
        XCTAssertEqual(try JSONCoding.encode(RunnerCommand.nativeBenchmark(seconds: 5)),
                       #"{"op":"native_benchmark","seconds":5,"threads":1}"#)
        // Runners that predate the op see the requests they know.
        XCTAssertEqual(try JSONCoding.encode(RunnerCommand.run(iterations: 3)), #"{"iterations":3,"op":"run","sample":0}"#)
    }

    func testTheVendorFiguresReadAsTheirHeadlines() throws {
        let xdputil = try JSONCoding.decode(JSONValue.self, from: #"{"tool":"xdputil benchmark","fps":749.812,"frames":15000}"#)
        XCTAssertEqual(ResultPresenter.nativeBenchmarkLine(xdputil), "xdputil benchmark, 749.8 frames/s on the DPU alone")
        let trtexec = try JSONCoding.decode(JSONValue.self, from: """
            {"tool":"trtexec","summary":{"throughput_qps":412.5,"gpu_compute_time_ms":{"median":2.37},
             "latency_ms":{"median":2.4}}}
            """)
        XCTAssertEqual(ResultPresenter.nativeBenchmarkLine(trtexec),
                       "trtexec, throughput 412.5 qps, GPU compute median 2.370 ms, host latency (H2D + compute + D2H) median 2.400 ms")
    }

    private func batch(_ count: Int, phases: [String: [Int64]]?) -> RunnerTimings {
        RunnerTimings(startsNs: Array(repeating: 0, count: count), durationsNs: Array(repeating: 100, count: count),
                      peakMemoryBytes: 0, phasesNs: phases)
    }
}
