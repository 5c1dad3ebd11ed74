import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Tells people what happened: the submitting user when their experiment finishes or
/// fails (a webhook and/or an email through the lab's SMTP relay), and the operator when
/// a board fails. A notification that cannot be delivered is reported to the caller (the
/// worker logs it) and never changes an experiment's outcome.
public struct Notifier: Sendable {
    /// The SMTP relay (`host:port`), plain SMTP without authentication: the lab's own relay.
    public var smtp: String?
    public var mailFrom: String
    /// Where hardware failures go.
    public var operatorEmail: String?
    public var operatorWebhook: String?

    public init(smtp: String? = nil, mailFrom: String = "mlbench@localhost", operatorEmail: String? = nil, operatorWebhook: String? = nil) {
        self.smtp = smtp
        self.mailFrom = mailFrom
        self.operatorEmail = operatorEmail
        self.operatorWebhook = operatorWebhook
    }

    /// What is sent: a subject and text for email, the same as JSON for webhooks.
    public struct Message: Sendable, Equatable {
        public var event: String
        public var subject: String
        public var text: String
        public var fields: [String: String]
    }

    /// The message about an experiment that ended (`succeeded`, `failed`, `aborted`).
    public static func finished(_ experiment: QueuedExperiment, state: QueueState, resultID: String?, note: String?) -> Message {
        var fields = ["experiment": experiment.id, "name": experiment.name, "user": experiment.user, "board": experiment.board,
                      "state": state.rawValue]
        fields["result"] = resultID
        fields["note"] = note
        let subject = "mlbench: \(experiment.name) \(state.rawValue) on \(experiment.board)"
        var text = "Experiment \(experiment.name) (\(experiment.id)) \(state.rawValue) on board \(experiment.board)."
        if let resultID { text += "\nResult: \(resultID) (mlbench results show \(resultID))" }
        if let note { text += "\n\(note)" }
        return Message(event: "experiment.\(state.rawValue)", subject: subject, text: text, fields: fields)
    }

    /// The message to the operator about a board that failed.
    public static func boardFailed(_ board: String, host: String, reason: String) -> Message {
        Message(event: "board.failed", subject: "mlbench: board \(board) on \(host) failed",
                text: "Board \(board) (host \(host)) had an infrastructure failure and waits for a health check:\n\(reason)",
                fields: ["board": board, "host": host, "reason": reason])
    }

    /// Sends `message` to each target; returns what could not be delivered, one line each.
    public func send(_ message: Message, email: String?, webhook: String?) -> [String] {
        var failures = [String]()
        if let webhook {
            do { try post(message, to: webhook) } catch { failures.append("webhook \(webhook): \(error)") }
        }
        if let email {
            do { try mail(message, to: email) } catch { failures.append("email to \(email): \(error)") }
        }
        return failures
    }

    /// POSTs the message as JSON and expects a 2xx answer within 10 s.
    func post(_ message: Message, to url: String) throws {
        guard let target = URL(string: url), target.scheme == "http" || target.scheme == "https" else {
            throw LabError.usage("'\(url)' is not an http(s) URL")
        }
        var request = URLRequest(url: target, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        var payload = message.fields
        payload["event"] = message.event
        payload["subject"] = message.subject
        request.httpBody = try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])
        let response = try HTTPExchange.send(request, peer: url)
        guard (200..<300).contains(response.status) else { throw LabError.usage("answered HTTP \(response.status)") }
    }

    /// Sends the message through the SMTP relay (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT).
    func mail(_ message: Message, to address: String) throws {
        guard let smtp else { throw LabError.usage("no SMTP relay is configured (--smtp HOST:PORT)") }
        let parts = smtp.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw LabError.usage("the SMTP relay '\(smtp)' is not HOST:PORT") }
        let session = try SMTPSession(host: String(parts[0]), port: port)
        defer { session.close() }
        try session.expect(220)
        try session.command("EHLO \(ProcessInfo.processInfo.hostName)", 250)
        try session.command("MAIL FROM:<\(mailFrom)>", 250)
        try session.command("RCPT TO:<\(address)>", 250)
        try session.command("DATA", 354)
        // Dot-stuffing: a line starting with "." gets another one.
        let body = message.text.components(separatedBy: "\n").map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n")
        let date = DateFormatter()
        date.locale = Locale(identifier: "en_US_POSIX")
        date.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        try session.command("From: \(mailFrom)\r\nTo: \(address)\r\nSubject: \(message.subject)\r\nDate: \(date.string(from: Date()))\r\n"
                            + "Content-Type: text/plain; charset=utf-8\r\n\r\n\(body)\r\n.", 250)
        try? session.command("QUIT", 221)
    }
}

/// One SMTP conversation over a TCP connection, with a 10 s timeout on each read and write.
private final class SMTPSession {
    private let socket: Int32
    private var buffer = [UInt8]()
    private let peer: String

    init(host: String, port: UInt16) throws {
        peer = "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw LabError.usage("cannot resolve the SMTP relay \(host)")
        }
        defer { freeaddrinfo(list) }
        var address: UnsafeMutablePointer<addrinfo>? = first
        var connected: Int32 = -1
        while let candidate = address, connected < 0 {
            let fd = Glibc.socket(candidate.pointee.ai_family, candidate.pointee.ai_socktype, candidate.pointee.ai_protocol)
            if fd >= 0 {
                var timeout = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                if connect(fd, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 { connected = fd } else { Glibc.close(fd) }
            }
            address = candidate.pointee.ai_next
        }
        guard connected >= 0 else { throw LabError.usage("cannot connect to the SMTP relay \(peer): \(String(cString: strerror(errno)))") }
        socket = connected
    }

    func close() { Glibc.close(socket) }

    func command(_ line: String, _ code: Int) throws {
        let bytes = Array((line + "\r\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw LabError.usage("the SMTP relay \(peer) closed the connection") }
            offset += sent
        }
        try expect(code, after: String(line.prefix(20)))
    }

    /// Reads a (possibly multi-line) reply and checks its code.
    func expect(_ code: Int, after: String = "connecting") throws {
        while true {
            let line = try readLine()
            guard line.count >= 3, let got = Int(line.prefix(3)) else { throw LabError.usage("the SMTP relay \(peer) answered '\(line)'") }
            if line.count > 3 && line[line.index(line.startIndex, offsetBy: 3)] == "-" { continue }
            guard got == code else { throw LabError.usage("the SMTP relay \(peer) answered '\(line)' to \(after)") }
            return
        }
    }

    private func readLine() throws -> String {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                buffer.removeSubrange(...end)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 1024)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, 1024, 0) }
            guard count > 0 else { throw LabError.usage("the SMTP relay \(peer) did not answer") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }
}
