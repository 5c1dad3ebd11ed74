import Foundation
import MLBenchCore
import Yams

/// A YAML configuration file, checked against its JSON Schema before it is
/// decoded, so that every mistake is reported with its line and field.
struct YAMLDocument: @unchecked Sendable {  // immutable after init
    let file: String
    let root: Node

    /// Reads and parses `path`; syntax errors carry the line.
    init(contentsOf path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, message: "cannot read the file: \((error as NSError).localizedDescription)")
        }
        try self.init(text: text, file: path)
    }

    init(text: String, file: String) throws {
        self.file = file
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigurationError(file: file, line: 1, message: "the file is empty")
            }
            root = node
        } catch let error as YamlError {
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                 .composer(_, let problem, let mark, _):
                throw ConfigurationError(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(problem)")
            default:
                throw ConfigurationError(file: file, message: "YAML: \(error)")
            }
        }
    }

    /// Validates against `schema`, then decodes `T`.
    func decode<T: Decodable>(_ type: T.Type, schema: JSONValue) throws -> T {
        try SchemaValidator(file: file).validate(root, against: schema, path: [])
        do {
            return try YAMLDecoder().decode(T.self, from: root)
        } catch let error as DecodingError {
            throw translate(error)
        }
    }

    /// The node at a coding path, for locating an error.
    func node(at path: [String]) -> Node? {
        var current: Node? = root
        for key in path {
            guard let node = current else { return nil }
            if let mapping = node.mapping {
                current = mapping[key]
            } else if let sequence = node.sequence, let index = Int(key), sequence.indices.contains(index) {
                current = sequence[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// An error about the field at `path`, with that field's line.
    func error(at path: [String], _ message: String) -> ConfigurationError {
        let mark = node(at: path)?.mark ?? node(at: Array(path.dropLast()))?.mark
        return ConfigurationError(file: file, line: mark?.line, column: mark?.column,
                                  field: path.joined(separator: "."), message: message)
    }

    private func translate(_ error: DecodingError) -> ConfigurationError {
        func keys(_ path: [CodingKey]) -> [String] { path.map { $0.intValue.map(String.init) ?? $0.stringValue } }
        switch error {
        case .keyNotFound(let key, let context):
            return self.error(at: keys(context.codingPath) + [key.stringValue], "is required")
        case .typeMismatch(let expected, let context):
            return self.error(at: keys(context.codingPath), "expected \(expected)")
        case .valueNotFound(let expected, let context):
            return self.error(at: keys(context.codingPath), "expected \(expected), found nothing")
        case .dataCorrupted(let context):
            return self.error(at: keys(context.codingPath), context.debugDescription)
        @unknown default:
            return ConfigurationError(file: file, message: "\(error)")
        }
    }
}

/// Checks a YAML node tree against the subset of JSON Schema our schemas use:
/// type, properties, required, additionalProperties, items, enum, minimum,
/// maximum, exclusiveMinimum, minItems, minProperties, pattern-free strings.
struct SchemaValidator {
    let file: String

    func validate(_ node: Node, against schema: JSONValue, path: [String]) throws {
        func fail(_ message: String, at node: Node? = nil) -> ConfigurationError {
            let mark = (node ?? nodeForMark).mark
            return ConfigurationError(file: file, line: mark?.line, column: mark?.column,
                                      field: path.joined(separator: "."), message: message)
        }
        let nodeForMark = node
        let types: [String]
        switch schema["type"] {
        case .string(let type): types = [type]
        case .array(let list): types = list.compactMap(\.stringValue)
        default: types = []
        }
        if !types.isEmpty, !types.contains(where: { matches(node, type: $0) }) {
            throw fail("expected \(types.map(article).joined(separator: " or ")), found \(describe(node))")
        }
        if case .array(let allowed)? = schema["enum"] {
            let value = node.string ?? ""
            if !allowed.contains(where: { $0.stringValue == value }) {
                throw fail("'\(value)' is not one of: \(allowed.compactMap(\.stringValue).joined(separator: ", "))")
            }
        }
        if let number = node.float, node.scalar != nil, types.contains(where: { $0 == "number" || $0 == "integer" }) {
            if let minimum = schema["minimum"]?.doubleValue, number < minimum {
                throw fail("\(formatted(number)) is below the minimum \(formatted(minimum))")
            }
            if let minimum = schema["exclusiveMinimum"]?.doubleValue, number <= minimum {
                throw fail("\(formatted(number)) must be greater than \(formatted(minimum))")
            }
            if let maximum = schema["maximum"]?.doubleValue, number > maximum {
                throw fail("\(formatted(number)) is above the maximum \(formatted(maximum))")
            }
        }
        if let mapping = node.mapping {
            let properties = schema["properties"]?.objectValue ?? [:]
            if case .array(let required)? = schema["required"] {
                for case .string(let name) in required where mapping[name] == nil {
                    throw fail("the field '\(name)' is required")
                }
            }
            if let minimum = schema["minProperties"]?.doubleValue, Double(mapping.count) < minimum {
                throw fail("needs at least \(Int(minimum)) entr\(minimum == 1 ? "y" : "ies")")
            }
            for (keyNode, valueNode) in mapping {
                let key = keyNode.string ?? ""
                if let propertySchema = properties[key] {
                    try validate(valueNode, against: propertySchema, path: path + [key])
                } else {
                    switch schema["additionalProperties"] {
                    case .bool(false)?:
                        let known = properties.keys.sorted().joined(separator: ", ")
                        throw ConfigurationError(file: file, line: keyNode.mark?.line, column: keyNode.mark?.column,
                                                 field: (path + [key]).joined(separator: "."),
                                                 message: "unknown field (known here: \(known))")
                    case .object(let members)?:
                        try validate(valueNode, against: .object(members), path: path + [key])
                    default:
                        break
                    }
                }
            }
        }
        if let sequence = node.sequence {
            if let minimum = schema["minItems"]?.doubleValue, Double(sequence.count) < minimum {
                throw fail("needs at least \(Int(minimum)) item\(minimum == 1 ? "" : "s")")
            }
            if let items = schema["items"] {
                for (index, item) in sequence.enumerated() {
                    try validate(item, against: items, path: path + [String(index)])
                }
            }
        }
    }

    private func matches(_ node: Node, type: String) -> Bool {
        switch type {
        case "object": return node.mapping != nil
        case "array": return node.sequence != nil
        // Any scalar reads as a string: `version: 1.20` means "1.20".
        case "string": return node.scalar != nil && node.null == nil
        case "integer": return node.scalar != nil && node.int != nil
        case "number": return node.scalar != nil && node.float != nil
        case "boolean": return node.scalar != nil && node.bool != nil
        case "null": return node.null != nil
        default: return true
        }
    }

    private func describe(_ node: Node) -> String {
        if node.mapping != nil { return "a mapping" }
        if node.sequence != nil { return "a list" }
        if node.null != nil { return "nothing" }
        return "'\(node.string ?? "")'"
    }

    private func article(_ type: String) -> String {
        switch type {
        case "object": return "a mapping"
        case "array": return "a list"
        case "integer": return "an integer"
        case "number": return "a number"
        case "boolean": return "true or false"
        case "string": return "a string"
        default: return type
        }
    }

    private func formatted(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
