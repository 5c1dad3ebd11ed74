import Foundation
import MLBenchDeviceKit
import MLBenchPluginKit

/// A Linux board's on-board power rails as a probe: one channel per rail, in W,
/// sampled on the board by a shell loop over the rail files and streamed back over
/// the board's SSH connection. The board plugin says where its rails are
/// (`patterns`, `discover`): INA3221 on a Jetson, INA226/INA260 on a Zynq.
///
/// Timestamps are the lab host's CLOCK_MONOTONIC when a line arrives: on a
/// stand-in board that is the runner's clock; on a real board it is offset from
/// the board's clock by the link's delay (a few ms on a LAN; not corrected yet).
public final class RailsProbe: Probe, @unchecked Sendable {
    struct Settings: Decodable {
        var intervalMs: Int?
    }

    let remote: RemoteLinuxBoard
    let intervalMs: Int
    private let patterns: [String]
    private let discover: ([String: String]) -> [RailChannel]
    private let slot = ProbeStreamSlot()
    private var channels: [RailChannel]?

    /// Settings: those of the board (host, user, key, files_root, …) and `interval_ms` (default 100).
    public init(_ configuration: PluginConfiguration, kind: String, patterns: [String],
                discover: @escaping ([String: String]) -> [RailChannel]) throws {
        let keys = LinuxBoardSettings.keys.union(["interval_ms"])
        let common = try configuration.decodeSettings(LinuxBoardSettings.self, known: keys)
        let own = try configuration.decodeSettings(Settings.self, known: keys)
        remote = try RemoteLinuxBoard(name: common.name ?? common.host ?? kind, settings: common)
        intervalMs = own.intervalMs ?? 100
        guard (10...60_000).contains(intervalMs) else {
            throw PluginFailure(.invalidConfiguration, "setting 'interval_ms': \(intervalMs) is not between 10 and 60000")
        }
        self.patterns = patterns
        self.discover = discover
    }

    /// The rails found on the board, read once.
    private func railChannels() throws -> [RailChannel] {
        if let channels { return channels }
        let found = discover(try remote.readFiles(patterns, step: "probe"))
        guard !found.isEmpty else {
            throw PluginFailure(.unsupported, "board '\(remote.name)': no power rail in \(patterns.first ?? "sysfs")")
        }
        channels = found
        return found
    }

    public func describe() throws -> ProbeDescription {
        ProbeDescription(channels: try railChannels().map { ProbeChannel(name: $0.name, unit: "W") }, rateHz: 1000 / Double(intervalMs))
    }

    public func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        let channels = try railChannels()
        // One line per sample: the values of every file, in this order.
        let files = channels.flatMap(\.files)
        let paths = files.map { shellQuote(remote.file($0)) }.joined(separator: " ")
        let pause = String(format: "%.3f", Double(intervalMs) / 1000)
        let child = try remote.step { try remote.ssh.start("while :; do echo $(cat \(paths)); sleep \(pause); done", step: "probe") }
        let stream = try slot.open(device: "rails of board '\(remote.name)'")
        let timeout = max(5, Double(intervalMs) / 250)
        stream.start(deliver: deliver, read: { batch in
            guard let line = try child.readLine(timeout: timeout) else {
                throw PluginFailure(.device, "the sampling loop on the board ended: \(child.stderr.suffix(300))")
            }
            let now = monotonicNanoseconds()
            let numbers = line.split(separator: " ").map { Double($0) }
            guard numbers.count == files.count, numbers.allSatisfy({ $0 != nil }) else {
                throw PluginFailure(.device, "a rail sample is not \(files.count) numbers: '\(line.prefix(120))'")
            }
            let values = Dictionary(zip(files, numbers.map { $0! }), uniquingKeysWith: { first, _ in first })
            for (index, channel) in channels.enumerated() {
                if let milliwatts = channel.milliwatts(values) { batch.append(now, UInt32(index), milliwatts / 1000) }
            }
        }, close: { child.terminate() })
    }

    public func stop() throws {
        try slot.close()
    }
}
