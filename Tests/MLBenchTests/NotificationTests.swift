import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import MLBench
import XCTest

/// A local server on 127.0.0.1 speaking just enough SMTP or HTTP to record what it is sent.
final class LoopbackSink: @unchecked Sendable {
    enum Kind { case smtp, http }
    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var received = [String]()

    init(_ kind: Kind) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 8) == 0 else { throw XCTSkip("cannot listen on 127.0.0.1") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let text = kind == .smtp ? smtp(client) : http(client)
                close(client)
                lock.lock(); received.append(text); lock.unlock()
            }
        }
    }

    deinit { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    var messages: [String] { lock.lock(); defer { lock.unlock() }; return received }

    /// The messages once `count` have arrived (the last may still be closing), or after 10 s.
    func messages(count: Int) -> [String] {
        let deadline = Date().addingTimeInterval(10)
        while messages.count < count && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return messages
    }

    private func say(_ fd: Int32, _ text: String) { _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

    private func readLine(_ fd: Int32) -> String? {
        var line = [UInt8]()
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, 0) == 1 {
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
            line.append(byte)
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    private func smtp(_ fd: Int32) -> String {
        var transcript = [String]()
        say(fd, "220 sink ESMTP\r\n")
        var inData = false
        while let line = readLine(fd) {
            if inData {
                if line == "." { inData = false; say(fd, "250 queued\r\n") } else { transcript.append(line) }
                continue
            }
            transcript.append(line)
            switch line.prefix(4).uppercased() {
            case "EHLO": say(fd, "250-sink\r\n250 8BITMIME\r\n")
            case "DATA": inData = true; say(fd, "354 go ahead\r\n")
            case "QUIT": say(fd, "221 bye\r\n"); return transcript.joined(separator: "\n")
            default: say(fd, "250 ok\r\n")
            }
        }
        return transcript.joined(separator: "\n")
    }

    private func http(_ fd: Int32) -> String {
        var length = 0
        while let line = readLine(fd), !line.isEmpty {
            if line.lowercased().hasPrefix("content-length:") { length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0 }
        }
        var body = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let count = body[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, length - got, 0) }
            if count <= 0 { break }
            got += count
        }
        say(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        return String(decoding: body, as: UTF8.self)
    }
}

/// Submitters are told by email and webhook when their experiment ends; the operator when a board fails.
final class NotificationTests: XCTestCase {
    func testTheWorkerTellsTheSubmitterAndTheOperatorThroughLocalSinks() throws {
        let mail = try LoopbackSink(.smtp)
        let hooks = try LoopbackSink(.http)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-notify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LabStore(sqlitePath: folder.appendingPathComponent("lab.sqlite").path)
        for board in ["b1", "b2"] {
            try store.registerBoard(board, host: "bench")
            try store.setHealth(.good, board: board, note: nil)
        }
        // b1's experiment succeeds; b2's hits an infrastructure failure (exit 75).
        let script = folder.appendingPathComponent("run.sh")
        try """
            #!/bin/sh
            if [ "$MLBENCH_BOARD" = b2 ]; then echo "relay did not power the board" >&2; exit 75; fi
            echo result-42
            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let ok = try store.submit(Submission(user: "alice", name: "resnet", board: "b1", definition: "name: resnet\n",
                                             notifyEmail: "alice@lab.test", notifyWebhook: "http://127.0.0.1:\(hooks.port)/alice"), at: Date())
        _ = try store.submit(Submission(user: "bob", name: "yolo", board: "b2", definition: "name: yolo\n"), at: Date())

        var configuration = QueueWorker.Configuration(host: "bench", name: "bench", command: [script.path], scratch: folder.appendingPathComponent("scratch"))
        configuration.maxAttempts = 1
        configuration.notifier = Notifier(smtp: "127.0.0.1:\(mail.port)", mailFrom: "lab@lab.test", operatorEmail: "operator@lab.test")
        var log = [String]()
        let worker = try QueueWorker(store: store, configuration: configuration) { log.append($0) }
        try worker.run(drain: true)
        XCTAssertFalse(log.contains { $0.contains("not delivered") }, log.joined(separator: "\n"))

        let emails = mail.messages(count: 2)
        XCTAssertEqual(emails.count, 2, emails.joined(separator: "\n---\n"))
        let toAlice = try XCTUnwrap(emails.first { $0.contains("RCPT TO:<alice@lab.test>") })
        XCTAssertTrue(toAlice.contains("MAIL FROM:<lab@lab.test>"))
        XCTAssertTrue(toAlice.contains("Subject: mlbench: resnet succeeded on b1"), toAlice)
        XCTAssertTrue(toAlice.contains("Result: result-42"), toAlice)
        let toOperator = try XCTUnwrap(emails.first { $0.contains("RCPT TO:<operator@lab.test>") })
        XCTAssertTrue(toOperator.contains("Subject: mlbench: board b2 on bench failed"), toOperator)
        XCTAssertTrue(toOperator.contains("relay did not power the board"), toOperator)
        XCTAssertFalse(emails.contains { $0.contains("bob") && $0.contains("RCPT TO:<bob") }, "bob asked for nothing")

        let posted = try XCTUnwrap(hooks.messages(count: 1).first)
        let payload = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(posted.utf8)) as? [String: String])
        XCTAssertEqual(payload["event"], "experiment.succeeded")
        XCTAssertEqual(payload["experiment"], ok.id)
        XCTAssertEqual(payload["result"], "result-42")
        XCTAssertEqual(hooks.messages.count, 1)
    }

    func testABoardOfUnknownHealthIsCheckedAndAFailedCheckTellsTheOperator() throws {
        let mail = try LoopbackSink(.smtp)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-health-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try LabStore(sqlitePath: folder.appendingPathComponent("lab.sqlite").path)
        for board in ["b1", "b2"] { try store.registerBoard(board, host: "bench") } // new: unknown until checked
        // The first run on b1 hits an infrastructure failure; the board is checked again and the run retried.
        let script = folder.appendingPathComponent("run.sh")
        try """
            #!/bin/sh
            if [ ! -f "\(folder.path)/failed-once" ]; then touch "\(folder.path)/failed-once"; echo "board vanished" >&2; exit 75; fi
            echo result-1
            """.write(to: script, atomically: true, encoding: .utf8)
        let check = folder.appendingPathComponent("check.sh")
        try """
            #!/bin/sh
            echo "checked $MLBENCH_BOARD" >> "\(folder.path)/checks.log"
            [ "$MLBENCH_BOARD" = b1 ] || { echo "no console prompt" >&2; exit 1; }
            """.write(to: check, atomically: true, encoding: .utf8)
        for file in [script, check] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path) }
        let onGood = try store.submit(Submission(user: "alice", name: "on-b1", board: "b1", definition: "name: on-b1\n"), at: Date())
        let onBad = try store.submit(Submission(user: "alice", name: "on-b2", board: "b2", definition: "name: on-b2\n"), at: Date())

        var configuration = QueueWorker.Configuration(host: "bench", name: "bench", command: [script.path], scratch: folder.appendingPathComponent("scratch"))
        configuration.healthCheck = [check.path]
        configuration.notifier = Notifier(smtp: "127.0.0.1:\(mail.port)", operatorEmail: "operator@lab.test")
        try QueueWorker(store: store, configuration: configuration).run(drain: true)

        XCTAssertEqual(try store.experiment(id: onGood.id)?.state, .succeeded)
        XCTAssertEqual(try store.experiment(id: onGood.id)?.attempts, 2, "retried after the board passed its check")
        XCTAssertEqual(try store.experiment(id: onBad.id)?.state, .queued, "nothing runs on a bad board")
        let boards = Dictionary(uniqueKeysWithValues: try store.boards().map { ($0.name, $0) })
        XCTAssertEqual(boards["b1"]?.health, .good)
        XCTAssertEqual(boards["b2"]?.health, .bad)
        XCTAssertTrue(boards["b2"]?.note?.contains("no console prompt") == true, boards["b2"]?.note ?? "")
        let checks = try String(contentsOf: folder.appendingPathComponent("checks.log"), encoding: .utf8)
        XCTAssertEqual(checks.split(separator: "\n").filter { $0 == "checked b1" }.count, 2, "checked when new, and after the failure: \(checks)")
        let emails = mail.messages(count: 2)
        XCTAssertTrue(emails.contains { $0.contains("Subject: mlbench: board b2 on bench failed") && $0.contains("no console prompt") },
                      emails.joined(separator: "\n---\n"))
    }

    func testAnUndeliverableNotificationIsReportedNotFatal() throws {
        let notifier = Notifier(smtp: "127.0.0.1:1")
        let message = Notifier.boardFailed("b1", host: "bench", reason: "test")
        let failures = notifier.send(message, email: "operator@lab.test", webhook: "not a url")
        XCTAssertEqual(failures.count, 2, "\(failures)")
        XCTAssertTrue(failures[0].hasPrefix("webhook not a url: 'not a url' is not an http(s) URL"), failures[0])
        XCTAssertTrue(failures[1].hasPrefix("email to operator@lab.test: cannot connect to the SMTP relay 127.0.0.1:1"), failures[1])
    }
}
