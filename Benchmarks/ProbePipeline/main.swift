import FNIRSIProtocol
import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

// Probe pipeline throughput: a replayed FNIRSI report stream goes through the
// probe's own path (stream thread → CRC check and decoding → timestamps →
// batches delivered) into a store on another thread, with everything pinned to
// one CPU. Prints samples per second and samples dropped (a full store queue
// drops a batch rather than block the probe thread, as a device cannot wait).
//
//   mlbench-probe-bench

/// The store: a bounded queue of batches, drained by its own thread into columns.
final class SampleStore: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [[ProbeSample]] = []
    private var queued = 0
    private let capacity: Int
    private var closed = false
    private(set) var dropped = 0
    private(set) var timestamps: [Int64] = []
    private(set) var channels: [UInt32] = []
    private(set) var values: [Double] = []

    init(capacity: Int, expected: Int) {
        self.capacity = capacity
        timestamps.reserveCapacity(expected)
        channels.reserveCapacity(expected)
        values.reserveCapacity(expected)
    }

    /// Called on the probe thread; never blocks.
    func offer(_ batch: [ProbeSample]) {
        condition.lock()
        if queued + batch.count > capacity {
            dropped += batch.count
        } else {
            queue.append(batch)
            queued += batch.count
            condition.signal()
        }
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
    }

    /// The store thread: takes whatever is queued and appends it to the columns.
    func drain() {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            let batches = queue
            queue.removeAll(keepingCapacity: true)
            queued = 0
            let done = closed && batches.isEmpty
            condition.unlock()
            if done { return }
            for batch in batches {
                for sample in batch {
                    timestamps.append(sample.timestampNs)
                    channels.append(sample.channel)
                    values.append(sample.value)
                }
            }
        }
    }
}

/// The replay's position and the decoder: used on the probe thread only.
final class Replay: @unchecked Sendable {
    var decoder = FNIRSIStreamDecoder()
    var next = 0
    let reports: [[UInt8]]
    init(_ reports: [[UInt8]]) { self.reports = reports }
}
// Glibc declares it only under _GNU_SOURCE, which Swift's import does not set.
@_silgen_name("sched_setaffinity")
func setAffinity(_ pid: pid_t, _ size: Int, _ mask: UnsafeRawPointer) -> Int32

/// What one replay gave.
struct Outcome {
    var decoded: Int
    var stored: Int
    var dropped: Int
    var rejected: Int
    var seconds: Double
}

/// Replays `reportCount` reports, paced to `rate` samples/s (as fast as possible when nil).
func replay(_ reports: [[UInt8]], reportCount: Int, rate: Double?) throws -> Outcome {
    let store = SampleStore(capacity: 1 << 20, expected: reportCount * 24)
    let drained = DispatchSemaphore(value: 0)
    let replayed = DispatchSemaphore(value: 0)
    let state = Replay(reports)
    let stream = ProbeStream(device: "replayed FNB58")
    let start = monotonicNanoseconds()
    // 25 reports (600 samples) per step: what a meter sends in a second, one batch.
    let stepNs = rate.map { Int64(600 / $0 * 1e9) }
    Thread {
        store.drain()
        drained.signal()
    }.start()
    stream.start(deliver: { store.offer($0) }, read: { batch in
        guard state.next < reportCount else {
            if state.next == reportCount { state.next += 1; replayed.signal() }
            usleep(1000)
            return
        }
        if let stepNs {
            let due = start + Int64(state.next / 25) * stepNs
            let now = monotonicNanoseconds()
            if due > now { usleep(UInt32((due - now) / 1000)) }
        }
        let end = min(state.next + 25, reportCount)
        while state.next < end {
            state.reports[state.next % state.reports.count].withUnsafeBufferPointer { bytes in
                state.decoder.consume(bytes, arrivalNs: monotonicNanoseconds()) { batch.append($0, $1, $2) }
            }
            state.next += 1
        }
    })
    replayed.wait()
    try stream.stop()
    store.close()
    drained.wait()
    return Outcome(decoded: state.decoder.dataReports * 24 + state.decoder.rejectedReports, stored: store.values.count,
                   dropped: store.dropped, rejected: state.decoder.rejectedReports,
                   seconds: Double(monotonicNanoseconds() - start) / 1e9)
}

/// The whole run, off the main actor: the probe and store threads touch its state.
func benchmark() throws -> Int32 {
    // One core: the probe thread and the store thread share CPU 0 (the mask is a
    // 1024-bit cpu_set_t; threads started later inherit it).
    let mask = [UInt64](repeating: 0, count: 16).enumerated().map { $0.offset == 0 ? UInt64(1) : $0.element }
    let pinned = mask.withUnsafeBytes { setAffinity(0, $0.count, $0.baseAddress!) } == 0

    // 1000 distinct reports, one in a hundred with a broken CRC, replayed in a loop.
    var reports: [[UInt8]] = []
    for index in 0..<1000 {
        var report = FNIRSIProtocol.encode((0..<4).map { sample in
            FNIRSIReading(volts: 5 + Double((index * 4 + sample) % 500) * 0.001, amperes: 0.5 + Double(index % 7) * 0.01,
                          dPlusVolts: 0.6, dMinusVolts: 0.6, celsius: 30 + Double(index % 10) * 0.1)
        })
        if index % 100 == 99 { report[30] ^= 0x10 }
        reports.append(report)
    }

    print("probe pipeline (CRC check, decode, timestamp, deliver, store) on a replayed FNB58 stream\(pinned ? ", pinned to CPU 0" : " (could not pin to one CPU)")")
    print("  replay rate          reports   samples decoded   stored     dropped   time      samples/s")
    var goalMet = false
    // Paced at the goal and ten times it (2 s each), then as fast as the replay goes.
    for (label, rate, count) in [("100000/s", 100_000.0 as Double?, 8_400), ("1000000/s", 1_000_000.0, 84_000), ("unpaced", nil, 200_000)] {
        let outcome = try replay(reports, reportCount: count, rate: rate)
        let throughput = Double(outcome.stored) / outcome.seconds
        print("  " + label.padding(toLength: 12, withPad: " ", startingAt: 0)
              + String(format: " %9d %17d %10d %10d %7.3f s %12.0f", count, outcome.decoded, outcome.stored, outcome.dropped, outcome.seconds, throughput))
        if rate == 100_000 { goalMet = outcome.dropped == 0 && outcome.stored == outcome.decoded && throughput >= 99_000 }
    }
    print("  (\(reports.count / 100) in every 1000 reports have a bad CRC: counted on the rejected_reports channel, not used)")
    print("  goal (100000 samples/s with 0 dropped): \(goalMet ? "met" : "NOT met")")
    return goalMet ? 0 : 1
}

exit(try benchmark())
