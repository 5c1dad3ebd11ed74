import Foundation

/// Cool-down after an experiment: wait until the board's hottest temperature is
/// back within a band of its baseline (the temperature before the experiment),
/// so the next experiment does not inherit this one's heat.
///
/// Boards report temperatures as observed conditions named `temperature_<sensor>_c`
/// (degrees Celsius); a board without any has nothing to wait for, and the
/// record says so.
public enum CoolDown {
    /// The temperatures among a board's observed conditions, by sensor.
    public static func temperatures(_ observed: [String: String]) -> [String: Double] {
        var values = [String: Double]()
        for (key, value) in observed where key.hasPrefix("temperature_") && key.hasSuffix("_c") {
            if let number = Double(value), number.isFinite {
                values[String(key.dropFirst("temperature_".count).dropLast(2))] = number
            }
        }
        return values
    }

    /// The hottest sensor's temperature, nil without any.
    public static func hottest(_ observed: [String: String]) -> Double? {
        temperatures(observed).values.max()
    }

    /// Polls `read` (the hottest temperature now, nil when unknown) every `pollS`
    /// seconds until it is at most `baselineC + bandC` or `timeoutS` has passed.
    public static func wait(baselineC: Double, bandC: Double, timeoutS: Double, pollS: Double,
                            read: () throws -> Double?, sleep: (Double) -> Void = { Thread.sleep(forTimeInterval: $0) },
                            now: () -> Date = Date.init) rethrows -> CoolDownRecord {
        let start = now()
        var trace = [CoolDownRecord.Sample]()
        while true {
            let elapsed = now().timeIntervalSince(start)
            let temperature = try read()
            if let temperature { trace.append(.init(atS: elapsed, celsius: temperature)) }
            if let temperature, temperature <= baselineC + bandC {
                return CoolDownRecord(baselineC: baselineC, bandC: bandC, timeoutS: timeoutS, reached: true, waitedS: elapsed, trace: trace,
                                      note: String(format: "back to %.1f °C (baseline %.1f °C + %.1f) after %.1f s", temperature, baselineC, bandC, elapsed))
            }
            if elapsed >= timeoutS {
                let last = trace.last.map { String(format: "%.1f °C", $0.celsius) } ?? "no reading"
                return CoolDownRecord(baselineC: baselineC, bandC: bandC, timeoutS: timeoutS, reached: false, waitedS: elapsed, trace: trace,
                                      note: String(format: "still %@ after %.0f s, above baseline %.1f °C + %.1f: the next experiment may start warm",
                                                   last, timeoutS, baselineC, bandC))
            }
            sleep(min(pollS, max(timeoutS - elapsed, 0)))
        }
    }
}

/// What the cool-down did, kept with the result.
public struct CoolDownRecord: Codable, Sendable, Equatable {
    public struct Sample: Codable, Sendable, Equatable {
        /// Seconds since the cool-down began.
        public var atS: Double
        public var celsius: Double
    }

    /// The hottest sensor before the experiment; nil when the board reports no temperature.
    public var baselineC: Double?
    public var bandC: Double
    public var timeoutS: Double
    /// True when the temperature came back within the band before the timeout.
    public var reached: Bool
    public var waitedS: Double
    public var trace: [Sample]
    public var note: String

    /// The record of a board without temperature sensors.
    public static func noSensor(bandC: Double, timeoutS: Double) -> CoolDownRecord {
        CoolDownRecord(baselineC: nil, bandC: bandC, timeoutS: timeoutS, reached: false, waitedS: 0, trace: [],
                       note: "the board reports no temperature: no cool-down")
    }
}
