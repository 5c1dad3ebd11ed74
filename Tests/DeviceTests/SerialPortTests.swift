import Foundation
import SerialDriver
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Glibc declares these only under _GNU_SOURCE/_XOPEN_SOURCE, which Swift's import does not set.
@_silgen_name("posix_openpt") private func posixOpenPT(_ flags: Int32) -> Int32
@_silgen_name("grantpt") private func grantPT(_ fd: Int32) -> Int32
@_silgen_name("unlockpt") private func unlockPT(_ fd: Int32) -> Int32
@_silgen_name("ptsname") private func ptsName(_ fd: Int32) -> UnsafeMutablePointer<CChar>?

/// The serial driver against a pseudo-terminal: the test holds the master side
/// and plays a board's console; the driver opens the slave as it opens /dev/ttyUSB0.
final class SerialPortTests: XCTestCase {
    var master: Int32 = -1
    var slavePath = ""

    override func setUpWithError() throws {
        master = posixOpenPT(O_RDWR | O_NOCTTY)
        guard master >= 0, grantPT(master) == 0, unlockPT(master) == 0, let name = ptsName(master) else {
            throw XCTSkip("no pseudo-terminals here: \(String(cString: strerror(errno)))")
        }
        slavePath = String(cString: name)
    }

    override func tearDown() { close(master) }

    /// The board writes `text` after `delay` seconds.
    func board(after delay: Double, _ text: String) {
        let master = master
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: delay)
            _ = text.withCString { Glibc.write(master, $0, strlen($0)) }
        }
    }

    func fromBoard() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 1000) > 0 else { return "" }
        let count = buffer.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
        return String(decoding: buffer.prefix(max(0, count)), as: UTF8.self)
    }

    func testExpectWaitsForThePromptAndKeepsATranscript() throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(UUID().uuidString).log")
        addTeardownBlock { try? FileManager.default.removeItem(at: log) }
        let port = try SerialPort(path: slavePath, settings: SerialSettings(baudRate: 115_200, framing: "8N1"),
                                  transcript: SerialTranscript(path: log.path))
        board(after: 0.1, "U-Boot 2023.01\r\nStarting kernel ...\r\n")
        board(after: 0.3, "jetson login: ")
        let before = Date()
        let seen = try port.expect("login: $", timeout: 3)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(before), 0.25, "expect waited for the prompt")
        XCTAssertTrue(seen.hasPrefix("U-Boot 2023.01\r\nStarting kernel"), seen)
        XCTAssertTrue(seen.hasSuffix("jetson login: "), seen)

        try port.write("root\n")
        XCTAssertEqual(fromBoard(), "root\n", "raw mode sends the bytes as given")

        let transcript = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(transcript.contains(" < U-Boot 2023.01\\r\\nStarting kernel ...\\r\\n"), transcript)
        XCTAssertTrue(transcript.contains(" > root\\n"), transcript)
    }

    func testWhatFollowsAMatchIsKeptForTheNextExpect() throws {
        let port = try SerialPort(path: slavePath)
        board(after: 0, "m-ready\r\nm-lap-us-1234\r\nm-infer-done\r\n")
        XCTAssertTrue(try port.expect("m-ready", timeout: 2).hasSuffix("m-ready"))
        let lap = try port.expect("m-lap-us-([0-9]+)", timeout: 2)
        XCTAssertEqual(lap, "\r\nm-lap-us-1234")
        XCTAssertNoThrow(try port.expect("m-infer-done", timeout: 2))
    }

    func testTimeoutsAndBadSettingsAreNamed() throws {
        let port = try SerialPort(path: slavePath)
        board(after: 0, "Booting...\r\n")
        XCTAssertThrowsError(try port.expect("login:", timeout: 0.3)) {
            XCTAssertEqual("\($0)", "serial port '\(slavePath)': expect 'login:' failed: not seen within 0.3 s; last output: 'Booting...\r\n'")
        }
        XCTAssertThrowsError(try SerialPort(path: slavePath, settings: SerialSettings(baudRate: 123_456))) {
            XCTAssertTrue("\($0)".hasPrefix("serial port '\(slavePath)': cfsetspeed failed: 123456 baud is not one of"), "\($0)")
        }
        XCTAssertThrowsError(try SerialSettings(baudRate: 9600, framing: "9X1")) {
            XCTAssertTrue("\($0)".contains("'9X1' is not like 8N1"), "\($0)")
        }
        XCTAssertThrowsError(try SerialPort(path: "/dev/ttyUSB-mlbench-missing")) {
            XCTAssertEqual("\($0)", "serial port '/dev/ttyUSB-mlbench-missing': open failed: No such file or directory (errno 2); no such device (is the adapter plugged in?)")
        }
        XCTAssertThrowsError(try SerialPort(path: "/dev/null")) {
            XCTAssertTrue("\($0)".contains("tcgetattr failed"), "\($0)")
        }
    }
}
