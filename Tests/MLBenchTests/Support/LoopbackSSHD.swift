import Foundation
import MLBenchCore
import XCTest

/// A private sshd on 127.0.0.1 started by scripts/sshd-test for one test: the
/// "board" of the Linux board plugins is this machine, over a real SSH connection.
final class LoopbackSSHD {
    let folder: URL
    let port: Int
    var identityFile: String { folder.appendingPathComponent("id_ed25519").path }
    var knownHostsFile: String { folder.appendingPathComponent("known_hosts").path }
    let user = NSUserName()

    /// Starts it; `pathPrefix` goes first on the PATH of every session (stand-in tools).
    init(in parent: URL, pathPrefix: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        folder = parent.appendingPathComponent("sshd-\(UUID().uuidString.prefix(8))")
        let script = MLBenchBinary.repository.appendingPathComponent("scripts/sshd-test").path
        let result = try ChildProcess.run([script, "start", folder.path] + (pathPrefix.map { [$0] } ?? []), timeout: 60)
        guard result.status == 0, let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            XCTFail("cannot start a loopback sshd (scripts/test installs openssh-server; alone: scripts/sshd-test install): \(result.stderr)",
                    file: file, line: line)
            throw XCTSkip("no sshd")
        }
        self.port = port
    }

    func stop() {
        let script = MLBenchBinary.repository.appendingPathComponent("scripts/sshd-test").path
        _ = try? ChildProcess.run([script, "stop", folder.path], timeout: 30)
    }

    deinit { stop() }
}
