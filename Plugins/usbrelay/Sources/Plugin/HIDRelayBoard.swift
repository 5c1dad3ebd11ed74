import Foundation
import HIDRelayProtocol
import MLBenchDeviceKit
import MLBenchPluginKit
import USBDriver

/// A dcttech USB HID relay board as a relay bank: HID feature reports as
/// control transfers over libusb.
final class HIDRelayBoard: RelayBank, @unchecked Sendable {
    private let context: USBContext
    private let handle: USBDeviceHandle
    let relayCount: Int
    let label: String
    static let timeoutMs: UInt32 = 1000

    init(serial: String?) throws {
        do { context = try USBContext() } catch { throw PluginFailure(.device, "\(error)") }
        let id = USBID(vendor: HIDRelayProtocol.vendorID, product: HIDRelayProtocol.productID)
        // The serial is in the status report, a class request to the interface: usbhid must
        // be detached and the interface claimed before the kernel lets it through.
        handle = try USBSelection.open("USB HID relay board", ids: [id: "USB HID relay"], serial: serial, context: context) {
            try $0.claimInterface(0, detachKernelDriver: true)
            return try HIDRelayBoard.status($0).serial
        }
        let product: String
        do { product = try handle.product() } catch { throw PluginFailure(.device, "\(error)") }
        // 16c0:05df is V-USB's shared id: the product string tells a relay board from other V-USB gadgets.
        guard let count = HIDRelayProtocol.relayCount(product: product) else {
            throw PluginFailure(.device, "\(handle.label): product '\(product)' is not a USB relay board (expected USBRelay1…USBRelay8)")
        }
        relayCount = count
        do { try handle.claimInterface(0, detachKernelDriver: true) } catch { throw PluginFailure(.device, "\(error)") }
        let status = try HIDRelayBoard.status(handle)
        label = "\(product) serial '\(status.serial)'"
    }

    static func status(_ handle: USBDeviceHandle) throws -> HIDRelayProtocol.Status {
        let report = try handle.controlRead(requestType: HIDRelayProtocol.getReportRequestType, request: HIDRelayProtocol.getReport,
                                            value: HIDRelayProtocol.featureReport, index: 0,
                                            length: HIDRelayProtocol.reportLength, timeoutMs: timeoutMs)
        do { return try HIDRelayProtocol.decodeStatus(report) } catch {
            throw PluginFailure(.device, "\(handle.label): \(error)")
        }
    }

    func setRelay(_ index: Int, on: Bool) throws {
        try handle.controlWrite(requestType: HIDRelayProtocol.setReportRequestType, request: HIDRelayProtocol.setReport,
                                value: HIDRelayProtocol.featureReport, index: 0,
                                HIDRelayProtocol.switchReport(relay: index + 1, on: on), timeoutMs: HIDRelayBoard.timeoutMs)
    }

    func relayState(_ index: Int) throws -> Bool {
        try HIDRelayBoard.status(handle).isOn(index + 1)
    }
}

/// Settings of a `usbrelay` power switch.
struct HIDRelaySettings: Decodable {
    /// The board's 5-character serial (from its status report); needed when several boards are connected.
    var serial: String?
    /// Outlet names by relay number ("1": "jetson-nano").
    var names: [String: String]?
}

/// The plugin's entry symbol: its descriptor and factories (see mlbench_plugin.h).
@_cdecl("mlbench_plugin_entry")
public func mlbenchPluginEntry() -> UnsafeRawPointer {
    PluginExport.descriptor(
        name: "usbrelay", version: "1.0.0",
        description: "dcttech USB HID relay boards (16c0:05df, 1–8 relays) over libusb, state read back",
        factories: [.powerSwitch("usbrelay") { configuration in
            let settings = try configuration.decodeSettings(HIDRelaySettings.self, known: ["serial", "names"])
            return try RelayPowerSwitch(bank: HIDRelayBoard(serial: settings.serial), names: settings.names ?? [:])
        }])
}
