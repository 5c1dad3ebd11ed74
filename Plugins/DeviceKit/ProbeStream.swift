import Foundation
import MLBenchPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// Runs a probe's read loop on its own thread and delivers batches of samples.
///
/// The loop calls `read` until `stop` is asked or `read` throws. An error ends
/// the stream: no more samples are delivered, and `stop` rethrows it (with the
/// time it happened), so a device that vanishes mid-stream is reported by name
/// and the gap after the last sample is visible, without crashing anything.
public final class ProbeStream: @unchecked Sendable {
    /// What a read step gets: where to put samples, and whether to keep going.
    public final class Batch {
        public var samples: [ProbeSample] = []
        init() { samples.reserveCapacity(256) }
        @inline(__always)
        /// Adds one sample (CLOCK_MONOTONIC ns, channel index, value in the channel's unit).
        public func append(_ timestampNs: Int64, _ channel: UInt32, _ value: Double) {
            samples.append(ProbeSample(timestampNs: timestampNs, channel: channel, value: value))
        }
    }

    private let lock = NSLock()
    private var stopping = false
    private var failure: (error: Error, atNs: Int64)?
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// The device's name, for the error that ends a stream.
    public let device: String

    /// A stream whose errors will name `device`.
    public init(device: String) { self.device = device }

    /// True once `stop` was called; a read step should return soon after.
    public var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// Starts the loop. `read` fills the batch (it may block, preferably with a
    /// timeout well under a second so that stop is prompt); non-empty batches
    /// are delivered after each call. `close` runs on the loop's thread when it ends.
    public func start(deliver: @escaping @Sendable ([ProbeSample]) -> Void,
                      read: @escaping (Batch) throws -> Void, close: @escaping () -> Void = {}) {
        // The loop's state lives on its one thread: it needs no synchronisation.
        let steps = UncheckedSteps(read: read, close: close)
        let thread = Thread { [self] in
            let read = steps.read, close = steps.close
            let batch = Batch()
            while !isStopping {
                do {
                    try read(batch)
                } catch {
                    lock.lock()
                    failure = (error, monotonicNanoseconds())
                    lock.unlock()
                    break
                }
                if !batch.samples.isEmpty {
                    deliver(batch.samples)
                    batch.samples.removeAll(keepingCapacity: true)
                }
            }
            close()
            finished.signal()
        }
        thread.name = "probe \(device)"
        self.thread = thread
        thread.start()
    }

    /// The error that ended the stream early, if one did (without stopping it).
    public var endedWith: Error? {
        lock.lock()
        defer { lock.unlock() }
        return failure?.error
    }

    /// Stops the loop and waits for it; throws the error that ended it early, if any.
    public func stop() throws {
        lock.lock()
        stopping = true
        let started = thread != nil
        lock.unlock()
        if started { finished.wait() }
        thread = nil
        lock.lock()
        defer { lock.unlock() }
        if let failure {
            throw PluginFailure(.device, "\(device): the stream ended at \(failure.atNs) ns (CLOCK_MONOTONIC), no samples after: \(failure.error)")
        }
    }
}

/// The loop's closures, handed to its thread once and used only there.
private struct UncheckedSteps: @unchecked Sendable {
    let read: (ProbeStream.Batch) throws -> Void
    let close: () -> Void
}

extension ProbeStream {
    /// Calls `sample` every `intervalNs` on the stream's thread, with the time of
    /// the tick. Waiting is done in short steps so that stop stays prompt.
    public func startPeriodic(intervalNs: Int64, deliver: @escaping @Sendable ([ProbeSample]) -> Void,
                              sample: @escaping (Int64, Batch) throws -> Void) {
        var next = monotonicNanoseconds()
        start(deliver: deliver, read: { [unowned self] batch in
            while !isStopping {
                let now = monotonicNanoseconds()
                if now >= next { break }
                usleep(UInt32(min(next - now, 20_000_000) / 1000))
            }
            guard !isStopping else { return }
            let now = monotonicNanoseconds()
            try sample(now, batch)
            // A late tick does not cause a burst of catch-up ticks.
            next = max(next + intervalNs, now + intervalNs / 2)
        })
    }
}

/// The one stream a probe runs at a time: start takes the slot, stop empties it
/// and rethrows the error that ended the stream early, if one did.
public final class ProbeStreamSlot: @unchecked Sendable {
    private var stream: ProbeStream?
    private let lock = NSLock()

    public init() {}

    /// A probe destroyed while streaming (the core gave up on it) stops its thread
    /// rather than leave it reading from a device nobody listens to.
    deinit { try? close() }

    /// A new stream for `device`; an error if one is already running.
    public func open(device: String) throws -> ProbeStream {
        lock.lock()
        defer { lock.unlock() }
        guard stream == nil else { throw PluginFailure(.invalidRequest, "\(device): already streaming") }
        let stream = ProbeStream(device: device)
        self.stream = stream
        return stream
    }

    /// Stops the running stream (if any) and waits for it.
    public func close() throws {
        lock.lock()
        let stream = self.stream
        self.stream = nil
        lock.unlock()
        try stream?.stop()
    }
}
