import Foundation
import MLBenchCore

/// Everything one experiment produced: the result bundle that is stored,
/// whether it succeeded or failed. Raw timings are always kept.
public struct ExperimentResult: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case succeeded
        case failed
    }

    public var id: String
    public var name: String
    public var status: Status
    /// Where it failed ("inputs", "build", "run", ...) and why.
    public var failure: Failure?
    public var user: String
    public var startedAt: Date
    public var finishedAt: Date
    /// The experiment file as written, for replay.
    public var experimentText: String
    public var experimentPath: String
    /// SHA-256 of the model, every input and every reference/deployed output file.
    public var checksums: [String: String]
    public var board: BoardRecord?
    public var toolchain: ToolchainRecord?
    public var reference: ToolchainRecord?
    public var warmUp: WarmUpRecord?
    public var measurement: MeasurementRecord?
    public var semanticPreservation: SemanticReport?
    /// What each step did, in order.
    public var log: [LogEntry]

    public struct Failure: Codable, Sendable, Equatable {
        public var stage: String
        public var reason: String
    }

    public struct BoardRecord: Codable, Sendable, Equatable {
        public var name: String
        public var plugin: String
        public var pluginVersion: String
        public var description: BoardDescription?
        public var conditions: ConditionsReport?
    }

    public struct ToolchainRecord: Codable, Sendable, Equatable {
        public var name: String
        public var plugin: String
        public var pluginVersion: String
        /// The exact version of the runtime behind it.
        public var version: String
        public var target: String
        public var options: JSONValue
        public var artifactSHA256: String?
        public var buildLog: String?
        /// The runner's greeting (runtime and version it reported).
        public var runner: String?
    }

    public struct WarmUpRecord: Codable, Sendable, Equatable {
        public var durationsNs: [Int64]
        public var analysis: WarmUpAnalysis
    }

    public struct MeasurementRecord: Codable, Sendable, Equatable {
        public var startsNs: [Int64]
        public var durationsNs: [Int64]
        public var summary: Summary
        public var peakMemoryBytes: Int64
        /// Why measuring stopped ("confidence interval reached", "maximum time", ...).
        public var stoppedBecause: String
    }

    public struct LogEntry: Codable, Sendable, Equatable {
        public var at: Date
        public var stage: String
        public var message: String
    }
}
