import FTDIDriver
import Foundation
import INA2xxProtocol
import MLBenchDeviceKit
import MLBenchPluginKit

/// An INA226 or INA219 on the I2C bus of an FT232H in MPSSE mode, as a probe:
/// the device part, moving the protocol's transactions through libftdi.
final class INA2xxProbe: Probe, @unchecked Sendable {
    struct Settings: Decodable {
        var model: String?
        var address: Int?
        var shuntOhms: Double
        var currentLsb: Double?
        var maxCurrent: Double?
        var conversionTimeUs: Int?
        var averaging: Int?
        /// The FT232H's serial; needed when several are connected.
        var serial: String?
        var i2cClockHz: Int?
    }

    static let known: Set<String> = ["model", "address", "shunt_ohms", "current_lsb", "max_current", "conversion_time_us",
                                     "averaging", "serial", "i2c_clock_hz"]

    let configuration: INAConfiguration
    private let device: FTDIDevice
    private let label: String
    private let slot = ProbeStreamSlot()

    init(_ plugin: PluginConfiguration) throws {
        let settings = try plugin.decodeSettings(Settings.self, known: INA2xxProbe.known)
        let name = settings.model ?? "INA226"
        guard let model = INAModel.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            throw PluginFailure(.invalidConfiguration, "setting 'model': '\(name)' is neither INA226 nor INA219")
        }
        let clock = settings.i2cClockHz ?? 400_000
        guard (10_000...1_000_000).contains(clock) else {
            throw PluginFailure(.invalidConfiguration, "setting 'i2c_clock_hz': \(clock) is outside 10 kHz…1 MHz")
        }
        do {
            configuration = try INAConfiguration(model: model, address: UInt8(clamping: settings.address ?? 0x40), shuntOhms: settings.shuntOhms,
                                                 maxCurrent: settings.maxCurrent, currentLSB: settings.currentLsb,
                                                 conversionTimeUs: settings.conversionTimeUs ?? 1100, averaging: settings.averaging ?? 1)
        } catch let error as INASettingError {
            throw PluginFailure(.invalidConfiguration, "\(error)")
        }
        label = "\(model.rawValue) at 0x\(String(configuration.address, radix: 16)) on FT232H" + (settings.serial.map { " serial '\($0)'" } ?? "")
        do {
            device = try FTDIDevice(vendor: 0x0403, product: 0x6014, serial: settings.serial, name: "FT232H for \(model.rawValue)")
            try device.reset()
            try device.purge()
            try device.setLatencyTimer(1)
            try device.setBitMode(.reset, mask: 0)
            try device.setBitMode(.mpsse, mask: 0)
            try device.write(MPSSEI2C.setup(clockHz: clock))
        } catch let error as FTDIError {
            throw PluginFailure(.device, "\(error)")
        }
        if model == .ina226 {
            let manufacturer = try read(.manufacturerID)
            guard manufacturer == INAConfiguration.ina226ManufacturerID else {
                throw PluginFailure(.device, "\(label): manufacturer id 0x\(String(manufacturer, radix: 16)) is not TI's 0x5449 (is this an INA226?)")
            }
        }
        try write(.configuration, configuration.configuration)
        try write(.calibration, configuration.calibration)
        let calibration = try read(.calibration)
        guard calibration == configuration.calibration else {
            throw PluginFailure(.device, "\(label): calibration reads back 0x\(String(calibration, radix: 16)), 0x\(String(configuration.calibration, radix: 16)) was written")
        }
    }

    private func transact(_ command: [UInt8], _ length: Int, _ what: String) throws -> [UInt8] {
        do {
            try device.write(command)
            return try device.read(length, timeoutMs: 1000)
        } catch {
            throw PluginFailure(.device, "\(label): \(what): \(error)")
        }
    }

    func read(_ register: INARegister) throws -> UInt16 {
        let (command, length) = MPSSEI2C.readRegister(address: configuration.address, register: register.rawValue)
        let response = try transact(command, length, "reading register 0x\(String(register.rawValue, radix: 16))")
        do { return try MPSSEI2C.registerValue(response) } catch {
            throw PluginFailure(.device, "\(label): reading register 0x\(String(register.rawValue, radix: 16)): \(error)")
        }
    }

    func write(_ register: INARegister, _ value: UInt16) throws {
        let (command, length) = MPSSEI2C.writeRegister(address: configuration.address, register: register.rawValue, value: value)
        let response = try transact(command, length, "writing register 0x\(String(register.rawValue, radix: 16))")
        do { try MPSSEI2C.checkAcknowledges(response, count: length) } catch {
            throw PluginFailure(.device, "\(label): writing register 0x\(String(register.rawValue, radix: 16)): \(error)")
        }
    }

    func describe() throws -> ProbeDescription {
        ProbeDescription(channels: [ProbeChannel(name: "bus_voltage", unit: "V"), ProbeChannel(name: "shunt_voltage", unit: "V"),
                                    ProbeChannel(name: "current", unit: "A"), ProbeChannel(name: "power", unit: "W")],
                         rateHz: 1 / configuration.conversionPeriod)
    }

    func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        let stream = try slot.open(device: label)
        // All four register reads go out in one USB write: one round trip per reading.
        let registers: [INARegister] = [.busVoltage, .shuntVoltage, .current, .power]
        let chip = configuration
        let transactions = registers.map { MPSSEI2C.readRegister(address: chip.address, register: $0.rawValue) }
        let command = transactions.flatMap(\.command)
        let length = transactions.reduce(0) { $0 + $1.responseLength }
        stream.start(deliver: deliver, read: { [self] batch in
            let response = try transact(command, length, "reading the measurement registers")
            let time = monotonicNanoseconds()
            var values: [UInt16] = []
            for index in 0..<4 {
                values.append(try MPSSEI2C.registerValue(Array(response[(index * 5)..<(index * 5 + 5)])))
            }
            batch.append(time, 0, chip.busVolts(values[0]))
            batch.append(time, 1, chip.shuntVolts(values[1]))
            batch.append(time, 2, chip.amperes(values[2]))
            batch.append(time, 3, chip.watts(values[3]))
        })
    }

    func stop() throws { try slot.close() }
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "ina2xx", version: "1.0.0",
        description: "INA226 and INA219 current/power monitors on an FT232H in MPSSE I2C mode, through libftdi",
        factories: [.probe("ina2xx") { try INA2xxProbe($0) }])
}
