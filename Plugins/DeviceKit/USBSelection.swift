import Foundation
import MLBenchPluginKit
import USBDriver

/// Finds one USB device among the ids a plugin supports, by serial number when
/// one is given, and says plainly what is there when it is not found.
public enum USBSelection {
    /// Opens the one device with one of `ids` (and `serial`, when given).
    ///
    /// - `what`: how the operator calls the device ("FNIRSI meter").
    /// - `serialOf`: reads the serial of an open device (the string descriptor
    ///   by default; some devices keep it elsewhere).
    public static func open(_ what: String, ids: [USBID: String], serial: String?, context: USBContext,
                            serialOf: (USBDeviceHandle) throws -> String = { try $0.serialNumber() }) throws -> USBDeviceHandle {
        let idList = ids.keys.sorted { $0.description < $1.description }.map { "\($0) (\(ids[$0]!))" }.joined(separator: ", ")
        let candidates: [USBDevice]
        do {
            candidates = try context.devices(matching: Set(ids.keys))
        } catch {
            throw PluginFailure(.device, "\(what): cannot list USB devices: \(error)")
        }
        guard !candidates.isEmpty else {
            throw PluginFailure(.device, "\(what) not found: no USB device with id \(idList) is connected")
        }
        guard let serial else {
            guard candidates.count == 1 else {
                // Each candidate is opened alone, and closed before the next.
                let found = candidates.map { candidate -> String in
                    let serial = (try? candidate.open(name: ids[candidate.id])).flatMap { try? serialOf($0) } ?? "?"
                    return "\(candidate.id) serial '\(serial)' on bus \(candidate.bus) address \(candidate.address)"
                }
                throw PluginFailure(.invalidConfiguration,
                                    "\(what): \(candidates.count) devices are connected; set 'serial' to choose one of: \(found.joined(separator: "; "))")
            }
            do { return try candidates[0].open(name: ids[candidates[0].id]) } catch { throw PluginFailure(.device, "\(error)") }
        }
        var seen: [String] = []
        var problems: [String] = []
        for device in candidates {
            do {
                let handle = try device.open(name: ids[device.id])
                let found = try serialOf(handle)
                if found == serial { return handle }
                seen.append("'\(found)'")
            } catch {
                problems.append("\(error)")
            }
        }
        var message = "\(what) with serial '\(serial)' not found"
        if !seen.isEmpty { message += "; the connected ones have serials \(seen.joined(separator: ", "))" }
        if !problems.isEmpty { message += "; could not open: \(problems.joined(separator: "; "))" }
        throw PluginFailure(.device, message)
    }

    /// Finds the interface with an interrupt endpoint each way (a HID device's
    /// reports) and claims it, detaching the kernel's usbhid driver.
    public static func claimInterruptPair(_ handle: USBDeviceHandle) throws -> (interface: UInt8, input: UInt8, output: UInt8) {
        do {
            for interface in try handle.device.interfaces() {
                guard let input = interface.endpoints.first(where: { $0.kind == .interrupt && $0.isInput }),
                      let output = interface.endpoints.first(where: { $0.kind == .interrupt && !$0.isInput }) else { continue }
                try handle.claimInterface(interface.number, detachKernelDriver: true)
                return (interface.number, input.address, output.address)
            }
        } catch let error as USBError {
            throw PluginFailure(.device, "\(error)")
        }
        throw PluginFailure(.device, "\(handle.label): no interface with interrupt IN and OUT endpoints (is this the device it claims to be?)")
    }
}
