/// An error that crosses the plugin boundary: a status code of the C ABI and a message.
///
/// Plugins throw it (or any error, which the kit reports as `.failed`); the
/// core receives it back from every call into a plugin.
public struct PluginFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Mirrors the `MLB_ERROR_*` codes of `mlbench_plugin.h`.
    public enum Code: Int32, Sendable {
        case failed = 1
        case invalidRequest = 2
        case invalidConfiguration = 3
        case unsupported = 4
        case timeout = 5
        case device = 6
        case notReady = 7
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        switch code {
        case .failed: return message
        case .invalidRequest: return "invalid request: \(message)"
        case .invalidConfiguration: return "invalid configuration: \(message)"
        case .unsupported: return "unsupported: \(message)"
        case .timeout: return "timed out: \(message)"
        case .device: return "device error: \(message)"
        case .notReady: return "not ready: \(message)"
        }
    }
}
