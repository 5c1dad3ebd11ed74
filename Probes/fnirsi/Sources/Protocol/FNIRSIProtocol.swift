// The FNIRSI USB power meters' protocol, without any I/O: commands, the CRC,
// report decoding and scaling. The device part (FNIRSIProbePlugin) moves
// these bytes over libusb.

/// The FNIRSI meters this driver knows, by USB id.
public enum FNIRSIModel: String, Sendable, CaseIterable {
    case fnb48 = "FNB48"
    case c1 = "C1"
    case fnb48s = "FNB48S"
    case fnb58 = "FNB58"

    public var vendorID: UInt16 {
        switch self {
        case .fnb48, .c1: return 0x0483
        case .fnb48s, .fnb58: return 0x2e3c
        }
    }

    public var productID: UInt16 {
        switch self {
        case .fnb48: return 0x003a
        case .c1: return 0x003b
        case .fnb48s: return 0x0049
        case .fnb58: return 0x5558
        }
    }

    /// The model with this USB id, if any.
    public init?(vendorID: UInt16, productID: UInt16) {
        guard let model = FNIRSIModel.allCases.first(where: { $0.vendorID == vendorID && $0.productID == productID }) else { return nil }
        self = model
    }

    /// The newer models (FNB58, FNB48S) take 0x82 twice to start and a keep-alive once a second.
    var isNewGeneration: Bool { self == .fnb58 || self == .fnb48s }

    /// The three packets that start streaming, in order.
    public var startSequence: [[UInt8]] {
        [FNIRSIProtocol.command(0x81), FNIRSIProtocol.command(0x82), FNIRSIProtocol.command(isNewGeneration ? 0x82 : 0x83)]
    }

    /// How often the keep-alive packet must be sent, in seconds. The older
    /// models stop after a few ms without one, so they get one after every report.
    public var keepAliveInterval: Double { isNewGeneration ? 1.0 : 0.003 }
}

/// What a report decodes to.
public enum FNIRSIReport: Equatable, Sendable {
    /// A data report: four samples, oldest first.
    case data([FNIRSIReading])
    /// A valid report of another type (the meter's answers to other commands); not samples.
    case other(type: UInt8)
}

/// One sample of the meter, in SI units.
public struct FNIRSIReading: Equatable, Sendable {
    public var volts: Double
    public var amperes: Double
    public var dPlusVolts: Double
    public var dMinusVolts: Double
    public var celsius: Double

    public init(volts: Double, amperes: Double, dPlusVolts: Double, dMinusVolts: Double, celsius: Double) {
        self.volts = volts
        self.amperes = amperes
        self.dPlusVolts = dPlusVolts
        self.dMinusVolts = dMinusVolts
        self.celsius = celsius
    }

    /// Power, computed from voltage and current.
    public var watts: Double { volts * amperes }
}

func hex(_ byte: UInt8) -> String { "0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16) }

/// Why a report was not used.
public enum FNIRSIReportError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongLength(Int)
    case badStart(UInt8)
    case crcMismatch(expected: UInt8, found: UInt8)

    public var description: String {
        switch self {
        case .wrongLength(let length): return "report of \(length) bytes (expected \(FNIRSIProtocol.reportLength))"
        case .badStart(let byte): return "report starts with \(hex(byte)) (expected 0xaa)"
        case .crcMismatch(let expected, let found): return "CRC-8 \(hex(expected)) does not match the report's \(hex(found))"
        }
    }
}

/// The FNIRSI meters' packets: commands, CRC, IN reports.
public enum FNIRSIProtocol {
    /// Every packet, both ways, is 64 bytes.
    public static let reportLength = 64
    /// Samples per data report.
    public static let samplesPerReport = 4
    /// The meters sample at 100 S/s (25 reports a second).
    public static let sampleRateHz = 100.0
    /// Type byte of a data report.
    public static let dataType: UInt8 = 0x04
    /// The keep-alive command.
    public static let keepAlive = command(0x83)

    /// CRC-8 with polynomial 0x39, initial value 0x42, no reflection, no final xor.
    public static func crc8<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        var crc: UInt8 = 0x42
        for byte in bytes { crc = crcTable[Int(crc ^ byte)] }
        return crc
    }

    private static let crcTable: [UInt8] = (0..<256).map { value in
        var crc = UInt8(value)
        for _ in 0..<8 { crc = crc & 0x80 != 0 ? (crc << 1) ^ 0x39 : crc << 1 }
        return crc
    }

    /// A 64-byte command packet `aa <cmd> 00…00 <crc>`; the CRC covers bytes 1…62.
    public static func command(_ code: UInt8) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: reportLength)
        packet[0] = 0xaa
        packet[1] = code
        packet[63] = crc8(packet[1...62])
        return packet
    }

    /// Decodes one 64-byte IN report. A report that fails its CRC throws and must not be used.
    public static func decode(_ report: [UInt8]) throws -> FNIRSIReport {
        try report.withUnsafeBufferPointer { try decode($0) }
    }

    /// Decodes from raw memory (the streaming path avoids copies).
    public static func decode(_ report: UnsafeBufferPointer<UInt8>) throws -> FNIRSIReport {
        guard report.count == reportLength else { throw FNIRSIReportError.wrongLength(report.count) }
        guard report[0] == 0xaa else { throw FNIRSIReportError.badStart(report[0]) }
        let expected = crc8(UnsafeBufferPointer(rebasing: report[1...62]))
        guard expected == report[63] else { throw FNIRSIReportError.crcMismatch(expected: expected, found: report[63]) }
        guard report[1] == dataType else { return .other(type: report[1]) }
        return .data((0..<samplesPerReport).map { reading(report, at: 2 + 15 * $0) })
    }

    static func reading(_ report: UnsafeBufferPointer<UInt8>, at offset: Int) -> FNIRSIReading {
        func u32(_ at: Int) -> UInt32 {
            UInt32(report[at]) | UInt32(report[at + 1]) << 8 | UInt32(report[at + 2]) << 16 | UInt32(report[at + 3]) << 24
        }
        func u16(_ at: Int) -> UInt16 { UInt16(report[at]) | UInt16(report[at + 1]) << 8 }
        // Layout: V u32 ×1e-5, A u32 ×1e-5, D+ u16 ×1e-3, D− u16 ×1e-3, one unknown byte, °C u16 ×0.1.
        return FNIRSIReading(volts: Double(u32(offset)) * 1e-5, amperes: Double(u32(offset + 4)) * 1e-5,
                             dPlusVolts: Double(u16(offset + 8)) * 1e-3, dMinusVolts: Double(u16(offset + 10)) * 1e-3,
                             celsius: Double(u16(offset + 13)) * 0.1)
    }

    /// Encodes a data report (the inverse of `decode`); what an emulated meter
    /// sends. Values are rounded to the report's resolution.
    public static func encode(_ readings: [FNIRSIReading]) -> [UInt8] {
        precondition(readings.count == samplesPerReport, "a report holds \(samplesPerReport) readings")
        var report = [UInt8](repeating: 0, count: reportLength)
        report[0] = 0xaa
        report[1] = dataType
        for (index, reading) in readings.enumerated() {
            let offset = 2 + 15 * index
            func put32(_ value: Double, _ at: Int) {
                let raw = UInt32(max(0, value).rounded())
                for byte in 0..<4 { report[at + byte] = UInt8(truncatingIfNeeded: raw >> (8 * UInt32(byte))) }
            }
            func put16(_ value: Double, _ at: Int) {
                let raw = UInt16(max(0, min(65535, value.rounded())))
                report[at] = UInt8(truncatingIfNeeded: raw)
                report[at + 1] = UInt8(truncatingIfNeeded: raw >> 8)
            }
            put32(reading.volts * 1e5, offset)
            put32(reading.amperes * 1e5, offset + 4)
            put16(reading.dPlusVolts * 1e3, offset + 8)
            put16(reading.dMinusVolts * 1e3, offset + 10)
            put16(reading.celsius * 10, offset + 13)
        }
        report[63] = crc8(report[1...62])
        return report
    }
}

/// The channels a FNIRSI probe streams, in channel-number order.
public enum FNIRSIChannel: UInt32, CaseIterable, Sendable {
    case voltage = 0, current, power, temperature, dPlus, dMinus
    /// The running count of reports rejected (bad CRC, wrong length or start),
    /// sent each time one is: rejected reports are counted, never used.
    case rejectedReports

    public var name: String {
        switch self {
        case .voltage: return "voltage"
        case .current: return "current"
        case .power: return "power"
        case .temperature: return "temperature"
        case .dPlus: return "d_plus"
        case .dMinus: return "d_minus"
        case .rejectedReports: return "rejected_reports"
        }
    }

    public var unit: String {
        switch self {
        case .voltage, .dPlus, .dMinus: return "V"
        case .current: return "A"
        case .power: return "W"
        case .temperature: return "°C"
        case .rejectedReports: return "count"
        }
    }
}

/// Turns a stream of IN reports into timestamped samples: decode, check,
/// timestamp. A report arrives when its last sample is taken; the three
/// before it are 10 ms apart (100 S/s). USB may hand over two reports almost
/// together: a sample is then placed one period after the previous one, so
/// timestamps always increase.
public struct FNIRSIStreamDecoder: Sendable {
    /// Reports turned into samples.
    public private(set) var dataReports = 0
    /// Valid reports that were not data.
    public private(set) var otherReports = 0
    /// Reports that failed a check and were not used.
    public private(set) var rejectedReports = 0
    /// Why the last rejected report was rejected.
    public private(set) var lastRejection: FNIRSIReportError?

    static let sampleSpacingNs = Int64(1e9 / FNIRSIProtocol.sampleRateHz)
    private var previousNs = Int64.min

    public init() {}

    /// Decodes one report received at `arrivalNs` and emits its samples
    /// (timestamp, channel, value).
    public mutating func consume(_ report: UnsafeBufferPointer<UInt8>, arrivalNs: Int64,
                                 emit: (Int64, UInt32, Double) -> Void) {
        let decoded: FNIRSIReport
        do {
            decoded = try FNIRSIProtocol.decode(report)
        } catch {
            rejectedReports += 1
            lastRejection = error as? FNIRSIReportError
            emit(arrivalNs, FNIRSIChannel.rejectedReports.rawValue, Double(rejectedReports))
            return
        }
        guard case .data(let readings) = decoded else {
            otherReports += 1
            return
        }
        dataReports += 1
        let last = readings.count - 1
        for (index, reading) in readings.enumerated() {
            let estimate = arrivalNs - Int64(last - index) * FNIRSIStreamDecoder.sampleSpacingNs
            let time = previousNs == .min ? estimate : max(estimate, previousNs + FNIRSIStreamDecoder.sampleSpacingNs)
            previousNs = time
            emit(time, FNIRSIChannel.voltage.rawValue, reading.volts)
            emit(time, FNIRSIChannel.current.rawValue, reading.amperes)
            emit(time, FNIRSIChannel.power.rawValue, reading.watts)
            emit(time, FNIRSIChannel.temperature.rawValue, reading.celsius)
            emit(time, FNIRSIChannel.dPlus.rawValue, reading.dPlusVolts)
            emit(time, FNIRSIChannel.dMinus.rawValue, reading.dMinusVolts)
        }
    }
}
