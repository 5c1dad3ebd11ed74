import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error on a serial port, naming the port and the call that failed.
public struct SerialError: Error, Sendable, CustomStringConvertible, Equatable {
    public var port: String
    public var call: String
    /// errno, or 0 when the failure is not a system error (a timeout, a bad setting).
    public var errno: Int32
    public var detail: String

    public init(port: String, call: String, errno: Int32 = 0, detail: String = "") {
        self.port = port
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "serial port '\(port)': \(call) failed"
        if errno != 0 { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
        if !detail.isEmpty { text += errno != 0 ? "; \(detail)" : ": \(detail)" }
        return text
    }
}

/// Line settings: baud rate and framing ("115200 8N1").
public struct SerialSettings: Sendable, Equatable {
    public enum Parity: String, Sendable { case none = "N", even = "E", odd = "O" }

    public var baudRate: Int
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: Int
    /// RTS/CTS hardware flow control.
    public var hardwareFlowControl: Bool

    /// 115200 8N1 without flow control unless told otherwise.
    public init(baudRate: Int = 115_200, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1, hardwareFlowControl: Bool = false) {
        self.baudRate = baudRate
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.hardwareFlowControl = hardwareFlowControl
    }

    /// Parses "8N1", "7E2" and the like.
    public init(baudRate: Int, framing: String) throws {
        let characters = Array(framing.uppercased())
        guard characters.count == 3, let data = Int(String(characters[0])), let parity = Parity(rawValue: String(characters[1])),
              let stop = Int(String(characters[2])) else {
            throw SerialError(port: "-", call: "framing", detail: "'\(framing)' is not like 8N1 (data bits 5–8, parity N/E/O, stop bits 1–2)")
        }
        self.init(baudRate: baudRate, dataBits: data, parity: parity, stopBits: stop)
    }

    /// The termios speeds this layer knows.
    static let speeds: [Int: speed_t] = [
        1200: speed_t(B1200), 2400: speed_t(B2400), 4800: speed_t(B4800), 9600: speed_t(B9600), 19200: speed_t(B19200),
        38400: speed_t(B38400), 57600: speed_t(B57600), 115_200: speed_t(B115200), 230_400: speed_t(B230400),
        460_800: speed_t(B460800), 921_600: speed_t(B921600), 1_000_000: speed_t(B1000000), 2_000_000: speed_t(B2000000),
        3_000_000: speed_t(B3000000),
    ]
}

/// Everything read from and written to a port, with times, kept with the
/// experiment (each line: seconds since opening, direction, the bytes as text).
public final class SerialTranscript: @unchecked Sendable {
    private let handle: FileHandle
    private let opened = Date()
    private let lock = NSLock()

    /// Appends to `path` (created if needed).
    public init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw SerialError(port: path, call: "create transcript", errno: Glibc.errno)
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw SerialError(port: path, call: "open transcript", errno: Glibc.errno) }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func record(_ direction: String, _ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        // Control characters are escaped so that the log stays one line per chunk.
        let text = String(decoding: bytes, as: UTF8.self).unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\n": return "\\n"
            case "\r": return "\\r"
            case "\\": return "\\\\"
            default: return scalar.value < 0x20 || scalar.value == 0x7f ? String(format: "\\x%02x", scalar.value) : String(scalar)
            }
        }.joined()
        lock.lock()
        handle.write(Data(String(format: "%10.3f %@ %@\n", Date().timeIntervalSince(opened), direction, text).utf8))
        lock.unlock()
    }

    deinit { try? handle.close() }
}

/// A serial port (a board console, a UART harness) opened raw, with reads that
/// time out and expect-style waiting. Owns its file descriptor.
public final class SerialPort: @unchecked Sendable {
    public let path: String
    public let settings: SerialSettings
    let fd: Int32
    private let transcript: SerialTranscript?
    /// Bytes read but not yet consumed by `expect`.
    private var pending: [UInt8] = []

    /// Opens `path` raw with `settings`; everything read and written goes to `transcript` when given.
    public init(path: String, settings: SerialSettings = SerialSettings(), transcript: SerialTranscript? = nil) throws {
        self.path = path
        self.settings = settings
        self.transcript = transcript
        guard let speed = SerialSettings.speeds[settings.baudRate] else {
            throw SerialError(port: path, call: "cfsetspeed", detail: "\(settings.baudRate) baud is not one of \(SerialSettings.speeds.keys.sorted())")
        }
        guard (5...8).contains(settings.dataBits), (1...2).contains(settings.stopBits) else {
            throw SerialError(port: path, call: "tcsetattr", detail: "\(settings.dataBits) data bits and \(settings.stopBits) stop bits: data bits are 5–8, stop bits 1–2")
        }
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Glibc.errno
            throw SerialError(port: path, call: "open", errno: code,
                              detail: code == EACCES ? "add the user to the dialout group" : code == ENOENT ? "no such device (is the adapter plugged in?)" : "")
        }
        self.fd = fd
        var options = termios()
        guard tcgetattr(fd, &options) == 0 else { throw SerialError(port: path, call: "tcgetattr", errno: Glibc.errno, detail: "not a terminal device") }
        cfmakeraw(&options)
        cfsetispeed(&options, speed)
        cfsetospeed(&options, speed)
        let sizes: [Int: tcflag_t] = [5: tcflag_t(CS5), 6: tcflag_t(CS6), 7: tcflag_t(CS7), 8: tcflag_t(CS8)]
        options.c_cflag &= ~tcflag_t(CSIZE)
        options.c_cflag |= sizes[settings.dataBits]!
        options.c_cflag &= ~tcflag_t(PARENB | PARODD | CSTOPB)
        if settings.parity != .none { options.c_cflag |= tcflag_t(PARENB) }
        if settings.parity == .odd { options.c_cflag |= tcflag_t(PARODD) }
        if settings.stopBits == 2 { options.c_cflag |= tcflag_t(CSTOPB) }
        // CRTSCTS is 0x80000000: Swift does not import it from the header.
        let crtscts: tcflag_t = 0x8000_0000
        if settings.hardwareFlowControl { options.c_cflag |= crtscts } else { options.c_cflag &= ~crtscts }
        options.c_cflag |= tcflag_t(CLOCAL | CREAD)
        guard tcsetattr(fd, TCSANOW, &options) == 0 else { throw SerialError(port: path, call: "tcsetattr", errno: Glibc.errno) }
        tcflush(fd, TCIOFLUSH)
    }

    deinit { close(fd) }

    /// Writes all of `bytes`, waiting at most `timeout` seconds for the port to take them.
    public func write(_ bytes: [UInt8], timeout: Double = 5) throws {
        var offset = 0
        let deadline = Date().addingTimeInterval(timeout)
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                let code = Glibc.errno
                guard code == EAGAIN || code == EINTR else { throw SerialError(port: path, call: "write", errno: code) }
                guard Date() < deadline else { throw SerialError(port: path, call: "write", detail: "the port took no data for \(timeout) s") }
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&descriptor, 1, 50)
                continue
            }
            transcript?.record(">", Array(bytes[offset..<(offset + written)]))
            offset += written
        }
    }

    /// Writes text as UTF-8 bytes (line endings as given: consoles often want "\r\n" or "\n").
    public func write(_ text: String, timeout: Double = 5) throws { try write(Array(text.utf8), timeout: timeout) }

    /// What arrives within `timeout` seconds (at least one byte unless the time runs out; then empty).
    public func read(timeout: Double) throws -> [UInt8] {
        if !pending.isEmpty {
            defer { pending.removeAll() }
            return pending
        }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(max(0, timeout * 1000)))
        if ready < 0 {
            if Glibc.errno == EINTR { return [] }
            throw SerialError(port: path, call: "poll", errno: Glibc.errno)
        }
        if ready == 0 { return [] }
        if descriptor.revents & Int16(POLLHUP | POLLERR) != 0 && descriptor.revents & Int16(POLLIN) == 0 {
            throw SerialError(port: path, call: "read", errno: EIO, detail: "the device hung up (unplugged?)")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            let code = Glibc.errno
            if code == EAGAIN || code == EINTR { return [] }
            throw SerialError(port: path, call: "read", errno: code)
        }
        let bytes = Array(buffer.prefix(count))
        transcript?.record("<", bytes)
        return bytes
    }

    /// Waits until what arrives matches `pattern` (a regular expression), and
    /// returns everything read up to the end of the match; what follows it stays
    /// for the next read. Throws after `timeout` seconds with the last text seen.
    @discardableResult
    public func expect(_ pattern: String, timeout: Double) throws -> String {
        let regex: NSRegularExpression
        do { regex = try NSRegularExpression(pattern: pattern) } catch {
            throw SerialError(port: path, call: "expect", detail: "'\(pattern)' is not a regular expression: \(error)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var seen = pending
        pending.removeAll()
        while true {
            let text = String(decoding: seen, as: UTF8.self)
            if let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
               let range = Range(match.range, in: text) {
                let consumed = String(text[..<range.upperBound])
                pending = Array(text[range.upperBound...].utf8)
                return consumed
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else {
                pending = seen
                throw SerialError(port: path, call: "expect '\(pattern)'",
                                  detail: "not seen within \(timeout) s; last output: '\(String(text.suffix(200)))'")
            }
            seen += try read(timeout: min(left, 0.2))
        }
    }
}
