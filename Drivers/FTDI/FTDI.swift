import CFTDI
import Foundation

/// An error from libftdi1, naming the device and the call that failed.
public struct FTDIError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The device as the user selected it ("FTDI 0403:6001 serial A1B2C3").
    public var device: String
    public var call: String
    /// libftdi's return code (negative; its meaning depends on the call).
    public var code: Int32
    /// libftdi's error string for the context.
    public var detail: String

    public init(device: String, call: String, code: Int32, detail: String) {
        self.device = device
        self.call = call
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(device): \(call) failed (\(code)): \(detail)" }
}

/// The channel of a multi-channel chip (FT2232, FT4232); single-channel chips use `.any`.
public enum FTDIInterface: Sendable {
    case any, a, b, c, d

    var cValue: ftdi_interface {
        switch self {
        case .any: return INTERFACE_ANY
        case .a: return INTERFACE_A
        case .b: return INTERFACE_B
        case .c: return INTERFACE_C
        case .d: return INTERFACE_D
        }
    }
}

/// The bit modes this layer uses.
public enum FTDIBitMode: UInt8, Sendable {
    case reset = 0x00
    /// Asynchronous bit-bang: each written byte drives the 8 pins.
    case bitbang = 0x01
    /// The MPSSE engine (FT232H/FT2232H): I2C, SPI, JTAG.
    case mpsse = 0x02
}

/// An FTDI device seen on the bus (not opened).
public struct FTDIDeviceInfo: Sendable, Equatable {
    public var manufacturer: String
    public var description: String
    public var serial: String
}

/// An open FTDI device. Owns its libftdi context: closes the device and frees
/// the context when it goes away.
public final class FTDIDevice: @unchecked Sendable {
    let context: UnsafeMutablePointer<ftdi_context>
    /// How errors name the device.
    public let label: String

    /// Opens the device with `vendor:product` and, when given, this serial number.
    /// Generic ids (0403:6001) are shared by many boards: select them by serial.
    public init(vendor: UInt16, product: UInt16, serial: String?, interface: FTDIInterface = .any, name: String? = nil) throws {
        var label = String(format: "FTDI %04x:%04x", vendor, product)
        if let serial { label += " serial \(serial)" }
        if let name { label = "\(name) (\(label))" }
        self.label = label
        guard let context = ftdi_new() else {
            throw FTDIError(device: label, call: "ftdi_new", code: -1, detail: "out of memory")
        }
        // From here on a throw runs deinit, which closes and frees the context.
        self.context = context
        if interface != .any {
            let status = ftdi_set_interface(context, interface.cValue)
            if status < 0 {
                throw FTDIError(device: label, call: "ftdi_set_interface", code: status, detail: FTDIDevice.detail(context))
            }
        }
        let status = ftdi_usb_open_desc(context, Int32(vendor), Int32(product), nil, serial)
        if status < 0 {
            var detail = FTDIDevice.detail(context)
            // -3 is "device not found": say what is there instead.
            if status == -3 {
                let present = (try? FTDIDevice.list(vendor: vendor, product: product)) ?? []
                detail += present.isEmpty ? "; no device with this id is connected"
                    : "; connected with this id: " + present.map { "serial '\($0.serial)' (\($0.description))" }.joined(separator: ", ")
            }
            throw FTDIError(device: label, call: "ftdi_usb_open_desc", code: status, detail: detail)
        }
    }

    deinit {
        ftdi_usb_close(context)
        ftdi_free(context)
    }

    static func detail(_ context: UnsafeMutablePointer<ftdi_context>) -> String {
        ftdi_get_error_string(context).map { String(cString: $0) } ?? "no detail"
    }

    private func check(_ status: Int32, _ call: String) throws {
        if status < 0 { throw FTDIError(device: label, call: call, code: status, detail: FTDIDevice.detail(context)) }
    }

    /// The FTDI devices with `vendor:product` on the bus, with their strings.
    public static func list(vendor: UInt16, product: UInt16) throws -> [FTDIDeviceInfo] {
        guard let context = ftdi_new() else { throw FTDIError(device: "libftdi", call: "ftdi_new", code: -1, detail: "out of memory") }
        defer { ftdi_free(context) }
        var list: UnsafeMutablePointer<ftdi_device_list>?
        let count = ftdi_usb_find_all(context, &list, Int32(vendor), Int32(product))
        guard count >= 0 else {
            throw FTDIError(device: String(format: "FTDI %04x:%04x", vendor, product), call: "ftdi_usb_find_all",
                            code: count, detail: detail(context))
        }
        defer { ftdi_list_free(&list) }
        var result = [FTDIDeviceInfo]()
        var node = list
        while let current = node {
            var manufacturer = [CChar](repeating: 0, count: 128)
            var description = [CChar](repeating: 0, count: 128)
            var serial = [CChar](repeating: 0, count: 128)
            // A device that does not answer for its strings is still listed, with empty strings.
            _ = ftdi_usb_get_strings(context, current.pointee.dev, &manufacturer, 128, &description, 128, &serial, 128)
            result.append(FTDIDeviceInfo(manufacturer: cText(manufacturer), description: cText(description), serial: cText(serial)))
            node = current.pointee.next
        }
        return result
    }

    private static func cText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sets the bit mode; in bit-bang mode `mask` selects the output pins (1 = output).
    public func setBitMode(_ mode: FTDIBitMode, mask: UInt8) throws {
        try check(ftdi_set_bitmode(context, mask, mode.rawValue), String(format: "ftdi_set_bitmode(mask 0x%02x, mode 0x%02x)", mask, mode.rawValue))
    }

    /// The level of the 8 pins now (in bit-bang mode: what the outputs drive).
    public func readPins() throws -> UInt8 {
        var pins: UInt8 = 0
        try check(ftdi_read_pins(context, &pins), "ftdi_read_pins")
        return pins
    }

    /// Writes bytes to the chip (pin states in bit-bang mode, commands in MPSSE mode).
    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { ftdi_write_data(context, $0.baseAddress, Int32($0.count)) }
            try check(written, "ftdi_write_data(\(bytes.count - offset) bytes)")
            offset += Int(written)
        }
    }

    /// Reads exactly `count` bytes, waiting at most `timeoutMs` in all.
    public func read(_ count: Int, timeoutMs: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while filled < count {
            let got = buffer[filled...].withUnsafeMutableBufferPointer { ftdi_read_data(context, $0.baseAddress, Int32($0.count)) }
            try check(got, "ftdi_read_data(\(count - filled) bytes)")
            filled += Int(got)
            if filled < count {
                guard Date() < deadline else {
                    throw FTDIError(device: label, call: "ftdi_read_data(\(count) bytes)", code: -1,
                                    detail: "timed out after \(timeoutMs) ms with \(filled) bytes")
                }
                if got == 0 { usleep(200) }
            }
        }
        return buffer
    }

    /// The baud rate (UART mode) or, in bit-bang mode, the pace of written bytes.
    public func setBaudRate(_ rate: Int) throws { try check(ftdi_set_baudrate(context, Int32(rate)), "ftdi_set_baudrate(\(rate))") }

    /// The latency timer in ms (1…255): how long the chip waits before sending a partial packet.
    public func setLatencyTimer(_ ms: UInt8) throws { try check(ftdi_set_latency_timer(context, ms), "ftdi_set_latency_timer(\(ms))") }

    /// Discards what is buffered in both directions.
    public func purge() throws { try check(ftdi_tcioflush(context), "ftdi_tcioflush") }

    /// Resets the chip's USB side and buffers (not the bit mode).
    public func reset() throws { try check(ftdi_usb_reset(context), "ftdi_usb_reset") }
}
