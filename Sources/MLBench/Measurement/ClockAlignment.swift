import Foundation

/// The runner's clock against the lab host's, so that every probe series lands
/// on the iteration timeline.
///
/// A runner stamps its iterations with its board's CLOCK_MONOTONIC; a sampler on
/// the board stamps with the same clock, but a meter on the lab host (USB, I2C over
/// FTDI) stamps with the host's, which on another machine has another origin and
/// rate. The offset is measured as NTP does: the host notes when it sent a `clock`
/// request and when the answer came back, the runner says what its clock read in
/// between. Whatever the split of the round trip between the two directions, the
/// runner read its clock inside it, so the offset taken at the round trip's
/// midpoint is off by at most half the round trip; the exchange with the smallest
/// round trip gives the tightest bound. Two estimates, before and after the
/// recording, give the drift between the two oscillators.
public struct ClockExchange: Sendable, Equatable {
    /// Host CLOCK_MONOTONIC when the request left, and when the answer arrived.
    public var sentNs: Int64
    public var receivedNs: Int64
    /// The runner's clock in its answer.
    public var runnerNs: Int64

    public init(sentNs: Int64, runnerNs: Int64, receivedNs: Int64) {
        self.sentNs = sentNs
        self.runnerNs = runnerNs
        self.receivedNs = receivedNs
    }
}

/// One estimate of the runner clock's offset from the host's.
public struct ClockOffset: Codable, Sendable, Equatable {
    /// Runner clock minus host clock, in ns, from the exchange with the smallest round trip.
    public var offsetNs: Int64
    /// That exchange's round trip.
    public var roundTripNs: Int64
    /// The largest possible error of `offsetNs`: half the round trip.
    public var uncertaintyNs: Int64
    /// How many exchanges were made; the others had longer round trips.
    public var exchanges: Int
    /// Host time of the chosen exchange's midpoint (when the offset held).
    public var atHostNs: Int64

    /// The estimate from `exchanges`; nil when there is none with a causal round trip
    /// (an answer received before its request left is a broken exchange, not data).
    public static func estimate(_ exchanges: [ClockExchange]) -> ClockOffset? {
        let valid = exchanges.filter { $0.receivedNs >= $0.sentNs }
        guard let best = valid.min(by: { $0.receivedNs - $0.sentNs < $1.receivedNs - $1.sentNs }) else { return nil }
        let roundTrip = best.receivedNs - best.sentNs
        let midpoint = best.sentNs + roundTrip / 2
        return ClockOffset(offsetNs: best.runnerNs - midpoint, roundTripNs: roundTrip, uncertaintyNs: (roundTrip + 1) / 2,
                           exchanges: exchanges.count, atHostNs: midpoint)
    }
}

/// The runner's clock against the host's over an experiment: an offset before the
/// probes start and one after they stop, the drift between them, and how every host
/// time is mapped onto the runner's clock (the timeline of the iterations).
public struct ClockAlignment: Codable, Sendable, Equatable {
    public var before: ClockOffset
    public var after: ClockOffset?
    /// (after − before) / elapsed, in parts per million; nil without `after`.
    public var driftPpm: Double?
    /// How far the drift may be off: the two offsets' bounds over the time between
    /// them (a drift under it is not told apart from none).
    public var driftBoundPpm: Double?
    /// What was done, in words.
    public var note: String

    public init(before: ClockOffset, after: ClockOffset?) {
        self.before = before
        self.after = after
        if let after, after.atHostNs != before.atHostNs {
            let elapsed = Double(after.atHostNs - before.atHostNs)
            driftPpm = Double(after.offsetNs - before.offsetNs) / elapsed * 1e6
            driftBoundPpm = Double(after.uncertaintyNs + before.uncertaintyNs) / abs(elapsed) * 1e6
        }
        let bound = max(before.uncertaintyNs, after?.uncertaintyNs ?? 0)
        note = String(format: "host-clock series moved onto the runner's clock by %.3f ms (± %.3f ms, best round trip %.3f ms of %d exchanges)",
                      Double(before.offsetNs) / 1e6, Double(bound) / 1e6, Double(before.roundTripNs) / 1e6, before.exchanges)
            + (driftPpm.map { [driftBoundPpm] in String(format: "; drift %.1f ± %.1f ppm, interpolated", $0, driftBoundPpm ?? 0) } ?? "")
    }

    /// The runner's clock at host time `hostNs`: the offset interpolated linearly
    /// between the two estimates (extended beyond them), or the one estimate.
    public func runnerTime(hostNs: Int64) -> Int64 {
        guard let after, after.atHostNs != before.atHostNs else { return hostNs + before.offsetNs }
        let fraction = Double(hostNs - before.atHostNs) / Double(after.atHostNs - before.atHostNs)
        return hostNs + before.offsetNs + Int64((Double(after.offsetNs - before.offsetNs) * fraction).rounded())
    }
}
