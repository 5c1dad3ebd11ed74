import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Glibc declares these only under _XOPEN_SOURCE, which Swift's import does not set.
@_silgen_name("posix_openpt") private func posixOpenPT(_ flags: Int32) -> Int32
@_silgen_name("grantpt") private func grantPT(_ fd: Int32) -> Int32
@_silgen_name("unlockpt") private func unlockPT(_ fd: Int32) -> Int32
@_silgen_name("ptsname") private func ptsName(_ fd: Int32) -> UnsafeMutablePointer<CChar>?

/// A pseudo-terminal whose master side a test holds to play a board's console
/// or UART; the code under test opens `slavePath` as it opens /dev/ttyUSB0.
final class PseudoTerminal {
    let master: Int32
    let slavePath: String

    init() throws {
        let fd = posixOpenPT(O_RDWR | O_NOCTTY)
        guard fd >= 0, grantPT(fd) == 0, unlockPT(fd) == 0, let name = ptsName(fd) else {
            throw XCTSkip("no pseudo-terminals here: \(String(cString: strerror(errno)))")
        }
        master = fd
        slavePath = String(cString: name)
    }

    deinit { close(master) }

    /// The board writes `text` after `delay` seconds.
    func write(after delay: Double, _ text: String) {
        let master = master
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: delay)
            _ = text.withCString { Glibc.write(master, $0, strlen($0)) }
        }
    }
}
