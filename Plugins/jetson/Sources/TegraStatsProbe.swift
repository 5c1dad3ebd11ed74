import Foundation
import LinuxBoardKit
import MLBenchDeviceKit
import MLBenchPluginKit

/// `tegrastats` streamed as a probe: one long-lived `tegrastats --interval N` on the
/// board, each line stamped there with the board's CLOCK_MONOTONIC (`BoardSampler`)
/// and parsed in either format (JetPack 4 or 5/6, `TegraStatsLine`). Channels: each
/// rail's instantaneous power (W), each temperature sensor that reads (°C, as
/// `temp_<sensor>`), the GPU load (%) and the RAM in use (MB), as the first line shows them.
public final class TegraStatsProbe: Probe, @unchecked Sendable {
    let remote: RemoteLinuxBoard
    let intervalMs: Int
    private let slot = ProbeStreamSlot()
    private var channels: [ProbeChannel]?

    /// Settings: those of the board and `interval_ms`, tegrastats's own interval
    /// (default 100; the INA3221 rails probe, jetson-rails, is the 20 ms power source).
    public init(_ configuration: PluginConfiguration) throws {
        (remote, intervalMs) = try BoardSampler.settings(configuration, kind: "jetson", defaultIntervalMs: 100)
    }

    /// The quantities of one line, by channel name.
    static func values(_ line: TegraStatsLine) -> [(name: String, unit: String, value: Double)] {
        var values = line.railsMW.sorted { $0.key < $1.key }.map { (name: $0.key, unit: "W", value: $0.value.now / 1000) }
        values += line.temperaturesC.sorted { $0.key < $1.key }.map { (name: "temp_\($0.key)", unit: "°C", value: $0.value) }
        if let load = line.gpuLoadPercent { values.append((name: "gpu_load", unit: "%", value: Double(load))) }
        values.append((name: "ram_used", unit: "MB", value: Double(line.ramUsedMB)))
        return values
    }

    /// The channels, from one line of tegrastats, read once.
    private func probeChannels() throws -> [ProbeChannel] {
        if let channels { return channels }
        let text = try remote.step { try remote.ssh.output("timeout 5 tegrastats --interval 100 | head -n 1", step: "probe") }
        guard let line = text.split(whereSeparator: \.isNewline).first else {
            throw PluginFailure(.unsupported, "board '\(remote.name)': tegrastats printed nothing in 5 s")
        }
        let found = Self.values(try remote.step { try TegraStatsLine.parse(String(line)) }).map { ProbeChannel(name: $0.name, unit: $0.unit) }
        channels = found
        return found
    }

    public func describe() throws -> ProbeDescription {
        ProbeDescription(channels: try probeChannels(), rateHz: 1000 / Double(intervalMs), clock: "board")
    }

    public func start(_ deliver: @escaping @Sendable ([ProbeSample]) -> Void) throws {
        let index = Dictionary(uniqueKeysWithValues: try probeChannels().enumerated().map { ($0.element.name, UInt32($0.offset)) })
        let stream = try slot.open(device: "tegrastats of board '\(remote.name)'")
        // tegrastats writes through stdio: into a pipe, line-buffered only under stdbuf (coreutils, on L4T).
        let tool = "tegrastats --interval \(intervalMs)"
        let command = "if command -v stdbuf >/dev/null; then exec stdbuf -oL \(tool); else exec \(tool); fi"
        try BoardSampler.stream(BoardSampler.lines(of: command), on: remote, into: stream,
                                intervalMs: intervalMs, deliver: deliver) { time, rest, batch in
            let line = try TegraStatsLine.parse(String(rest))
            for value in Self.values(line) {
                // A sensor that appears later (or a rail that vanishes) is not a channel of this recording.
                if let channel = index[value.name] { batch.append(time, channel, value.value) }
            }
        }
    }

    public func stop() throws {
        try slot.close()
    }
}
