import Foundation
import MLBenchPluginKit
import SerialDriver

/// What `profile%` tells about the harness and its model.
public struct HarnessProfile: Equatable, Sendable {
    public var profile: String
    public var model: String
    public var inputBytes: Int
    public var outputBytes: Int
    public var timer: String
}

/// One `infer N W%`: the time of each inference and the counters summed over them.
public struct HarnessRun: Equatable, Sendable {
    /// Microseconds per timed inference, from the board's own timer.
    public var lapsUs: [UInt64]
    /// CCNT, ICNT, M1CNT, M2CNT, M3CNT summed over the inferences; nil where the port has none.
    public var counters: [String: UInt64?]

    public static let counterNames = ["ccnt", "icnt", "m1cnt", "m2cnt", "m3cnt"]
}

/// The board side of the MLPerf-Tiny-style line protocol of `harness/` (see
/// mlbench_harness.h), over a serial port: each command ends with `%`, each
/// reply is `m-…`/`e-…` lines ending with `m-ready`.
///
/// Faults get bounded retries: a silent harness is poked again, a reply with
/// lines that are not the protocol (noise on the line, a wrong baud rate) is
/// asked again; after `attempts` the failure is classified and names the board and step.
public final class UARTHarness: @unchecked Sendable {
    public let board: String
    let port: SerialPort
    let attempts: Int
    /// Seconds a reply may take (per command; `infer` scales it by its count).
    let timeout: Double

    public init(board: String, port: SerialPort, attempts: Int = 3, timeout: Double = 5) {
        self.board = board
        self.port = port
        self.attempts = max(1, attempts)
        self.timeout = timeout
    }

    /// Waits for the banner (`m-boot-…` then `m-ready`) after a reset; a board
    /// whose banner went by before the port was opened is asked its name instead.
    public func waitReady(timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        if let banner = try? port.expect("m-ready\r?\n", timeout: min(timeout, 1)) {
            return banner.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var last: TransportFailure?
        repeat {
            do {
                let lines = try exchangeOnce("name", step: "reset", timeout: max(0.2, min(1, deadline.timeIntervalSinceNow)))
                return lines.joined(separator: " ")
            } catch let failure as TransportFailure {
                last = failure
            }
        } while Date() < deadline
        throw TransportFailure(kind: last?.kind ?? .timedOut, board: board, step: "reset",
                               detail: "no harness banner or answer on \(port.path) within \(timeout) s" + (last.map { "; last: \($0.detail)" } ?? ""))
    }

    public func name() throws -> String {
        let lines = try command("name", step: "run")
        guard let name = lines.compactMap({ Self.bracketed($0, "m-name-") }).first else {
            throw TransportFailure(kind: .garbage, board: board, step: "run", detail: "name% gave no m-name-[…]: \(lines)")
        }
        return name
    }

    public func profile() throws -> HarnessProfile {
        let lines = try command("profile", step: "run")
        func value(_ prefix: String) throws -> String {
            guard let value = lines.compactMap({ Self.bracketed($0, prefix) }).first else {
                throw TransportFailure(kind: .garbage, board: board, step: "run", detail: "profile% gave no \(prefix)[…]: \(lines)")
            }
            return value
        }
        guard let input = Int(try value("m-input-bytes-")), let output = Int(try value("m-output-bytes-")) else {
            throw TransportFailure(kind: .garbage, board: board, step: "run", detail: "profile% sizes are not numbers: \(lines)")
        }
        return HarnessProfile(profile: try value("m-profile-"), model: try value("m-model-"), inputBytes: input, outputBytes: output,
                              timer: try value("m-timer-"))
    }

    /// Loads one input: `db load N%`, then hex chunks (short enough for any UART buffer).
    public func load(_ bytes: [UInt8], chunk: Int = 256) throws {
        try command("db load \(bytes.count)", step: "load")
        var sent = 0
        var done = false
        while sent < bytes.count {
            let part = bytes[sent..<min(bytes.count, sent + chunk)]
            let lines = try command("db " + part.map { String(format: "%02x", $0) }.joined(), step: "load", retry: false)
            sent += part.count
            done = lines.contains("m-load-done")
        }
        guard done || bytes.isEmpty else {
            throw TransportFailure(kind: .garbage, board: board, step: "load", detail: "the harness did not confirm the \(bytes.count) bytes (no m-load-done)")
        }
    }

    /// `infer N W%`: N timed inferences after W untimed ones.
    public func infer(_ count: Int, warmup: Int = 0, perInferenceTimeout: Double = 1) throws -> HarnessRun {
        let lines = try command("infer \(count) \(warmup)", step: "measure",
                                timeout: timeout + Double(count + warmup) * perInferenceTimeout, retry: false)
        let laps = lines.compactMap { $0.hasPrefix("m-lap-us-") ? UInt64($0.dropFirst("m-lap-us-".count)) : nil }
        guard laps.count == count, lines.contains("m-infer-done") else {
            throw TransportFailure(kind: .garbage, board: board, step: "measure",
                                   detail: "infer \(count) gave \(laps.count) m-lap-us lines\(lines.contains("m-infer-done") ? "" : " and no m-infer-done")")
        }
        guard let raw = lines.compactMap({ Self.bracketed($0, "m-counters-") }).first else {
            throw TransportFailure(kind: .garbage, board: board, step: "measure", detail: "infer gave no m-counters-[…]")
        }
        let values = raw.split(separator: ",").map { $0 == "na" ? nil : UInt64($0) }
        guard values.count == HarnessRun.counterNames.count else {
            throw TransportFailure(kind: .garbage, board: board, step: "measure", detail: "m-counters-[\(raw)] does not hold 5 counters")
        }
        return HarnessRun(lapsUs: laps, counters: Dictionary(uniqueKeysWithValues: zip(HarnessRun.counterNames, values)))
    }

    /// `results%`: the output bytes of the last inference.
    public func results() throws -> [UInt8] {
        let lines = try command("results", step: "outputs")
        guard let hex = lines.compactMap({ Self.bracketed($0, "m-results-") }).first, hex.count % 2 == 0 else {
            throw TransportFailure(kind: .garbage, board: board, step: "outputs", detail: "results% gave no m-results-[hex]: \(lines.prefix(3))")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else {
                throw TransportFailure(kind: .garbage, board: board, step: "outputs", detail: "'\(hex[index..<next])' in m-results is not hex")
            }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    /// Sends a command and returns its reply lines (without `m-ready`); an
    /// `e-[…]` reply is the harness refusing, never retried. Silence and garbage are
    /// retried (when `retry`) up to `attempts` times.
    @discardableResult
    func command(_ text: String, step: String, timeout: Double? = nil, retry: Bool = true) throws -> [String] {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try exchangeOnce(text, step: step, timeout: timeout ?? self.timeout)
            } catch var failure as TransportFailure where failure.isRetryableHarnessFault {
                guard retry, attempt < attempts else {
                    failure.attempts = attempt
                    throw failure
                }
                // Whatever is left of a garbled reply must not be read as the next one.
                while let rest = try? port.read(timeout: 0.05), !rest.isEmpty {}
            }
        }
    }

    private func exchangeOnce(_ text: String, step: String, timeout: Double) throws -> [String] {
        do {
            try port.write(text + "%")
        } catch {
            throw TransportFailure(kind: .client, board: board, step: step, detail: "\(error)")
        }
        let reply: String
        do {
            reply = try port.expect("m-ready\r?\n", timeout: timeout)
        } catch let error as SerialError where error.errno == 0 {
            throw TransportFailure(kind: .timedOut, board: board, step: step, detail: "'\(text.prefix(40))%' got no m-ready: \(error.detail)")
        } catch {
            throw TransportFailure(kind: .client, board: board, step: step, detail: "\(error)")
        }
        // "\r\n" is one Character in Swift: split on any newline.
        let lines = reply.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }.dropLast()
        if let refusal = lines.first(where: { $0.hasPrefix("e-") }) {
            throw TransportFailure(kind: .command, board: board, step: step, detail: "the harness refused '\(text.prefix(40))%': \(refusal)")
        }
        if let garbage = lines.first(where: { !$0.hasPrefix("m-") }) {
            throw TransportFailure(kind: .garbage, board: board, step: step,
                                   detail: "'\(text.prefix(40))%' was answered with a line outside the protocol: '\(garbage.prefix(80))'")
        }
        return Array(lines)
    }

    /// "m-name-[x]" with prefix "m-name-" → "x".
    static func bracketed(_ line: String, _ prefix: String) -> String? {
        guard line.hasPrefix(prefix + "["), line.hasSuffix("]") else { return nil }
        return String(line.dropFirst(prefix.count + 1).dropLast())
    }
}

extension TransportFailure {
    /// Silence and garbage may be a glitch on the line; a refusal or a closed port is not.
    var isRetryableHarnessFault: Bool { kind == .timedOut || kind == .garbage }
}
