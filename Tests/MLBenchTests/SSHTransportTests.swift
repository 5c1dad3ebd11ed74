import Foundation
@testable import LinuxBoardKit
import MLBenchCore
import MLBenchPluginKit
import XCTest

/// The shared SSH transport against a real sshd on loopback, and its faults:
/// refused, wrong key, unknown host key — classified, bounded, naming board and step.
final class SSHTransportTests: XCTestCase {
    var scratch: URL!
    var sshd: LoopbackSSHD!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ssh-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        sshd = try LoopbackSSHD(in: scratch)
    }

    override func tearDown() {
        sshd?.stop()
        try? FileManager.default.removeItem(at: scratch)
    }

    func transport(port: Int? = nil, identity: String? = nil, knownHosts: String? = nil, attempts: Int = 3) -> SSHTransport {
        let transport = SSHTransport(board: "orin-1", target: SSHTarget(
            host: "127.0.0.1", port: port ?? sshd.port, user: sshd.user, identityFile: identity ?? sshd.identityFile,
            knownHostsFile: knownHosts ?? sshd.knownHostsFile, connectTimeoutS: 5, attempts: attempts, retryDelayS: 0.01))
        return transport
    }

    func testCommandsCopiesAndARunnerChannel() throws {
        let ssh = transport()
        let result = try ssh.run("echo out; echo err >&2; exit 3", step: "conditions")
        XCTAssertEqual(result.status, 3, "a failing command is returned, not retried")
        XCTAssertEqual(result.stdout, "out")
        XCTAssertTrue(result.stderr.contains("err"))
        XCTAssertThrowsError(try ssh.output("exit 4", step: "conditions")) { error in
            let failure = error as? TransportFailure
            XCTAssertEqual(failure?.kind, .command)
            XCTAssertTrue("\(error)".contains("board 'orin-1', step 'conditions'"), "\(error)")
        }

        // Files both ways, names with spaces included.
        let local = scratch.appendingPathComponent("a file.bin")
        try Data((0..<4096).map { UInt8($0 % 251) }).write(to: local)
        let remote = scratch.appendingPathComponent("remote")
        try ssh.output("mkdir -p \(shellQuote(remote.path))", step: "deploy")
        try ssh.upload([(local.path, remote.path + "/copy.bin")], step: "deploy")
        XCTAssertEqual(try Data(contentsOf: remote.appendingPathComponent("copy.bin")), try Data(contentsOf: local))
        let back = scratch.appendingPathComponent("back")
        try ssh.download(["copy.bin"], from: remote.path, to: back.path, step: "fetch")
        XCTAssertEqual(try Data(contentsOf: back.appendingPathComponent("copy.bin")), try Data(contentsOf: local))

        // A line protocol over the channel, as a runner speaks it.
        let child = try ssh.start("while read line; do echo \"got $line\"; done", step: "run")
        try child.writeLine("{\"op\":\"quit\"}")
        XCTAssertEqual(try child.readLine(timeout: 10), "got {\"op\":\"quit\"}")
        child.closeInput()
        XCTAssertEqual(try child.wait(timeout: 10), 0)
    }

    func testRefusedConnectionIsRetriedThenClassified() throws {
        // A port nobody listens on: the sshd's own, once stopped.
        let port = sshd.port
        sshd.stop()
        let ssh = transport(port: port, attempts: 3)
        var pauses = [Double]()
        ssh.pause = { pauses.append($0) }
        XCTAssertThrowsError(try ssh.run("true", step: "deploy")) { error in
            let failure = try? XCTUnwrap(error as? TransportFailure)
            XCTAssertEqual(failure?.kind, .refused)
            XCTAssertEqual(failure?.attempts, 3)
            XCTAssertEqual(failure?.pluginFailure.code, .notReady, "a refused connection may clear up: the lab retries")
            XCTAssertTrue("\(error)".hasPrefix("board 'orin-1', step 'deploy': connection refused after 3 attempts"), "\(error)")
        }
        XCTAssertEqual(pauses, [0.01, 0.02], "backoff doubles between the bounded attempts")

        let began = Date()
        XCTAssertThrowsError(try ssh.waitUntilReachable(timeout: 0.5)) { error in
            XCTAssertEqual((error as? TransportFailure)?.kind, .refused)
            XCTAssertTrue("\(error)".contains("step 'reset'"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(began), 10)
    }

    func testWrongKeyAndUnknownHostKeyAreConfigurationFaultsNotRetried() throws {
        let otherKey = scratch.appendingPathComponent("other_key").path
        XCTAssertEqual(try ChildProcess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherKey], timeout: 30).status, 0)
        var pauses = 0
        let wrongKey = transport(identity: otherKey)
        wrongKey.pause = { _ in pauses += 1 }
        XCTAssertThrowsError(try wrongKey.run("true", step: "describe")) { error in
            XCTAssertEqual((error as? TransportFailure)?.kind, .authentication)
            XCTAssertEqual((error as? TransportFailure)?.pluginFailure.code, .invalidConfiguration)
        }
        let emptyKnownHosts = scratch.appendingPathComponent("known_hosts_empty").path
        FileManager.default.createFile(atPath: emptyKnownHosts, contents: nil)
        let unknownHost = transport(knownHosts: emptyKnownHosts)
        unknownHost.pause = { _ in pauses += 1 }
        XCTAssertThrowsError(try unknownHost.run("true", step: "describe")) { error in
            XCTAssertEqual((error as? TransportFailure)?.kind, .hostKey, "\(error)")
        }
        XCTAssertEqual(pauses, 0, "configuration faults are not retried")
    }

    /// With a console: a board that booted to its login prompt but does not answer
    /// SSH is told apart from one that never booted.
    func testConsoleSaysWhereABoardThatDoesNotAnswerGotStuck() throws {
        let port = sshd.port
        sshd.stop()
        let console = try PseudoTerminal()
        let board = try RemoteLinuxBoard(name: "orin-1", settings: settings(port: port, console: console.slavePath))
        console.write(after: 0.3, "U-Boot 2020.04-g4335beb (Aug 01 2023)\r\n...\r\nStarting kernel ...\r\n\r\nUbuntu 20.04.6 LTS orin ttyTCU0\r\n\r\norin login: ")
        XCTAssertThrowsError(try board.waitReady(timeoutMs: 2500)) { error in
            XCTAssertEqual((error as? PluginFailure)?.code, .notReady)
            XCTAssertTrue("\(error)".contains("board 'orin-1', step 'reset': connection refused"), "\(error)")
            XCTAssertTrue("\(error)".contains("the console shows a login prompt: the board booted but SSH does not answer"), "\(error)")
        }
        let silent = try PseudoTerminal()
        XCTAssertThrowsError(try RemoteLinuxBoard(name: "orin-1", settings: settings(port: port, console: silent.slavePath)).waitReady(timeoutMs: 1200)) { error in
            XCTAssertTrue("\(error)".contains("console: silent"), "\(error)")
        }
    }

    func settings(port: Int, console: String) throws -> LinuxBoardSettings {
        try JSONCoding.decoder().decode(LinuxBoardSettings.self, from: JSONCoding.encoder().encode(JSONValue.object([
            "host": .string("127.0.0.1"), "port": .number(Double(port)), "user": .string(sshd.user),
            "identity_file": .string(sshd.identityFile), "known_hosts_file": .string(sshd.knownHostsFile),
            "connect_timeout_s": .number(2), "retry_delay_s": .number(0.01), "console": .string(console),
            "work_root": .string(scratch.appendingPathComponent("work").path),
        ])))
    }
}
