import Foundation
import XCTest

/// Device plugins staged from the build products as installed plugin folders
/// (manifest + library), the way scripts/setup stages them.
enum PluginStaging {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build products folder (test bundle, plugins, scenario program).
    static var products: URL {
        // On Linux the bundle URL is the products folder itself; elsewhere the .xctest sits inside it.
        let bundle = Bundle(for: Marker.self).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    private final class Marker {}

    /// The in-tree device plugins: name and the folder of their manifest.
    static let plugins = [("fnirsi", "Probes/fnirsi"), ("usbrelay", "Plugins/usbrelay"), ("host-probes", "Probes/host"),
                          ("gpio-relay", "Plugins/gpio-relay"), ("command-outlet", "Plugins/command-outlet"),
                          ("ftdi-relay", "Plugins/ftdi-relay"), ("ina2xx", "Probes/ina2xx"), ("ykush", "Plugins/ykush")]

    /// A fresh folder holding the named plugins; removed when the test ends.
    static func stage(_ names: [String], for test: XCTestCase, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-devices-\(UUID().uuidString)")
        test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        for name in names {
            guard let source = plugins.first(where: { $0.0 == name })?.1 else { throw XCTSkip("unknown plugin \(name)") }
            let library = products.appendingPathComponent("libmlbench-\(name).so")
            guard FileManager.default.fileExists(atPath: library.path) else {
                XCTFail("\(library.path) is not built (swift build --build-tests builds it)", file: file, line: line)
                throw XCTSkip("not built")
            }
            let target = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: repository.appendingPathComponent(source).appendingPathComponent("plugin.yaml"),
                                             to: target.appendingPathComponent("plugin.yaml"))
            try FileManager.default.createSymbolicLink(at: target.appendingPathComponent(library.lastPathComponent), withDestinationURL: library)
        }
        return folder
    }

    /// For tests that run the mlbench binary, whose search path always ends with
    /// the plugins installed beside it (scripts/setup stages them there): the
    /// `--plugin-path` arguments that add the named plugins not installed there
    /// (a name found twice would be an error).
    static func binaryArguments(_ names: [String], for test: XCTestCase) throws -> [String] {
        let installed = products.appendingPathComponent("mlbench-plugins")
        let missing = names.filter { !FileManager.default.fileExists(atPath: installed.appendingPathComponent("\($0)/plugin.yaml").path) }
        return missing.isEmpty ? [] : ["--plugin-path", try stage(missing, for: test).path]
    }
}
