/// A mistake in a configuration file (an experiment, an inventory, a plugin
/// manifest), named by file, line, column and field.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// The dotted path of the field ("measurement.min_iterations", "boards.jetson1.power").
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, field: String? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        if let field, !field.isEmpty { return "\(location): field '\(field)': \(message)" }
        return "\(location): \(message)"
    }
}
