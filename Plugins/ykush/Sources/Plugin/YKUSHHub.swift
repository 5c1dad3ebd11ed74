import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit
import USBDriver
import YKUSHProtocol

/// A YKUSH hub as a relay bank: one relay per downstream port, HID reports
/// over libusb interrupt transfers, every command answered by the hub.
final class YKUSHHub: RelayBank, @unchecked Sendable {
    private let context: USBContext
    private let handle: USBDeviceHandle
    private let inEndpoint: UInt8
    private let outEndpoint: UInt8
    let model: YKUSHModel
    let label: String
    var relayCount: Int { model.portCount }

    init(serial: String?) throws {
        do { context = try USBContext() } catch { throw PluginFailure(.device, "\(error)") }
        let ids = Dictionary(uniqueKeysWithValues: YKUSHModel.allCases.map { (USBID(vendor: YKUSHModel.vendorID, product: $0.productID), $0.rawValue) })
        handle = try USBSelection.open("YKUSH hub", ids: ids, serial: serial, context: context)
        model = YKUSHModel(productID: handle.device.id.product)!
        label = "\(model.rawValue)" + (serial.map { " serial '\($0)'" } ?? "")
        (_, inEndpoint, outEndpoint) = try USBSelection.claimInterruptPair(handle)
    }

    /// Sends one report and reads the hub's reply.
    private func exchange(_ report: [UInt8]) throws -> [UInt8] {
        try handle.interruptWrite(endpoint: outEndpoint, report, timeoutMs: 1000)
        var reply = [UInt8](repeating: 0, count: YKUSHProtocol.reportLength)
        let count = try handle.interruptRead(endpoint: inEndpoint, into: &reply, timeoutMs: 1000)
        return Array(reply.prefix(count))
    }

    func setRelay(_ index: Int, on: Bool) throws {
        let report = YKUSHProtocol.switchReport(port: index + 1, on: on)
        do { try YKUSHProtocol.checkSwitchReply(try exchange(report), command: report[0]) } catch let error as YKUSHError {
            throw PluginFailure(.device, "\(label) port \(index + 1): \(error)")
        }
    }

    func relayState(_ index: Int) throws -> Bool {
        do { return try YKUSHProtocol.decodeStatusReply(try exchange(YKUSHProtocol.statusReport(port: index + 1)), port: index + 1) } catch let error as YKUSHError {
            throw PluginFailure(.device, "\(label) port \(index + 1): \(error)")
        }
    }
}

struct YKUSHSettings: Decodable {
    /// The hub's USB serial number; needed when several hubs are connected.
    var serial: String?
    /// Outlet names by port number.
    var names: [String: String]?
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "ykush", version: "1.0.0",
        description: "Yepkit YKUSH switchable USB hubs (YKUSH, YKUSH3, YKUSH XS) over libusb: one outlet per downstream port",
        factories: [.powerSwitch("ykush") { configuration in
            let settings = try configuration.decodeSettings(YKUSHSettings.self, known: ["serial", "names"])
            return try RelayPowerSwitch(bank: YKUSHHub(serial: settings.serial), names: settings.names ?? [:])
        }])
}
