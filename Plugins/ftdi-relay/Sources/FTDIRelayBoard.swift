import FTDIDriver
import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit

/// An FTDI bit-bang relay board (SainSmart, Denkovi; FT245R/FT232R): the eight
/// data pins in asynchronous bit-bang mode, one bit per relay, read back from
/// the pins themselves.
final class FTDIRelayBoard: RelayBank, @unchecked Sendable {
    struct Settings: Decodable {
        /// The FTDI serial number. 0403:6001 is shared by every FT232R/FT245R, so it is required.
        var serial: String
        /// How many relays are wired (1…8, default 8); relay i is data bit i-1.
        var relays: Int?
        /// Boards whose relays switch on with the pin low (default false).
        var activeLow: Bool?
        /// vvvv:pppp when the board was given another id (default 0403:6001).
        var usbId: String?
        /// Outlet names by relay number.
        var names: [String: String]?
    }

    static let known: Set<String> = ["serial", "relays", "active_low", "usb_id", "names"]

    private let device: FTDIDevice
    let relayCount: Int
    let label: String
    private let activeLow: Bool

    init(_ settings: Settings) throws {
        let count = settings.relays ?? 8
        guard (1...8).contains(count) else { throw PluginFailure(.invalidConfiguration, "setting 'relays': a bit-bang port has 1…8 relays, not \(count)") }
        var vendor: UInt16 = 0x0403, product: UInt16 = 0x6001
        if let id = settings.usbId {
            let parts = id.split(separator: ":").compactMap { UInt16($0, radix: 16) }
            guard parts.count == 2 else { throw PluginFailure(.invalidConfiguration, "setting 'usb_id': '\(id)' is not vvvv:pppp in hex") }
            (vendor, product) = (parts[0], parts[1])
        }
        relayCount = count
        activeLow = settings.activeLow ?? false
        label = "FTDI relay board serial '\(settings.serial)'"
        do {
            device = try FTDIDevice(vendor: vendor, product: product, serial: settings.serial, name: "FTDI relay board")
            // Nothing is written here: the relays keep what the output latch holds
            // until a relay is switched, so a lab restart does not drop a board.
            try device.setBitMode(.bitbang, mask: 0xff)
        } catch let error as FTDIError {
            throw PluginFailure(.device, "\(error)")
        }
    }

    /// Bit-bang writes set all eight pins at once: read, change one bit, write.
    func setRelay(_ index: Int, on: Bool) throws {
        let pins = try device.readPins()
        let high = on != activeLow
        try device.write([high ? pins | (1 << UInt8(index)) : pins & ~(1 << UInt8(index))])
    }

    func relayState(_ index: Int) throws -> Bool {
        let level = try device.readPins() & (1 << UInt8(index)) != 0
        return level != activeLow
    }
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "ftdi-relay", version: "1.0.0",
        description: "FTDI bit-bang relay boards (FT245R/FT232R) through libftdi, selected by serial number, state read from the pins",
        factories: [.powerSwitch("ftdi-relay") { configuration in
            let settings = try configuration.decodeSettings(FTDIRelayBoard.Settings.self, known: FTDIRelayBoard.known)
            return try RelayPowerSwitch(bank: FTDIRelayBoard(settings), names: settings.names ?? [:])
        }])
}
