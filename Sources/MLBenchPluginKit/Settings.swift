import Foundation
import MLBenchCore

extension PluginConfiguration {
    /// Decodes the inventory settings into `T` (snake_case keys), refusing keys
    /// that `T` does not know — a typo in an inventory must not pass silently.
    public func decodeSettings<T: Decodable>(_ type: T.Type = T.self, known: Set<String>) throws -> T {
        let members: [String: JSONValue]
        switch settings {
        case .null: members = [:]
        case .object(let object): members = object
        default: throw PluginFailure(.invalidConfiguration, "settings must be a mapping, not \(settings)")
        }
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            let list = known.sorted().joined(separator: ", ")
            throw PluginFailure(.invalidConfiguration, "unknown setting '\(unknown)' (known: \(list.isEmpty ? "none" : list))")
        }
        do {
            return try JSONCoding.decoder().decode(T.self, from: JSONCoding.encoder().encode(JSONValue.object(members)))
        } catch let DecodingError.typeMismatch(expected, context) {
            throw PluginFailure(.invalidConfiguration, "setting '\(context.codingPath.map(\.stringValue).joined(separator: "."))': expected \(expected)")
        } catch {
            throw PluginFailure(.invalidConfiguration, "settings: \(error)")
        }
    }
}
