import Foundation
import MLBench
import MLBenchCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Plugins built outside the mlbench package — the C example with `make`, the
/// Swift example as a package of its own — loaded by the unmodified `mlbench`
/// binary, run as a subprocess exactly as an operator runs it. Every loader
/// error must name the plugin and the file concerned.
///
/// Needs `cc`, `make` and `swift`; a missing one fails the test with a plain
/// message (nothing is skipped). The Swift example is built once into the build
/// folder and rebuilt incrementally after that, so that `swift test --parallel`
/// (one process per test) does not build it once per test.
final class PluginLoadingTests: XCTestCase {
    // MARK: - Cases: both examples load

    func testCAndSwiftPluginsAreListedOkWithTheirVersions() throws {
        let pluginPath = try stageExamples()
        let outcome = try mlbench(["plugins", "list", "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        let rows = Self.tableRows(outcome.stdout)
        let cBoard = try XCTUnwrap(rows.first { $0["NAME"] == "c-board" }, "c-board is not listed:\n\(outcome.output)")
        XCTAssertEqual(cBoard["VERSION"], "1.0.0", outcome.output)
        XCTAssertEqual(cBoard["ABI"], "1", outcome.output)
        XCTAssertEqual(cBoard["PROVIDES"], "board:c-board", outcome.output)
        XCTAssertEqual(cBoard["STATUS"], "ok", outcome.output)
        XCTAssertEqual(cBoard["LIBRARY"], path(pluginPath, "c-board/libmlbench-c-board.so"), outcome.output)
        let swiftBoard = try XCTUnwrap(rows.first { $0["NAME"] == "swift-board" }, "swift-board is not listed:\n\(outcome.output)")
        XCTAssertEqual(swiftBoard["VERSION"], "1.1.0", outcome.output)
        XCTAssertEqual(swiftBoard["ABI"], "1", outcome.output)
        XCTAssertEqual(swiftBoard["PROVIDES"], "board:swift-board", outcome.output)
        XCTAssertEqual(swiftBoard["STATUS"], "ok", outcome.output)
        XCTAssertFalse(outcome.stdout.contains("c-board'") || outcome.stdout.contains("swift-board'"),
                       "no problem may be reported about the examples:\n\(outcome.output)")
    }

    func testInspectLoadsBothPlugins() throws {
        let pluginPath = try stageExamples()
        for (name, version) in [("c-board", "1.0.0"), ("swift-board", "1.1.0")] {
            let outcome = try mlbench(["plugins", "inspect", name, "--plugin-path", pluginPath.path])
            XCTAssertEqual(outcome.status, 0, outcome.output)
            XCTAssertTrue(outcome.stdout.contains("name:        \(name)\n"), outcome.output)
            XCTAssertTrue(outcome.stdout.contains("folder:      \(path(pluginPath, name))\n"), outcome.output)
            XCTAssertTrue(outcome.stdout.contains("board '\(name)' (resets itself)"), outcome.output)
            XCTAssertTrue(outcome.stdout.contains("loaded:      ok — the library's descriptor says '\(name)' \(version):"), outcome.output)
        }
    }

    func testLabCheckCreatesBothBoardsWithTheirSettings() throws {
        let pluginPath = try stageExamples()
        let inventory = try write("inventory.yaml", """
            boards:
              c:
                plugin: c-board
                settings: {work_root: \(path(testFolder, "work-c"))}
              swift:
                plugin: swift-board
                settings: {work_root: \(path(testFolder, "work-swift"))}
            toolchains: {}
            """)
        let outcome = try mlbench(["lab", "check", "--inventory", inventory.path, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 0, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("2 board(s)"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("ok: every entry resolves to a plugin and every instance was created"), outcome.output)
    }

    /// Every board operation of both examples, called through the core's own
    /// proxy (the JSON the core really sends, decoded into the core's types).
    func testEveryBoardOperationOfBothExamplesThroughTheCore() throws {
        let pluginPath = try stageExamples()
        let catalog = PluginCatalog(searchPath: [pluginPath.path])
        XCTAssertEqual(catalog.problems, [])
        let payload = try write("model.bin", "weights")
        for name in ["c-board", "swift-board"] {
            let plugin = try catalog.load(name)
            // Quotes, a backslash and non-ASCII text must survive both ways through JSON.
            let workRoot = folder("work \(name) \"q\" \\ é")
            let board = try PluginBoard(plugin: plugin, kind: nil, configuration: PluginConfiguration(
                kind: "", pluginDirectory: plugin.discovered.directory, settings: .object(["work_root": .string(workRoot.path)])))

            let description = try board.describe()
            XCTAssertFalse(description.name.isEmpty, name)
            XCTAssertFalse(description.architecture.isEmpty, name)
            XCTAssertEqual(description.memories.first?.name, "ram", name)
            XCTAssertGreaterThan(description.memories.first?.sizeBytes ?? 0, 0, name)
            XCTAssertTrue(try board.reset(ResetRequest(timeoutMs: 1000)).ready, name)
            let conditions = try board.conditions(ConditionsRequest())
            XCTAssertEqual(conditions.applied, [:], name)
            XCTAssertNotNil(conditions.observed["kernel"], name)
            XCTAssertThrowsError(try board.conditions(ConditionsRequest(apply: ["governor": "performance"]))) {
                XCTAssertTrue("\($0)".contains("plugin '\(name)' (\(name)) conditions: unsupported: condition 'governor'"), "\($0)")
            }

            let deployment = try board.deploy(DeployRequest(files: [DeployFile(source: payload.path, name: "model.bin")]))
            XCTAssertTrue(deployment.directory.hasPrefix(workRoot.path + "/"), "\(name): \(deployment.directory)")
            XCTAssertEqual(try String(contentsOfFile: deployment.directory + "/model.bin", encoding: .utf8), "weights", name)
            let fetched = folder("fetched-\(name)")
            try board.fetch(FetchRequest(directory: deployment.directory, names: ["model.bin"], destination: fetched.path))
            XCTAssertEqual(try String(contentsOf: fetched.appendingPathComponent("model.bin"), encoding: .utf8), "weights", name)

            XCTAssertThrowsError(try board.deploy(DeployRequest(files: [DeployFile(source: payload.path, name: "../escape")]))) {
                XCTAssertTrue("\($0)".contains("invalid request: deploy: '../escape' is not a plain file name"), "\($0)")
            }
            XCTAssertThrowsError(try board.fetch(FetchRequest(directory: "/etc", names: ["hostname"], destination: fetched.path))) {
                XCTAssertTrue("\($0)".contains("'/etc' is not a deployment of this board"), "\($0)")
            }
            XCTAssertThrowsError(try board.startRunner(RunnerLaunch(command: ["true"], environment: [:], directory: deployment.directory,
                                                                   startTimeoutMs: 1000))) {
                XCTAssertTrue("\($0)".contains("plugin '\(name)' (\(name)) start_runner: unsupported: start_runner: the \(name) example does not run runners"), "\($0)")
            }

            try board.cleanup(CleanupRequest(directory: deployment.directory))
            XCTAssertFalse(FileManager.default.fileExists(atPath: deployment.directory), name)
            XCTAssertNoThrow(try board.cleanup(CleanupRequest(directory: deployment.directory)), "cleanup twice is fine")
            XCTAssertThrowsError(try board.cleanup(CleanupRequest(directory: workRoot.path)), "only deployments are removed")
            XCTAssertTrue(FileManager.default.fileExists(atPath: workRoot.path), name)
        }
    }

    // MARK: - Cases: loader errors name the plugin and the file

    func testMissingLibraryIsNamed() throws {
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board"), library: nil)
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        try expectLoadError("c-board", pluginPath, contains: [
            "plugin 'c-board': its library \(library) is missing"])
    }

    func testTextFileNamedLikeALibraryIsNotASharedObject() throws {
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board"), library: nil)
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        try "this is not a shared object\n".write(toFile: library, atomically: true, encoding: .utf8)
        try expectLoadError("c-board", pluginPath, contains: [
            "plugin 'c-board': \(library) is not a shared object (no ELF header)"])

        // `plugins list` shows it as an error and says why, without failing the others.
        let list = try mlbench(["plugins", "list", "--plugin-path", pluginPath.path])
        XCTAssertEqual(list.status, 1, "a plugin path with problems exits 1:\n\(list.output)")
        XCTAssertEqual(Self.tableRows(list.stdout).first { $0["NAME"] == "c-board" }?["STATUS"], "error", list.output)
        XCTAssertTrue(list.stdout.contains("problems:"), list.output)
        XCTAssertTrue(list.stdout.contains("\(library) is not a shared object"), list.output)
    }

    func testLibraryWithoutEntrySymbolIsNamed() throws {
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board"), library: try Fixtures.noEntryLibrary.get())
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        try expectLoadError("c-board", pluginPath, contains: [
            "plugin 'c-board': \(library) does not export the entry symbol mlbench_plugin_entry"])
    }

    func testABIVersionMismatchNamesBothVersions() throws {
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board"), library: try Fixtures.cBoardABI2.get())
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        let message = try expectLoadError("c-board", pluginPath, contains: ["plugin 'c-board': \(library)", "ABI version 2", "ABI version 1"])
        XCTAssertTrue(message.contains("built for plugin ABI version 2, but this mlbench speaks ABI version 1"), message)
    }

    func testManifestAndDescriptorDisagreeingOnTheVersion() throws {
        let pluginPath = folder("plugins")
        let manifest = try Self.exampleManifest("c-board").replacingOccurrences(of: "version: 1.0.0", with: "version: 9.9.9")
        try stage(pluginPath, "c-board", manifest: manifest, library: try Fixtures.cBoard.get())
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        try expectLoadError("c-board", pluginPath, contains: [
            "plugin 'c-board': the manifest and the descriptor of \(library) disagree",
            "the manifest says version 9.9.9, the library 1.0.0"])
    }

    func testUnresolvedLibraryDependencyQuotesTheDynamicLoader() throws {
        // libdep.so, and a c-board linked against it (found through its rpath).
        let dependencyFolder = folder("dependency")
        let source = folder("dependency-source")
        try "int mlbench_test_dependency_answer(void) { return 42; }\n"
            .write(to: source.appendingPathComponent("dep.c"), atomically: true, encoding: .utf8)
        try """
            extern int mlbench_test_dependency_answer(void);
            __attribute__((constructor)) static void use_dependency(void) { (void)mlbench_test_dependency_answer(); }

            """.write(to: source.appendingPathComponent("uses_dep.c"), atomically: true, encoding: .utf8)
        let dependency = dependencyFolder.appendingPathComponent("libdep.so")
        try Self.build([try Tools.cc(), "-shared", "-fPIC", "-o", dependency.path, source.appendingPathComponent("dep.c").path])
        let plugin = source.appendingPathComponent("libmlbench-c-board.so")
        try Self.build([try Tools.cc(), "-shared", "-fPIC", "-fvisibility=hidden", "-I", Self.includeFolder.path,
                        "-o", plugin.path, Self.examples.appendingPathComponent("c-board/c_board.c").path,
                        source.appendingPathComponent("uses_dep.c").path,
                        "-L", dependencyFolder.path, "-ldep", "-Wl,-rpath," + dependencyFolder.path])
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board") + "requires:\n  libraries: [libdep.so]\n", library: plugin)

        // With libdep.so in place the plugin loads: the failure below is the dependency's.
        let loads = try mlbench(["plugins", "inspect", "c-board", "--plugin-path", pluginPath.path])
        XCTAssertEqual(loads.status, 0, loads.output)
        XCTAssertTrue(loads.stdout.contains("requires:    libdep.so"), loads.output)

        try FileManager.default.removeItem(at: dependency)
        let library = path(pluginPath, "c-board/libmlbench-c-board.so")
        try expectLoadError("c-board", pluginPath, contains: [
            "plugin 'c-board': \(library) needs a library that cannot be resolved",
            "libdep.so: cannot open shared object file"])
    }

    func testTwoPluginsWithTheSameNameAreBothNamed() throws {
        let pluginPath = folder("plugins")
        let manifest = try Self.exampleManifest("c-board")
        try stage(pluginPath, "c-board-one", manifest: manifest, library: try Fixtures.cBoard.get())
        try stage(pluginPath, "c-board-two", manifest: manifest, library: try Fixtures.cBoard.get())
        let message = "two plugins are named 'c-board': \(path(pluginPath, "c-board-one")) and \(path(pluginPath, "c-board-two"))"
        try expectLoadError("c-board", pluginPath, contains: [message])
        let list = try mlbench(["plugins", "list", "--plugin-path", pluginPath.path])
        XCTAssertTrue(list.stdout.contains(message), list.output)
        XCTAssertNil(Self.tableRows(list.stdout).first { $0["NAME"] == "c-board" }, "a duplicated name must not be listed as usable:\n\(list.output)")
    }

    func testMalformedManifestsReportFileAndLine() throws {
        let pluginPath = folder("plugins")
        // Line 8 is indented wrongly: a YAML syntax error.
        let syntax = try stage(pluginPath, "syntax", manifest: """
            name: syntax
            version: 1.0.0
            abi_version: 1
            library: libsyntax.so
            provides:
              - role: board
                kind: syntax
               resets_itself: true

            """, library: nil)
        // Line 3 has the wrong type: a schema error.
        let schema = try stage(pluginPath, "schema", manifest: """
            name: schema
            version: 1.0.0
            abi_version: one
            library: libschema.so
            provides:
              - {role: board, kind: schema}

            """, library: nil)
        // Line 6 names a field the manifest does not have.
        let unknown = try stage(pluginPath, "unknown", manifest: """
            name: unknown
            version: 1.0.0
            abi_version: 1
            library: libunknown.so
            provides: [{role: board, kind: unknown}]
            licence: MIT

            """, library: nil)
        let outcome = try mlbench(["plugins", "list", "--plugin-path", pluginPath.path])
        let manifest = { (folder: URL) in folder.appendingPathComponent("plugin.yaml").standardizedFileURL.path }
        XCTAssertTrue(outcome.stdout.contains("invalid plugin manifest: \(manifest(syntax)):8:"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("YAML syntax"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("invalid plugin manifest: \(manifest(schema)):3:"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("field 'abi_version': expected an integer, found 'one'"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("invalid plugin manifest: \(manifest(unknown)):6:"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("field 'licence': unknown field"), outcome.output)
    }

    // MARK: - Cases: `mlbench lab check`

    func testLabCheckNamesAnUnknownPlugin() throws {
        let pluginPath = try stageExamples(swift: false)
        let inventory = try write("inventory.yaml", """
            boards:
              ghost:
                plugin: no-such-plugin
            toolchains: {}
            """)
        let outcome = try mlbench(["lab", "check", "--inventory", inventory.path, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("error: \(inventory.path):3 boards.ghost: no plugin named 'no-such-plugin' in the plugin path (\(pluginPath.path):"),
                      outcome.output)
    }

    func testLabCheckNamesAnUnknownSetting() throws {
        let pluginPath = try stageExamples()
        let inventory = try write("inventory.yaml", """
            boards:
              c:
                plugin: c-board
                settings:
                  work_root: \(path(testFolder, "work"))
                  colour: blue
              swift:
                plugin: swift-board
                settings: {speed: 3}
            toolchains: {}
            """)
        let outcome = try mlbench(["lab", "check", "--inventory", inventory.path, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.stdout.contains(
            "error: \(inventory.path):3 boards.c: plugin 'c-board' (c-board) create: invalid configuration: unknown setting 'colour' (known: work_root)"),
            outcome.output)
        XCTAssertTrue(outcome.stdout.contains(
            "error: \(inventory.path):8 boards.swift: plugin 'swift-board' (swift-board) create: invalid configuration: unknown setting 'speed' (known: work_root)"),
            outcome.output)
    }

    func testLabCheckRefusesABoardWithoutAWayToResetIt() throws {
        let pluginPath = folder("plugins")
        let manifest = try Self.exampleManifest("c-board").replacingOccurrences(of: "resets_itself: true", with: "resets_itself: false")
        XCTAssertTrue(manifest.contains("resets_itself: false"), "the c-board manifest no longer says resets_itself")
        try stage(pluginPath, "c-board", manifest: manifest, library: try Fixtures.cBoard.get())
        let inventory = try write("inventory.yaml", """
            boards:
              bench-1:
                plugin: c-board
            toolchains: {}
            """)
        let outcome = try mlbench(["lab", "check", "--inventory", inventory.path, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("error: \(inventory.path):3 boards.bench-1: has no way to reset it"), outcome.output)
    }

    func testLabCheckNamesAPowerSwitchThatDoesNotExist() throws {
        let pluginPath = try stageExamples(swift: false)
        let inventory = try write("inventory.yaml", """
            boards:
              bench-1:
                plugin: c-board
                power: {switch: pdu-7, outlet: "3"}
            toolchains: {}
            """)
        let outcome = try mlbench(["lab", "check", "--inventory", inventory.path, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 1, outcome.output)
        XCTAssertTrue(outcome.stdout.contains("boards.bench-1.power.switch: no power switch named 'pdu-7' in power_switches"), outcome.output)
        XCTAssertTrue(outcome.stdout.contains("error: \(inventory.path):4 "), outcome.output)
    }

    // MARK: - Helpers of one test

    /// This test's own folder (a fresh one per test).
    private var testFolder: URL!

    override func setUpWithError() throws {
        let name = self.name.filter { $0.isLetter || $0.isNumber }
        testFolder = try Fixtures.workspace.get().appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").standardizedFileURL
        try FileManager.default.createDirectory(at: testFolder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let testFolder { try? FileManager.default.removeItem(at: testFolder) }
    }

    override class func tearDown() {
        if case .success(let workspace) = Fixtures.workspace { try? FileManager.default.removeItem(at: workspace) }
        super.tearDown()
    }

    /// A new folder inside this test's folder.
    private func folder(_ name: String) -> URL {
        let url = testFolder.appendingPathComponent(name, isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private func path(_ base: URL, _ relative: String) -> String {
        base.appendingPathComponent(relative).standardizedFileURL.path
    }

    private func write(_ name: String, _ text: String) throws -> URL {
        let url = testFolder.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A plugin folder: `pluginPath/folder/plugin.yaml` and the library, copied
    /// under the name the manifest gives.
    @discardableResult
    private func stage(_ pluginPath: URL, _ folder: String, manifest: String, library: URL?) throws -> URL {
        let directory = pluginPath.appendingPathComponent(folder, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try manifest.write(to: directory.appendingPathComponent("plugin.yaml"), atomically: true, encoding: .utf8)
        if let library {
            let name = manifest.split(separator: "\n").first { $0.hasPrefix("library:") }
                .map { $0.dropFirst("library:".count).trimmingCharacters(in: .whitespaces) } ?? library.lastPathComponent
            try FileManager.default.copyItem(at: library, to: directory.appendingPathComponent(name))
        }
        return directory
    }

    /// A plugin path holding the two examples as built, with their own manifests.
    private func stageExamples(swift: Bool = true) throws -> URL {
        let pluginPath = folder("plugins")
        try stage(pluginPath, "c-board", manifest: try Self.exampleManifest("c-board"), library: try Fixtures.cBoard.get())
        if swift {
            try stage(pluginPath, "swift-board", manifest: try Self.exampleManifest("swift-board"), library: try Fixtures.swiftBoard.get())
        }
        return pluginPath
    }

    private struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// Runs the built `mlbench` with a fresh MLBENCH_HOME and no plugin path or
    /// inventory from the environment.
    private func mlbench(_ arguments: [String]) throws -> Outcome {
        let executable = try Fixtures.mlbench.get()
        var environment = ProcessInfo.processInfo.environment
        environment["MLBENCH_HOME"] = testFolder.appendingPathComponent("home").path
        environment.removeValue(forKey: "MLBENCH_PLUGIN_PATH")
        environment.removeValue(forKey: "MLBENCH_INVENTORY")
        let result = try ChildProcess.run([executable.path] + arguments, environment: environment, timeout: 60)
        return Outcome(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    /// `mlbench plugins inspect NAME` must fail with exit status 2 and an error
    /// containing every fragment; returns the error text.
    @discardableResult
    private func expectLoadError(_ name: String, _ pluginPath: URL, contains fragments: [String],
                                 file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let outcome = try mlbench(["plugins", "inspect", name, "--plugin-path", pluginPath.path])
        XCTAssertEqual(outcome.status, 2, outcome.output, file: file, line: line)
        XCTAssertTrue(outcome.stderr.hasPrefix("error: "), outcome.output, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(outcome.stderr.contains(fragment), "missing '\(fragment)' in:\n\(outcome.output)", file: file, line: line)
        }
        return outcome.stderr
    }

    /// The rows of the table `plugins list` prints, cut at the header's columns.
    private static func tableRows(_ text: String) -> [[String: String]] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let headerIndex = lines.firstIndex(where: { $0.hasPrefix("NAME ") }) else { return [] }
        let header = Array(lines[headerIndex])
        var columns = [(name: String, start: Int)]()
        for index in header.indices where header[index] != " " && (index == 0 || header[index - 1] == " ") {
            let name = String(header[index...].prefix { $0 != " " })
            columns.append((name, index))
        }
        var rows = [[String: String]]()
        for line in lines[(headerIndex + 1)...] {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            let characters = Array(line)
            var row = [String: String]()
            for (position, column) in columns.enumerated() {
                let end = position + 1 < columns.count ? columns[position + 1].start : characters.count
                let start = min(column.start, characters.count)
                row[column.name] = String(characters[start..<max(start, min(end, characters.count))]).trimmingCharacters(in: .whitespaces)
            }
            rows.append(row)
        }
        return rows
    }

    // MARK: - What is built once per process

    private static let repository = MLBenchBinary.repository
    private static let examples = repository.appendingPathComponent("Examples/plugins")
    private static let includeFolder = repository.appendingPathComponent("Sources/CMLBenchPlugin/include")

    private static func exampleManifest(_ name: String) throws -> String {
        try String(contentsOf: examples.appendingPathComponent("\(name)/plugin.yaml"), encoding: .utf8)
    }

    struct FixtureFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a build command; a failure carries its output.
    @discardableResult
    private static func build(_ command: [String], environment: [String: String]? = nil, directory: String? = nil,
                              timeout: Double = 120) throws -> String {
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try ChildProcess.run(command, environment: environment, directory: directory, timeout: timeout)
        } catch {
            throw FixtureFailure(description: "\(command.joined(separator: " ")) could not run: \(error)")
        }
        guard result.status == 0 else {
            throw FixtureFailure(description: "\(command.joined(separator: " ")) failed with status \(result.status):\n\(result.stdout)\(result.stderr)")
        }
        return result.stdout
    }

    /// The build tools, found on PATH. None may be missing: the test fails
    /// with a plain message instead of being skipped.
    enum Tools {
        static func cc() throws -> String { try find("cc", purpose: "the C plugin examples are built with it") }
        static func make() throws -> String { try find("make", purpose: "Examples/plugins/c-board is built with its Makefile") }
        static func swift() throws -> String {
            if let found = try? find("swift", purpose: "") { return found }
            // Not on PATH: the toolchain whose runtime this test process uses.
            let maps = (try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8)) ?? ""
            if let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("/libswiftCore.so") }),
               let start = line.firstIndex(of: "/") {
                // <toolchain>/usr/lib/swift/linux/libswiftCore.so -> <toolchain>/usr/bin/swift
                let candidate = URL(fileURLWithPath: String(line[start...])).deletingLastPathComponent()
                    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                    .appendingPathComponent("bin/swift").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
            throw FixtureFailure(description: "swift is not on PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? "")): the Swift plugin example is built with it")
        }

        private static func find(_ tool: String, purpose: String) throws -> String {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            for folder in path.split(separator: ":") {
                let candidate = "\(folder)/\(tool)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
            throw FixtureFailure(description: "\(tool) is not on PATH (\(path)): \(purpose)")
        }
    }

    enum Fixtures {
        /// A folder for this process, removed when the class is done.
        static let workspace = Result<URL, Error> {
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("mlbench-plugin-loading-\(getpid())-\(UUID().uuidString.prefix(8))").standardizedFileURL
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            return url
        }

        /// The `mlbench` executable beside this test bundle in the products folder.
        static let mlbench = Result<URL, Error> {
            guard let executable = MLBenchBinary.builtExecutable else {
                throw FixtureFailure(description: "the mlbench executable was not found beside the test bundle (\(MLBenchBinary.executable.path)); `swift test` builds it with the tests")
            }
            return executable
        }

        /// The C example built with its own Makefile, from a copy of its folder.
        static let cBoard = Result<URL, Error> { try buildCBoard(folder: "c-board", flags: nil) }

        /// The C example declaring ABI version 2 in its descriptor.
        static let cBoardABI2 = Result<URL, Error> { try buildCBoard(folder: "c-board-abi2", flags: "-DC_BOARD_ABI_VERSION=2") }

        /// A shared object without the entry symbol.
        static let noEntryLibrary = Result<URL, Error> {
            let folder = try workspace.get().appendingPathComponent("no-entry")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let source = folder.appendingPathComponent("no_entry.c")
            try "int not_the_entry(void) { return 0; }\n".write(to: source, atomically: true, encoding: .utf8)
            let library = folder.appendingPathComponent("libmlbench-c-board.so")
            try PluginLoadingTests.build([try Tools.cc(), "-shared", "-fPIC", "-o", library.path, source.path])
            return library
        }

        private static func buildCBoard(folder name: String, flags: String?) throws -> URL {
            let folder = try workspace.get().appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for file in ["c_board.c", "Makefile", "plugin.yaml"] {
                try FileManager.default.copyItem(at: examples.appendingPathComponent("c-board/\(file)"), to: folder.appendingPathComponent(file))
            }
            var command = [try Tools.make(), "-C", folder.path, "MLBENCH_INCLUDE=\(includeFolder.path)", "CC=\(try Tools.cc())"]
            if let flags { command.append("CPPFLAGS=\(flags)") }
            try PluginLoadingTests.build(command)
            let library = folder.appendingPathComponent("libmlbench-c-board.so")
            guard FileManager.default.fileExists(atPath: library.path) else {
                throw FixtureFailure(description: "make in \(folder.path) did not produce \(library.lastPathComponent)")
            }
            return library
        }

        /// The Swift example, built as a package of its own (a copy of its folder,
        /// depending on this repository through MLBENCH_SOURCE). The copy and its
        /// scratch folder live in the products folder and are reused, so later
        /// builds are incremental; a lock keeps parallel test processes from
        /// building at the same time.
        static let swiftBoard = Result<URL, Error> {
            let cache = try mlbench.get().deletingLastPathComponent().appendingPathComponent("plugin-loading-tests")
            let package = cache.appendingPathComponent("swift-board")
            let scratch = cache.appendingPathComponent("swift-board-build")
            try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
            let lock = open(cache.appendingPathComponent("lock").path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard lock >= 0 else { throw FixtureFailure(description: "cannot open a lock in \(cache.path): \(String(cString: strerror(errno)))") }
            defer { close(lock) }
            while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
            defer { flock(lock, LOCK_UN) }

            try mirror(examples.appendingPathComponent("swift-board"), into: package)
            var environment = ProcessInfo.processInfo.environment
            environment["MLBENCH_SOURCE"] = repository.path
            try PluginLoadingTests.build([try Tools.swift(), "build", "--package-path", package.path, "--scratch-path", scratch.path],
                                         environment: environment, timeout: 900)
            let library = scratch.appendingPathComponent("debug/libmlbench-swift-board.so")
            guard FileManager.default.fileExists(atPath: library.path) else {
                throw FixtureFailure(description: "swift build of \(package.path) did not produce \(library.path)")
            }
            return library
        }

        /// Makes `target` hold the files of `source` (the package's sources and
        /// manifests, not its build products), rewriting only what changed so
        /// that the incremental build stays incremental.
        private static func mirror(_ source: URL, into target: URL) throws {
            let files = FileManager.default
            var wanted = Set<String>()
            let enumerator = files.enumerator(atPath: source.path)
            while let relative = enumerator?.nextObject() as? String {
                if relative.hasPrefix(".build") || relative.hasPrefix(".swiftpm") || relative == "Package.resolved" {
                    enumerator?.skipDescendants()
                    continue
                }
                let from = source.appendingPathComponent(relative)
                var isFolder: ObjCBool = false
                _ = files.fileExists(atPath: from.path, isDirectory: &isFolder)
                let to = target.appendingPathComponent(relative)
                wanted.insert(relative)
                if isFolder.boolValue {
                    try files.createDirectory(at: to, withIntermediateDirectories: true)
                } else if files.contents(atPath: to.path) != files.contents(atPath: from.path) {
                    try? files.removeItem(at: to)
                    try files.copyItem(at: from, to: to)
                }
            }
            // Files removed from the example go from the copy too.
            for relative in (files.subpaths(atPath: target.path) ?? []).sorted().reversed()
            where !wanted.contains(relative) && relative != "Package.resolved" && !relative.hasPrefix(".") {
                try? files.removeItem(at: target.appendingPathComponent(relative))
            }
        }
    }
}
