// Yepkit YKUSH switchable USB hubs, without I/O: the 64-byte HID reports that
// switch a downstream port and ask for its state.

/// The YKUSH models, by USB id.
public enum YKUSHModel: String, Sendable, CaseIterable {
    case ykush = "YKUSH"
    case ykushXS = "YKUSH XS"
    case ykush3 = "YKUSH3"

    public static let vendorID: UInt16 = 0x04d8

    public var productID: UInt16 {
        switch self {
        case .ykush: return 0xf2f7
        case .ykushXS: return 0xf0cd
        case .ykush3: return 0xf11b
        }
    }

    /// Switchable downstream ports.
    public var portCount: Int { self == .ykushXS ? 1 : 3 }

    public init?(productID: UInt16) {
        guard let model = YKUSHModel.allCases.first(where: { $0.productID == productID }) else { return nil }
        self = model
    }
}

/// Why a reply was not what the command expects.
public enum YKUSHError: Error, Equatable, Sendable, CustomStringConvertible {
    case refused(command: UInt8, status: UInt8)
    case wrongPort(expected: Int, found: Int)
    case shortReply(Int)

    public var description: String {
        switch self {
        case .refused(let command, let status):
            return "the hub refused command 0x\(String(command, radix: 16)) (reply status 0x\(String(status, radix: 16)), 0x1 means done)"
        case .wrongPort(let expected, let found): return "status reply for port \(found), asked for port \(expected)"
        case .shortReply(let count): return "reply of \(count) bytes"
        }
    }
}

/// The reports a YKUSH hub takes and the replies it gives.
public enum YKUSHProtocol {
    /// Every report, both ways.
    public static let reportLength = 64

    /// The report switching port `port` (1-based) up (powered) or down.
    public static func switchReport(port: Int, on: Bool) -> [UInt8] { report((on ? 0x10 : 0x00) | UInt8(port)) }

    /// The report switching every port.
    public static func switchAllReport(on: Bool) -> [UInt8] { report(on ? 0x1a : 0x0a) }

    /// The report asking for the state of port `port`.
    public static func statusReport(port: Int) -> [UInt8] { report(0x20 | UInt8(port)) }

    static func report(_ command: UInt8) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: reportLength)
        bytes[0] = command
        return bytes
    }

    /// Checks the reply to a switch command: byte 0 is 0x01 when done.
    public static func checkSwitchReply(_ reply: [UInt8], command: UInt8) throws {
        guard reply.count >= 1 else { throw YKUSHError.shortReply(reply.count) }
        guard reply[0] == 0x01 else { throw YKUSHError.refused(command: command, status: reply[0]) }
    }

    /// Decodes the reply to a status command: byte 1 holds the state in its high
    /// nibble (non-zero: up) and the port in its low nibble. (From Yepkit's
    /// ykushcmd; unverified on hardware.)
    public static func decodeStatusReply(_ reply: [UInt8], port: Int) throws -> Bool {
        guard reply.count >= 2 else { throw YKUSHError.shortReply(reply.count) }
        guard reply[0] == 0x01 else { throw YKUSHError.refused(command: 0x20 | UInt8(port), status: reply[0]) }
        let found = Int(reply[1] & 0x0f)
        // Some firmware leaves the port nibble 0; a different port number is an error.
        if found != 0 && found != port { throw YKUSHError.wrongPort(expected: port, found: found) }
        return reply[1] >> 4 != 0
    }
}
