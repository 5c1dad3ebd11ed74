// INA226 and INA219 current/power monitors, and the FTDI MPSSE commands that
// speak I2C to them, without any I/O: registers, calibration, scaling, and the
// bytes of a whole register transaction (queued in one USB write, since each
// ACK read otherwise costs a round trip).

/// The two chips this driver knows.
public enum INAModel: String, Sendable, CaseIterable {
    case ina226 = "INA226"
    case ina219 = "INA219"

    /// Shunt voltage register LSB, in volts.
    public var shuntLSB: Double { self == .ina226 ? 2.5e-6 : 10e-6 }
    /// The calibration constant: CAL = constant / (I_LSB · R_shunt).
    public var calibrationConstant: Double { self == .ina226 ? 0.00512 : 0.04096 }
    /// Power LSB as a multiple of the current LSB.
    public var powerLSBFactor: Double { self == .ina226 ? 25 : 20 }

    /// Bus voltage in volts from the bus register (INA219 keeps flags in bits 0–2).
    public func busVolts(_ raw: UInt16) -> Double { self == .ina226 ? Double(raw) * 1.25e-3 : Double(raw >> 3) * 4e-3 }
}

/// Register addresses (16-bit big-endian registers).
public enum INARegister: UInt8, Sendable {
    case configuration = 0x00, shuntVoltage = 0x01, busVoltage = 0x02, power = 0x03, current = 0x04, calibration = 0x05
    /// INA226 only.
    case maskEnable = 0x06, alertLimit = 0x07, manufacturerID = 0xfe, dieID = 0xff
}

/// A bad setting, named.
public struct INASettingError: Error, Equatable, Sendable, CustomStringConvertible {
    public var setting: String
    public var message: String
    public var description: String { "setting '\(setting)': \(message)" }
}

/// How a chip is configured: what the operator sets, and what follows from it.
public struct INAConfiguration: Equatable, Sendable {
    public var model: INAModel
    /// The 7-bit I2C address (0x40…0x4F).
    public var address: UInt8
    public var shuntOhms: Double
    /// Amperes per bit of the current register.
    public var currentLSB: Double
    /// INA226: conversion time of each of shunt and bus, in µs.
    public var conversionTimeUs: Int
    /// INA226: samples averaged per reading.
    public var averaging: Int

    /// INA226 conversion times (µs) by their 3-bit code.
    public static let conversionTimes = [140, 204, 332, 588, 1100, 2116, 4156, 8244]
    /// INA226 averaging counts by their 3-bit code.
    public static let averagings = [1, 4, 16, 64, 128, 256, 512, 1024]
    /// The INA226's manufacturer id ("TI") and die id.
    public static let ina226ManufacturerID: UInt16 = 0x5449
    public static let ina226DieID: UInt16 = 0x2260

    /// Checks the settings. Without a current LSB, the finest one that keeps
    /// `maxCurrent` within the signed 15 bits of the current register is used.
    public init(model: INAModel, address: UInt8 = 0x40, shuntOhms: Double, maxCurrent: Double? = nil, currentLSB: Double? = nil,
                conversionTimeUs: Int = 1100, averaging: Int = 1) throws {
        guard (0x40...0x4f).contains(address) else {
            throw INASettingError(setting: "address", message: "0x\(String(address, radix: 16)) is not an INA2xx address (0x40…0x4f)")
        }
        guard shuntOhms > 0, shuntOhms.isFinite else { throw INASettingError(setting: "shunt_ohms", message: "must be above 0, got \(shuntOhms)") }
        if model == .ina226 {
            guard INAConfiguration.conversionTimes.contains(conversionTimeUs) else {
                throw INASettingError(setting: "conversion_time_us", message: "\(conversionTimeUs) is not one of \(INAConfiguration.conversionTimes)")
            }
            guard INAConfiguration.averagings.contains(averaging) else {
                throw INASettingError(setting: "averaging", message: "\(averaging) is not one of \(INAConfiguration.averagings)")
            }
        }
        let lsb: Double
        if let currentLSB {
            guard currentLSB > 0 else { throw INASettingError(setting: "current_lsb", message: "must be above 0, got \(currentLSB)") }
            lsb = currentLSB
        } else if let maxCurrent {
            guard maxCurrent > 0 else { throw INASettingError(setting: "max_current", message: "must be above 0, got \(maxCurrent)") }
            lsb = maxCurrent / 32768
        } else {
            throw INASettingError(setting: "current_lsb", message: "give current_lsb or max_current")
        }
        self.model = model
        self.address = address
        self.shuntOhms = shuntOhms
        self.currentLSB = lsb
        self.conversionTimeUs = conversionTimeUs
        self.averaging = averaging
        let cal = model.calibrationConstant / (lsb * shuntOhms)
        // INA226 keeps bit 15 of the calibration register reserved; INA219 ignores bit 0.
        guard cal.rounded(.down) >= 1, cal < 32768 else {
            throw INASettingError(setting: "current_lsb", message: "\(lsb) A with a \(shuntOhms) Ω shunt gives calibration \(cal), outside 1…32767")
        }
    }

    /// The calibration register value.
    public var calibration: UInt16 {
        let value = UInt16((model.calibrationConstant / (currentLSB * shuntOhms)).rounded(.down))
        return model == .ina219 ? value & 0xfffe : value
    }

    /// The configuration register: continuous shunt and bus conversion.
    public var configuration: UInt16 {
        switch model {
        case .ina226:
            let ct = UInt16(INAConfiguration.conversionTimes.firstIndex(of: conversionTimeUs)!)
            let avg = UInt16(INAConfiguration.averagings.firstIndex(of: averaging)!)
            return 0x4000 | avg << 9 | ct << 6 | ct << 3 | 0x7
        case .ina219:
            // 32 V range, ±320 mV shunt range, 12-bit conversions, continuous (the power-on default).
            return 0x399f
        }
    }

    /// Seconds between new readings: both conversions, times the averaging (INA219: 532 µs each).
    public var conversionPeriod: Double {
        model == .ina226 ? 2 * Double(conversionTimeUs) * 1e-6 * Double(averaging) : 2 * 532e-6
    }

    public func shuntVolts(_ raw: UInt16) -> Double { Double(Int16(bitPattern: raw)) * model.shuntLSB }
    public func busVolts(_ raw: UInt16) -> Double { model.busVolts(raw) }
    public func amperes(_ raw: UInt16) -> Double { Double(Int16(bitPattern: raw)) * currentLSB }
    public func watts(_ raw: UInt16) -> Double { Double(raw) * model.powerLSBFactor * currentLSB }
}

/// FTDI MPSSE commands for I2C on an FT232H: AD0 = SCL, AD1 = SDA out,
/// AD2 = SDA in (wired together), open-drain with external pull-ups.
public enum MPSSEI2C {
    static let sclAndSDAOut: UInt8 = 0x03   // direction: SCL and SDA driven
    static let sclOnly: UInt8 = 0x01        // direction: SDA released to read

    static func pins(_ value: UInt8, _ direction: UInt8) -> [UInt8] { [0x80, value, direction] }

    /// Puts the MPSSE engine in I2C shape: 60 MHz base clock (no ÷5), no adaptive
    /// clocking, three-phase clocking, the divisor for `clockHz`, loopback off,
    /// open-drain on AD0–AD2, bus idle (both lines high).
    public static func setup(clockHz: Int) -> [UInt8] {
        // With three-phase clocking the bit takes 3 half-periods of 60 MHz / ((1 + div) · 2).
        let divisor = max(0, min(0xffff, Int((60_000_000.0 / (Double(clockHz) * 3)).rounded(.up)) - 1))
        return [0x8a, 0x97, 0x8c, 0x86, UInt8(divisor & 0xff), UInt8(divisor >> 8), 0x85, 0x9e, 0x07, 0x00]
            + pins(0x03, sclAndSDAOut)
    }

    /// START: SDA falls while SCL is high, then SCL low.
    static var start: [UInt8] { pins(0x03, sclAndSDAOut) + pins(0x01, sclAndSDAOut) + pins(0x00, sclAndSDAOut) }
    /// STOP: SDA rises while SCL is high.
    static var stop: [UInt8] { pins(0x00, sclAndSDAOut) + pins(0x01, sclAndSDAOut) + pins(0x03, sclAndSDAOut) }

    /// One byte out, then SDA released and the slave's ACK bit clocked in (one response byte, bit 0: 0 = ACK).
    static func write(_ byte: UInt8) -> [UInt8] {
        [0x11, 0x00, 0x00, byte] + pins(0x00, sclOnly) + [0x22, 0x00] + pins(0x00, sclAndSDAOut)
    }

    /// One byte in (one response byte), then our ACK (more to read) or NACK (last byte).
    static func read(ack: Bool) -> [UInt8] {
        pins(0x00, sclOnly) + [0x20, 0x00, 0x00] + pins(0x00, sclAndSDAOut) + [0x13, 0x00, ack ? 0x00 : 0xff] + pins(0x00, sclAndSDAOut)
    }

    /// Writes a 16-bit register: START, address+W, register, MSB, LSB, STOP. Answers 4 ACK bytes.
    public static func writeRegister(address: UInt8, register: UInt8, value: UInt16) -> (command: [UInt8], responseLength: Int) {
        (start + write(address << 1) + write(register) + write(UInt8(value >> 8)) + write(UInt8(value & 0xff)) + stop + [0x87], 4)
    }

    /// Reads a 16-bit register: START, address+W, register, repeated START,
    /// address+R, two bytes, STOP. Answers 3 ACK bytes then MSB and LSB.
    public static func readRegister(address: UInt8, register: UInt8) -> (command: [UInt8], responseLength: Int) {
        (start + write(address << 1) + write(register) + start + write(address << 1 | 1) + read(ack: true) + read(ack: false) + stop + [0x87], 5)
    }

    /// Why a transaction failed, from its response.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// The slave did not acknowledge byte `index` of the transaction (0 = the address).
        case noAcknowledge(index: Int)
        case shortResponse(Int)

        public var description: String {
            switch self {
            case .noAcknowledge(0): return "no device answered at this address (no ACK)"
            case .noAcknowledge(let index): return "the device did not acknowledge byte \(index) of the transaction"
            case .shortResponse(let count): return "the FT232H answered \(count) bytes"
            }
        }
    }

    /// Checks the ACK bytes of a response.
    public static func checkAcknowledges(_ response: [UInt8], count: Int) throws {
        guard response.count >= count else { throw Failure.shortResponse(response.count) }
        if let index = response.prefix(count).firstIndex(where: { $0 & 0x01 != 0 }) { throw Failure.noAcknowledge(index: index) }
    }

    /// The register value from a read response.
    public static func registerValue(_ response: [UInt8]) throws -> UInt16 {
        try checkAcknowledges(response, count: 3)
        guard response.count >= 5 else { throw Failure.shortResponse(response.count) }
        return UInt16(response[3]) << 8 | UInt16(response[4])
    }
}
