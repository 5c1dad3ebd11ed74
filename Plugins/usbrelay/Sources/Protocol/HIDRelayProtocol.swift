// dcttech USB HID relay boards (16c0:05df, product "USBRelayN"), without I/O:
// the feature reports that switch relays and the one that reports their state.

/// The HID requests of a dcttech relay board, as control transfers on endpoint 0.
public enum HIDRelayProtocol {
    public static let vendorID: UInt16 = 0x16c0
    public static let productID: UInt16 = 0x05df
    /// The product string prefix; the digit after it is the relay count.
    public static let productPrefix = "USBRelay"
    /// Boards exist with 1, 2, 4 and 8 relays.
    public static let maxRelays = 8
    /// Every feature report is 8 bytes.
    public static let reportLength = 8

    /// bmRequestType of SET_REPORT: host to device, class, interface.
    public static let setReportRequestType: UInt8 = 0x21
    /// bmRequestType of GET_REPORT: device to host, class, interface.
    public static let getReportRequestType: UInt8 = 0xa1
    public static let setReport: UInt8 = 0x09
    public static let getReport: UInt8 = 0x01
    /// wValue: feature report (type 3), report id 0.
    public static let featureReport: UInt16 = 0x0300

    /// The relay count a product string announces ("USBRelay2" → 2), nil when it is not a relay board.
    public static func relayCount(product: String) -> Int? {
        guard product.hasPrefix(productPrefix), let count = Int(product.dropFirst(productPrefix.count)),
              (1...maxRelays).contains(count) else { return nil }
        return count
    }

    /// The report that switches relay `relay` (1-based) on or off.
    public static func switchReport(relay: Int, on: Bool) -> [UInt8] {
        precondition((1...maxRelays).contains(relay), "relays are numbered 1…\(maxRelays)")
        var report = [UInt8](repeating: 0, count: reportLength)
        report[0] = on ? 0xff : 0xfd
        report[1] = UInt8(relay)
        return report
    }

    /// The report that switches every relay on or off.
    public static func switchAllReport(on: Bool) -> [UInt8] {
        var report = [UInt8](repeating: 0, count: reportLength)
        report[0] = on ? 0xfe : 0xfc
        return report
    }

    /// What GET_REPORT answers.
    public struct Status: Equatable, Sendable {
        /// The board's serial: 5 ASCII characters kept in its firmware (these boards have no USB serial string).
        public var serial: String
        /// Bit i set: relay i+1 is on.
        public var mask: UInt8

        public init(serial: String, mask: UInt8) {
            self.serial = serial
            self.mask = mask
        }

        /// Whether relay `relay` (1-based) is on.
        public func isOn(_ relay: Int) -> Bool { mask & (1 << UInt8(relay - 1)) != 0 }
    }

    /// Decodes a GET_REPORT answer: bytes 0–4 serial, byte 7 the state bitmask.
    public static func decodeStatus(_ report: [UInt8]) throws -> Status {
        guard report.count == reportLength else { throw HIDRelayError.shortReport(report.count) }
        let serial = report[0..<5].prefix { $0 != 0 }
        guard serial.allSatisfy({ (0x20..<0x7f).contains($0) }) else { throw HIDRelayError.unprintableSerial(Array(report[0..<5])) }
        return Status(serial: String(decoding: serial, as: UTF8.self), mask: report[7])
    }

    /// The GET_REPORT answer for a state (what an emulated board sends).
    public static func encodeStatus(_ status: Status) -> [UInt8] {
        var report = [UInt8](repeating: 0, count: reportLength)
        for (index, byte) in status.serial.utf8.prefix(5).enumerated() { report[index] = byte }
        report[7] = status.mask
        return report
    }
}

/// A malformed answer from a relay board.
public enum HIDRelayError: Error, Equatable, Sendable, CustomStringConvertible {
    case shortReport(Int)
    case unprintableSerial([UInt8])

    public var description: String {
        switch self {
        case .shortReport(let count): return "status report of \(count) bytes (expected \(HIDRelayProtocol.reportLength))"
        case .unprintableSerial(let bytes): return "status report's serial bytes \(bytes) are not printable ASCII"
        }
    }
}
