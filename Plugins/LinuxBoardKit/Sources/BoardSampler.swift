import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit

/// The sampler that runs on a Linux board for its on-board probes: one long-lived
/// SSH command (a Python loop, python3 being on every Jetson and PetaLinux image
/// with Vitis AI) printing one line per sample, `<board CLOCK_MONOTONIC ns> <values…>`.
/// Sampling on the board rather than one SSH round trip per sample keeps the rate
/// (20 ms for power is out of reach of a round trip per sample) and stamps each
/// sample with the board's clock, the clock its runner stamps iterations with.
public enum BoardSampler {
    /// `files PERIOD_MS PATH…`: reads every file each period (pread at offset 0: sysfs
    /// makes a fresh reading on each), stamped with the middle of the reads; a late
    /// tick is not caught up. `lines COMMAND`: runs COMMAND in the board's shell and
    /// stamps each line it prints.
    static let script = #"""
import os, subprocess, sys, time
out = sys.stdout
if sys.argv[1] == "files":
    period = int(sys.argv[2]) * 1000000
    paths = sys.argv[3:]
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    tick = time.monotonic_ns()
    while True:
        t0 = time.monotonic_ns()
        values = []
        for p, fd in zip(paths, fds):
            text = os.pread(fd, 256, 0).split()
            if not text:
                sys.exit("sampler: " + p + " is empty")
            values.append(text[0].decode())
        t1 = time.monotonic_ns()
        out.write("%d %s\n" % ((t0 + t1) // 2, " ".join(values)))
        out.flush()
        tick = max(tick + period, time.monotonic_ns())
        time.sleep(max(0, tick - time.monotonic_ns()) / 1e9)
else:
    child = subprocess.Popen(sys.argv[2], shell=True, stdout=subprocess.PIPE)
    for line in child.stdout:
        out.write("%d %s" % (time.monotonic_ns(), line.decode(errors="replace")))
        out.flush()
    sys.exit("sampler: '%s' ended with status %s" % (sys.argv[2], child.wait()))
"""#

    private struct Settings: Decodable {
        var intervalMs: Int?
    }

    /// A board probe's settings: those of the board (host, user, key, files_root, …),
    /// which it reaches as the board plugin does, and `interval_ms` (10 to 60000,
    /// `defaultIntervalMs` when not given).
    public static func settings(_ configuration: PluginConfiguration, kind: String,
                                defaultIntervalMs: Int) throws -> (remote: RemoteLinuxBoard, intervalMs: Int) {
        let keys = LinuxBoardSettings.keys.union(["interval_ms"])
        let common = try configuration.decodeSettings(LinuxBoardSettings.self, known: keys)
        let own = try configuration.decodeSettings(Settings.self, known: keys)
        let intervalMs = own.intervalMs ?? defaultIntervalMs
        guard (10...60_000).contains(intervalMs) else {
            throw PluginFailure(.invalidConfiguration, "setting 'interval_ms': \(intervalMs) is not between 10 and 60000")
        }
        return (try RemoteLinuxBoard(name: common.name ?? common.host ?? kind, settings: common), intervalMs)
    }

    /// The board command that samples `paths` every `intervalMs`.
    public static func files(_ paths: [String], intervalMs: Int) -> String {
        "exec python3 -u -c \(shellQuote(script)) files \(intervalMs) " + paths.map(shellQuote).joined(separator: " ")
    }

    /// The board command that stamps each line `command` prints.
    public static func lines(of command: String) -> String {
        "exec python3 -u -c \(shellQuote(script)) lines \(shellQuote(command))"
    }

    /// Streams the sampler `command` on `remote` into `stream`: `parse` turns the rest
    /// of each line (after the board's timestamp) into samples appended to the batch.
    /// The sampler's end, or a line that is not stamped, ends the stream with a device error.
    public static func stream(_ command: String, on remote: RemoteLinuxBoard, into stream: ProbeStream, intervalMs: Int,
                              deliver: @escaping @Sendable ([ProbeSample]) -> Void,
                              parse: @escaping (Int64, Substring, ProbeStream.Batch) throws -> Void) throws {
        let child = try remote.step { try remote.ssh.start(command, step: "probe") }
        let timeout = max(5, Double(intervalMs) / 250)
        stream.start(deliver: deliver, read: { batch in
            guard let line = try child.readLine(timeout: timeout) else {
                throw PluginFailure(.device, "the sampler on board '\(remote.name)' ended: \(child.stderr.suffix(300))")
            }
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let time = Int64(parts[0]) else {
                throw PluginFailure(.device, "a sampler line of board '\(remote.name)' is not '<ns> <values>': '\(line.prefix(120))'")
            }
            try parse(time, parts[1], batch)
        }, close: { child.terminate() })
    }
}

/// One quantity a board-file probe reports: its files and how their values make it.
public struct SampledChannel: Sendable {
    public var name: String
    public var unit: String
    public var files: [String]
    /// The channel's value from its files' numbers (path → number); nil when it has none.
    public var value: @Sendable ([String: Double]) -> Double?

    public init(name: String, unit: String, files: [String], value: @escaping @Sendable ([String: Double]) -> Double?) {
        self.name = name
        self.unit = unit
        self.files = files
        self.value = value
    }
}

/// A probe of board files sampled on the board (`BoardSampler`): power rails (in W;
/// INA3221 on a Jetson, INA226/INA260 on a Zynq) or thermal zones (in °C). The board
/// plugin says where the files are (`patterns`, `discover`). Timestamps are the
/// board's CLOCK_MONOTONIC (`clock: board`): the lab moves host-clock series onto them.
public final class BoardFilesProbe: Probe, @unchecked Sendable {
    let remote: RemoteLinuxBoard
    let intervalMs: Int
    private let patterns: [String]
    private let what: String
    private let discover: ([String: String]) -> [SampledChannel]
    private let slot = ProbeStreamSlot()
    private var channels: [SampledChannel]?

    /// Settings: those of the board (host, user, key, files_root, …) and `interval_ms`
    /// (`defaultIntervalMs` when not given). `what` names the files in messages.
    public init(_ configuration: PluginConfiguration, kind: String, what: String, defaultIntervalMs: Int, patterns: [String],
                discover: @escaping ([String: String]) -> [SampledChannel]) throws {
        (remote, intervalMs) = try BoardSampler.settings(configuration, kind: kind, defaultIntervalMs: defaultIntervalMs)
        self.patterns = patterns
        self.what = what
        self.discover = discover
    }

    /// On-board power rails, in W, every 20 ms unless `interval_ms` says otherwise.
    public static func rails(_ configuration: PluginConfiguration, kind: String, patterns: [String],
                             discover: @escaping ([String: String]) -> [RailChannel]) throws -> BoardFilesProbe {
        try BoardFilesProbe(configuration, kind: kind, what: "power rail", defaultIntervalMs: 20, patterns: patterns) { files in
            discover(files).map { rail in
                SampledChannel(name: rail.name, unit: "W", files: rail.files) { values in rail.milliwatts(values).map { $0 / 1000 } }
            }
        }
    }

    /// The thermal zones (`/sys/class/thermal/thermal_zone*`), in °C, every 100 ms
    /// unless `interval_ms` says otherwise; zones that do not read a number are left out.
    public static func thermal(_ configuration: PluginConfiguration, kind: String) throws -> BoardFilesProbe {
        try BoardFilesProbe(configuration, kind: kind, what: "thermal zone", defaultIntervalMs: 100,
                            patterns: ["/sys/class/thermal/thermal_zone*/type", "/sys/class/thermal/thermal_zone*/temp"]) { files in
            files.filter { $0.key.hasSuffix("/type") }.sorted { $0.key < $1.key }.compactMap { path, type in
                let temp = (path as NSString).deletingLastPathComponent + "/temp"
                let name = type.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !name.isEmpty, let text = files[temp], Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) != nil else { return nil }
                return SampledChannel(name: name, unit: "°C", files: [temp]) { $0[temp].map { $0 / 1000 } }
            }
        }
    }

    /// The channels found on the board, read once.
    private func sampledChannels() throws -> [SampledChannel] {
        if let channels { return channels }
        let found = discover(try remote.readFiles(patterns, step: "probe"))
        guard !found.isEmpty else {
            throw PluginFailure(.unsupported, "board '\(remote.name)': no \(what) in \(patterns.first ?? "sysfs")")
        }
        channels = found
        return found
    }

    public func describe() throws -> ProbeDescription {
        ProbeDescription(channels: try sampledChannels().map { ProbeChannel(name: $0.name, unit: $0.unit) }, rateHz: 1000 / Double(intervalMs),
                         clock: "board")
    }

    public func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        let channels = try sampledChannels()
        // One line per sample: the board's time, then the value of every file, in this order.
        var files = [String]()
        for file in channels.flatMap(\.files) where !files.contains(file) { files.append(file) }
        let stream = try slot.open(device: "\(what)s of board '\(remote.name)'")
        try BoardSampler.stream(BoardSampler.files(files.map(remote.file), intervalMs: intervalMs), on: remote, into: stream,
                                intervalMs: intervalMs, deliver: deliver) { time, rest, batch in
            let numbers = rest.split(separator: " ").map { Double($0) }
            guard numbers.count == files.count, numbers.allSatisfy({ $0 != nil }) else {
                throw PluginFailure(.device, "a \(self.what) sample is not \(files.count) numbers: '\(rest.prefix(120))'")
            }
            let values = Dictionary(uniqueKeysWithValues: zip(files, numbers.map { $0! }))
            for (index, channel) in channels.enumerated() {
                if let value = channel.value(values) { batch.append(time, UInt32(index), value) }
            }
        }
    }

    public func stop() throws {
        try slot.close()
    }
}
