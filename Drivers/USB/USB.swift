import CLibUSB
import Foundation

/// An error from libusb-1.0, naming the device and the call that failed.
public struct USBError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The libusb error codes a caller may want to tell apart.
    public enum Code: Sendable, Equatable {
        case io, invalidParameter, access, noDevice, notFound, busy, timeout, overflow, pipe, interrupted
        case noMemory, notSupported, other
        /// A transfer that ended with a status other than completed (stall, cancel, ...).
        case transfer(String)
    }

    /// The device as the user knows it ("FNB58 2e3c:5558 on bus 1 address 4"), or "libusb" before one is open.
    public var device: String
    /// The libusb function (and its argument that matters, such as the endpoint).
    public var call: String
    public var code: Code
    /// libusb's own words for the code.
    public var detail: String

    public init(device: String, call: String, code: Code, detail: String) {
        self.device = device
        self.call = call
        self.code = code
        self.detail = detail
    }

    init(device: String, call: String, status: Int32) {
        self.init(device: device, call: call, code: Code(status), detail: USBError.describe(status))
    }

    static func describe(_ status: Int32) -> String {
        let name = String(cString: libusb_error_name(status))
        let text = String(cString: libusb_strerror(status))
        return "\(name) (\(text))"
    }

    /// True when the device is gone: unplugged, reset away or powered off.
    public var deviceVanished: Bool { code == .noDevice }

    public var description: String { "\(device): \(call) failed: \(detail)" }
}

extension USBError.Code {
    init(_ status: Int32) {
        switch status {
        case LIBUSB_ERROR_IO.rawValue: self = .io
        case LIBUSB_ERROR_INVALID_PARAM.rawValue: self = .invalidParameter
        case LIBUSB_ERROR_ACCESS.rawValue: self = .access
        case LIBUSB_ERROR_NO_DEVICE.rawValue: self = .noDevice
        case LIBUSB_ERROR_NOT_FOUND.rawValue: self = .notFound
        case LIBUSB_ERROR_BUSY.rawValue: self = .busy
        case LIBUSB_ERROR_TIMEOUT.rawValue: self = .timeout
        case LIBUSB_ERROR_OVERFLOW.rawValue: self = .overflow
        case LIBUSB_ERROR_PIPE.rawValue: self = .pipe
        case LIBUSB_ERROR_INTERRUPTED.rawValue: self = .interrupted
        case LIBUSB_ERROR_NO_MEM.rawValue: self = .noMemory
        case LIBUSB_ERROR_NOT_SUPPORTED.rawValue: self = .notSupported
        default: self = .other
        }
    }
}

/// A vendor and product id pair, written `vvvv:pppp` in hex as lsusb does.
public struct USBID: Hashable, Sendable, CustomStringConvertible {
    public var vendor: UInt16
    public var product: UInt16

    public init(vendor: UInt16, product: UInt16) {
        self.vendor = vendor
        self.product = product
    }

    /// Parses `vvvv:pppp`; nil when the text is not two hex numbers of at most 4 digits.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ (1...4).contains($0.count) }),
              let vendor = UInt16(parts[0], radix: 16), let product = UInt16(parts[1], radix: 16) else { return nil }
        self.init(vendor: vendor, product: product)
    }

    public var description: String { String(format: "%04x:%04x", vendor, product) }
}

/// A libusb context: owns the library session; every device found through it
/// keeps it alive.
public final class USBContext: @unchecked Sendable {
    let pointer: OpaquePointer

    /// Starts a libusb session.
    public init() throws {
        var context: OpaquePointer?
        let status = libusb_init(&context)
        guard status == 0, let context else { throw USBError(device: "libusb", call: "libusb_init", status: status) }
        pointer = context
    }

    deinit { libusb_exit(pointer) }

    /// The devices on the buses now, with their descriptors read (no device is opened).
    public func devices() throws -> [USBDevice] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(pointer, &list)
        guard count >= 0, let list else {
            throw USBError(device: "libusb", call: "libusb_get_device_list", status: Int32(count))
        }
        // Unref the list's own references only after each USBDevice has taken one.
        defer { libusb_free_device_list(list, 1) }
        var devices = [USBDevice]()
        for index in 0..<Int(count) {
            guard let device = list[index] else { continue }
            var descriptor = libusb_device_descriptor()
            guard libusb_get_device_descriptor(device, &descriptor) == 0 else { continue }
            devices.append(USBDevice(context: self, device: device, descriptor: descriptor))
        }
        return devices
    }

    /// The devices whose id is one of `ids`.
    public func devices(matching ids: Set<USBID>) throws -> [USBDevice] {
        try devices().filter { ids.contains($0.id) }
    }
}

/// A device on the bus, not opened. Holds a libusb reference until released.
public final class USBDevice: @unchecked Sendable {
    let context: USBContext
    let pointer: OpaquePointer
    public let id: USBID
    public let bus: UInt8
    public let address: UInt8
    /// The port path from the root hub ("1-4.2"), stable across replugs in the same port.
    public let portPath: String
    let serialIndex: UInt8
    let productIndex: UInt8
    let manufacturerIndex: UInt8

    init(context: USBContext, device: OpaquePointer, descriptor: libusb_device_descriptor) {
        self.context = context
        pointer = libusb_ref_device(device)
        id = USBID(vendor: descriptor.idVendor, product: descriptor.idProduct)
        bus = libusb_get_bus_number(device)
        address = libusb_get_device_address(device)
        var ports = [UInt8](repeating: 0, count: 8)
        let depth = libusb_get_port_numbers(device, &ports, Int32(ports.count))
        portPath = depth > 0 ? "\(bus)-" + ports.prefix(Int(depth)).map(String.init).joined(separator: ".") : "\(bus)"
        serialIndex = descriptor.iSerialNumber
        productIndex = descriptor.iProduct
        manufacturerIndex = descriptor.iManufacturer
    }

    deinit { libusb_unref_device(pointer) }

    /// How errors name this device.
    public var label: String { "USB device \(id) on bus \(bus) address \(address)" }

    /// The interfaces of the active configuration, with their endpoints.
    public func interfaces() throws -> [USBInterfaceInfo] {
        var config: UnsafeMutablePointer<libusb_config_descriptor>?
        let status = libusb_get_active_config_descriptor(pointer, &config)
        guard status == 0, let config else { throw USBError(device: label, call: "libusb_get_active_config_descriptor", status: status) }
        defer { libusb_free_config_descriptor(config) }
        var result = [USBInterfaceInfo]()
        for i in 0..<Int(config.pointee.bNumInterfaces) {
            let interface = config.pointee.interface[i]
            guard interface.num_altsetting > 0 else { continue }
            let alt = interface.altsetting[0]
            let endpoints = (0..<Int(alt.bNumEndpoints)).map { e -> USBEndpointInfo in
                let endpoint = alt.endpoint[e]
                return USBEndpointInfo(address: endpoint.bEndpointAddress,
                                       kind: USBEndpointInfo.Kind(rawValue: endpoint.bmAttributes & 0x3) ?? .control,
                                       maxPacketSize: Int(endpoint.wMaxPacketSize))
            }
            result.append(USBInterfaceInfo(number: alt.bInterfaceNumber, interfaceClass: alt.bInterfaceClass, endpoints: endpoints))
        }
        return result
    }

    /// Opens the device. `name` is how errors will call it (a model name helps the operator).
    public func open(name: String? = nil) throws -> USBDeviceHandle {
        var handle: OpaquePointer?
        let label = name.map { "\($0) (\(id) on bus \(bus) address \(address))" } ?? self.label
        let status = libusb_open(pointer, &handle)
        guard status == 0, let handle else { throw USBError(device: label, call: "libusb_open", status: status) }
        return USBDeviceHandle(device: self, handle: handle, label: label)
    }
}

/// One interface of a configuration (alternate setting 0).
public struct USBInterfaceInfo: Sendable, Equatable {
    public var number: UInt8
    /// 3 = HID, 0xff = vendor specific.
    public var interfaceClass: UInt8
    public var endpoints: [USBEndpointInfo]
}

/// One endpoint of an interface.
public struct USBEndpointInfo: Sendable, Equatable {
    public enum Kind: UInt8, Sendable { case control = 0, isochronous = 1, bulk = 2, interrupt = 3 }
    public var address: UInt8
    public var kind: Kind
    public var maxPacketSize: Int
    public var isInput: Bool { address & 0x80 != 0 }
}

/// An open device. Releases the interfaces it claimed (giving them back to
/// their kernel driver) and closes the device when it goes away.
public final class USBDeviceHandle: @unchecked Sendable {
    public let device: USBDevice
    let handle: OpaquePointer
    /// How errors name the device.
    public let label: String
    private var claimed: [Int32] = []
    private let lock = NSLock()

    init(device: USBDevice, handle: OpaquePointer, label: String) {
        self.device = device
        self.handle = handle
        self.label = label
    }

    deinit {
        for interface in claimed.reversed() { libusb_release_interface(handle, interface) }
        libusb_close(handle)
    }

    private func check(_ status: Int32, _ call: @autoclosure () -> String) throws {
        if status < 0 { throw USBError(device: label, call: call(), status: status) }
    }

    /// Claims an interface; with `detachKernelDriver`, libusb first detaches the
    /// kernel driver (usbhid for HID devices) and reattaches it on release.
    public func claimInterface(_ number: UInt8, detachKernelDriver: Bool = true) throws {
        lock.lock()
        let already = claimed.contains(Int32(number))
        lock.unlock()
        // Claiming twice is harmless for libusb; keeping one entry keeps the release in deinit single.
        if already { return }
        if detachKernelDriver {
            let status = libusb_set_auto_detach_kernel_driver(handle, 1)
            // Not supported on every platform; claiming then fails clearly if a driver holds it.
            if status != 0 && status != LIBUSB_ERROR_NOT_SUPPORTED.rawValue {
                try check(status, "libusb_set_auto_detach_kernel_driver")
            }
        }
        try check(libusb_claim_interface(handle, Int32(number)), "libusb_claim_interface(\(number))")
        lock.lock()
        claimed.append(Int32(number))
        lock.unlock()
    }

    /// Releases an interface claimed before.
    public func releaseInterface(_ number: UInt8) throws {
        lock.lock()
        claimed.removeAll { $0 == Int32(number) }
        lock.unlock()
        try check(libusb_release_interface(handle, Int32(number)), "libusb_release_interface(\(number))")
    }

    /// A string descriptor in ASCII (index 0 means "none": an empty string).
    public func string(at index: UInt8) throws -> String {
        guard index != 0 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = libusb_get_string_descriptor_ascii(handle, index, &buffer, Int32(buffer.count))
        try check(count, "libusb_get_string_descriptor_ascii(\(index))")
        return String(decoding: buffer.prefix(Int(count)), as: UTF8.self)
    }

    /// The serial number string, "" when the device has none.
    public func serialNumber() throws -> String { try string(at: device.serialIndex) }
    /// The product string, "" when the device has none.
    public func product() throws -> String { try string(at: device.productIndex) }
    /// The manufacturer string, "" when the device has none.
    public func manufacturer() throws -> String { try string(at: device.manufacturerIndex) }

    /// libusb_interrupt_transfer and libusb_bulk_transfer share this signature.
    private typealias TransferFunction = (OpaquePointer?, UInt8, UnsafeMutablePointer<UInt8>?, Int32, UnsafeMutablePointer<Int32>?, UInt32) -> Int32

    /// One synchronous transfer on `endpoint` (its direction bit says which way); returns the bytes moved.
    private func transfer(_ function: TransferFunction, _ name: String, endpoint: UInt8, _ buffer: inout [UInt8], timeoutMs: UInt32) throws -> Int {
        var transferred: Int32 = 0
        let status = function(handle, endpoint, &buffer, Int32(buffer.count), &transferred, timeoutMs)
        let direction = endpoint & 0x80 != 0 ? "IN" : "OUT"
        try check(status, String(format: "%@(%@ 0x%02x, %d bytes)", name, direction, endpoint, buffer.count))
        return Int(transferred)
    }

    /// Writes `data` to an interrupt OUT endpoint; returns the bytes sent.
    @discardableResult
    public func interruptWrite(endpoint: UInt8, _ data: [UInt8], timeoutMs: UInt32) throws -> Int {
        var data = data
        return try transfer(libusb_interrupt_transfer, "libusb_interrupt_transfer", endpoint: endpoint & 0x7f, &data, timeoutMs: timeoutMs)
    }

    /// Reads up to `buffer.count` bytes from an interrupt IN endpoint into `buffer`;
    /// returns the count read. A timeout is an error with code `.timeout`.
    public func interruptRead(endpoint: UInt8, into buffer: inout [UInt8], timeoutMs: UInt32) throws -> Int {
        try transfer(libusb_interrupt_transfer, "libusb_interrupt_transfer", endpoint: endpoint | 0x80, &buffer, timeoutMs: timeoutMs)
    }

    /// Writes `data` to a bulk OUT endpoint; returns the bytes sent.
    @discardableResult
    public func bulkWrite(endpoint: UInt8, _ data: [UInt8], timeoutMs: UInt32) throws -> Int {
        var data = data
        return try transfer(libusb_bulk_transfer, "libusb_bulk_transfer", endpoint: endpoint & 0x7f, &data, timeoutMs: timeoutMs)
    }

    /// Reads from a bulk IN endpoint into `buffer`; returns the count read.
    public func bulkRead(endpoint: UInt8, into buffer: inout [UInt8], timeoutMs: UInt32) throws -> Int {
        try transfer(libusb_bulk_transfer, "libusb_bulk_transfer", endpoint: endpoint | 0x80, &buffer, timeoutMs: timeoutMs)
    }

    /// A control transfer to the device (the direction bit of `requestType` clear).
    public func controlWrite(requestType: UInt8, request: UInt8, value: UInt16, index: UInt16,
                             _ data: [UInt8], timeoutMs: UInt32) throws {
        var data = data
        let status = libusb_control_transfer(handle, requestType & 0x7f, request, value, index, &data, UInt16(data.count), timeoutMs)
        try check(status, String(format: "libusb_control_transfer(type 0x%02x, request 0x%02x, value 0x%04x)", requestType, request, value))
    }

    /// A control transfer from the device (the direction bit of `requestType` set); returns the bytes received.
    public func controlRead(requestType: UInt8, request: UInt8, value: UInt16, index: UInt16,
                            length: Int, timeoutMs: UInt32) throws -> [UInt8] {
        var data = [UInt8](repeating: 0, count: length)
        let status = libusb_control_transfer(handle, requestType | 0x80, request, value, index, &data, UInt16(length), timeoutMs)
        try check(status, String(format: "libusb_control_transfer(type 0x%02x, request 0x%02x, value 0x%04x)", requestType | 0x80, request, value))
        return Array(data.prefix(Int(status)))
    }
}
