/// An error of the lab itself (not of a plugin or a configuration file).
public enum LabError: Error, Sendable, Equatable, CustomStringConvertible {
    case environment(String)
    case inventory(String)
    case store(String)
    case usage(String)

    public var description: String {
        switch self {
        case .environment(let message): return "toolchain environment: \(message)"
        case .inventory(let message): return "inventory: \(message)"
        case .store(let message): return "result store: \(message)"
        case .usage(let message): return message
        }
    }
}
