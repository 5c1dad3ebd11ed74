import ArgumentParser
import Foundation
import MLBench
import MLBenchCore

@main
struct MLBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlbench",
        abstract: "Benchmark ML inference on real boards.",
        subcommands: [Run.self, Check.self, Plugins.self, LabCommand.self, Devices.self, Toolchains.self, Results.self, Schema.self])
}

/// Options every command that touches the lab shares.
struct LabOptions: ParsableArguments {
    @Option(name: .long, help: "The lab inventory (YAML). Default: $MLBENCH_INVENTORY, else the embedded default (the host board).")
    var inventory: String?

    @Option(name: .customLong("plugin-path"), help: "A folder to search for plugins, besides $MLBENCH_PLUGIN_PATH and the installed ones (repeatable). A plugin name found twice is an error.")
    var pluginPaths: [String] = []

    @Option(name: .long, help: "The lab's data folder. Default: $MLBENCH_HOME, else ~/.local/share/mlbench.")
    var home: String?

    func lab() throws -> Lab {
        let labHome = home.map { LabHome(root: URL(fileURLWithPath: $0, isDirectory: true).standardizedFileURL) } ?? LabHome.fromEnvironment()
        try labHome.prepare()
        let path = inventory ?? ProcessInfo.processInfo.environment["MLBENCH_INVENTORY"]
        let inventoryFile = try path.map { try InventoryFile.load($0) } ?? .embeddedDefault
        return Lab(home: labHome, inventory: inventoryFile, extraPluginPaths: pluginPaths)
    }
}

/// Errors the user caused are printed plainly, with exit status 2.
struct Failure: Error, CustomStringConvertible {
    var description: String
}

func report(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(2)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run an experiment, store its result and print a summary.")

    @Argument(help: "The experiment file (YAML).")
    var experiment: String

    @OptionGroup var options: LabOptions

    @Flag(help: "Print the stored result as JSON instead of a summary.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print no progress.")
    var quiet = false

    func run() throws {
        var outcome: ExperimentResult?
        try report {
            let file = try ExperimentFile.load(experiment)
            let lab = try options.lab()
            let store = try SQLiteResultStore(path: lab.home.database.path)
            let runner = ExperimentRunner(lab: lab, store: store) { line in
                if !quiet { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            }
            outcome = try runner.run(file)
            if let outcome {
                print(json ? String(decoding: try ResultCoding.encoder.encode(outcome), as: UTF8.self)
                           : ResultPresenter.summary(outcome, store: lab.home.database.path))
            }
        }
        if outcome?.status == .failed { throw ExitCode(1) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check an experiment before any build: model format, operators, options, layout, memory.",
        discussion: "Prints each finding with its severity, the toolchain and version and the board. Exits 1 when the experiment is impossible (any error), 0 otherwise.")

    @Argument(help: "The experiment file (YAML).")
    var experiment: String

    @OptionGroup var options: LabOptions

    @Flag(help: "Print the findings as JSON.")
    var json = false

    func run() throws {
        var compatible = true
        try report {
            let file = try ExperimentFile.load(experiment)
            let check = try CompatibilityCheck.run(experiment: file, lab: try options.lab())
            compatible = check.compatible
            if json {
                struct Output: Encodable {
                    var compatible: Bool
                    var format: String?
                    var needsCalibrationData: Bool
                    var footprint: ModelFootprint?
                    var findings: [CompatibilityFinding]
                }
                print(try JSONCoding.encode(Output(compatible: check.compatible, format: check.format,
                                                   needsCalibrationData: check.needsCalibrationData,
                                                   footprint: check.footprint, findings: check.findings)))
                return
            }
            let experimentName = file.experiment.name
            let toolchain = "\(file.experiment.toolchain.name) for '\(file.experiment.toolchain.target)'"
            print(check.compatible ? "\(experimentName): compatible (\(toolchain) on \(file.experiment.board))"
                                   : "\(experimentName): impossible (\(toolchain) on \(file.experiment.board))")
            if let footprint = check.footprint {
                print("  footprint: weights \(footprint.weightsBytes.map(String.init) ?? "?") B, activations \(footprint.activationsBytes.map(String.init) ?? "?") B")
            }
            if check.needsCalibrationData { print("  the build calibrates on the experiment's inputs") }
            for finding in check.findings.sorted(by: { $0.severity > $1.severity }) { print("  \(finding)") }
        }
        if !compatible { throw ExitCode(1) }
    }
}

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The plugins on the search path.", subcommands: [List.self, Inspect.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List plugins, loading each to show what its library declares.")
        @OptionGroup var options: LabOptions

        func run() throws {
            var problemCount = 0
            try report {
                let lab = try options.lab()
                print("search path: \(lab.catalog.searchPath.joined(separator: ":"))")
                var rows = [["NAME", "VERSION", "ABI", "PROVIDES", "ENVIRONMENTS", "STATUS", "LIBRARY"]]
                var problems = lab.catalog.problems.map(\.description)
                for name in lab.catalog.plugins.keys.sorted() {
                    let plugin = lab.catalog.plugins[name]!
                    let provides = plugin.manifest.provides.map { "\($0.role):\($0.kind)" }.joined(separator: ",")
                    // Toolchain versions installed in managed environments, newest first.
                    let installed = lab.environments.installed(name).map(\.version)
                    let environments = plugin.manifest.provides.contains { $0.environment != nil }
                        ? (installed.isEmpty ? "none installed" : installed.joined(separator: ",")) : "-"
                    do {
                        let loaded = try lab.catalog.load(name)
                        rows.append([name, loaded.version, String(plugin.manifest.abiVersion), provides, environments, "ok", plugin.libraryPath])
                    } catch {
                        rows.append([name, plugin.manifest.version, String(plugin.manifest.abiVersion), provides, environments, "error", plugin.libraryPath])
                        problems.append("\(error)")
                    }
                }
                print(ResultPresenter.table(rows))
                if !problems.isEmpty {
                    print("\nproblems:")
                    problems.forEach { print("  - \($0)") }
                }
                problemCount = problems.count
            }
            // Scripts can tell a clean plugin path from one with problems.
            if problemCount > 0 { throw ExitCode(1) }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a plugin's manifest and load its library to check it.")
        @Argument(help: "The plugin's name.") var name: String
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let plugin = try lab.catalog.discovered(name)
                let manifest = plugin.manifest
                print("name:        \(manifest.name)")
                print("version:     \(manifest.version)")
                print("abi version: \(manifest.abiVersion)")
                print("folder:      \(plugin.directory)")
                print("library:     \(plugin.libraryPath)")
                if let description = manifest.description { print("description: \(description)") }
                if let libraries = manifest.requires?.libraries, !libraries.isEmpty { print("requires:    \(libraries.joined(separator: ", "))") }
                print("provides:")
                for provision in manifest.provides {
                    var line = "  - \(provision.role) '\(provision.kind)'"
                    if provision.resetsItself == true { line += " (resets itself)" }
                    if let python = provision.environment?.python {
                        line += "; Python environment \(python.packages.joined(separator: " ")) (default version \(python.defaultVersion))"
                        let installed = lab.environments.installed(manifest.name).map(\.version)
                        line += "; installed: \(installed.isEmpty ? "none" : installed.joined(separator: ", "))"
                    }
                    print(line)
                    for (setting, meaning) in (provision.settings ?? [:]).sorted(by: { $0.key < $1.key }) {
                        print("      setting \(setting): \(meaning)")
                    }
                }
                let loaded = try lab.catalog.load(name)
                print("loaded:      ok — the library's descriptor says '\(loaded.name)' \(loaded.version): \(loaded.summary)")
            }
        }
    }
}

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bench hardware connected to this machine.",
                                                    subcommands: [Scan.self, Power.self, Sample.self])

    struct Power: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Switch an outlet of an inventory power switch: on, off, state, or cycle (off, wait, on).")
        @Argument(help: "The power switch's name in the inventory.") var powerSwitch: String
        @Argument(help: "The outlet.") var outlet: String
        @Argument(help: "on, off, state or cycle.") var action: String
        @Option(name: .customLong("off-time"), help: "Seconds the outlet stays off in a cycle (default 5).") var offTime: Double = 5
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                guard ["on", "off", "state", "cycle"].contains(action) else {
                    throw Failure(description: "'\(action)' is not an action: use on, off, state or cycle")
                }
                guard offTime >= 0 else { throw Failure(description: "--off-time must not be negative, got \(offTime)") }
                let power = try options.lab().powerSwitch(powerSwitch)
                switch action {
                case "on", "off": try power.set(OutletCommand(outlet: outlet, on: action == "on"))
                case "cycle":
                    try power.set(OutletCommand(outlet: outlet, on: false))
                    print("outlet \(outlet) of \(powerSwitch): off for \(offTime) s")
                    Thread.sleep(forTimeInterval: offTime)
                    try power.set(OutletCommand(outlet: outlet, on: true))
                default: break
                }
                let state = try power.state(OutletQuery(outlet: outlet))
                print("outlet \(outlet) of \(powerSwitch): \(state.on ? "on" : "off")")
            }
        }
    }

    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream an inventory probe for a while and summarise each channel (a check that it works).")
        @Argument(help: "The probe's name in the inventory.") var probe: String
        @Option(help: "Seconds to stream (default 2).") var seconds: Double = 2
        @OptionGroup var options: LabOptions

        func run() throws {
            var failed = false
            try report {
                guard seconds > 0 else { throw Failure(description: "--seconds must be above 0, got \(seconds)") }
                let probe = try options.lab().probe(probe)
                let description = try probe.describe()
                let collected = ProbeSampleBuffer()
                try probe.start { collected.add($0) }
                Thread.sleep(forTimeInterval: seconds)
                var ended: Error?
                do { try probe.stop() } catch { ended = error }
                let samples = collected.all
                print("\(self.probe): \(description.channels.count) channel(s), native rate \(description.rateHz) Hz, \(samples.count) samples in \(seconds) s")
                var rows = [["CHANNEL", "UNIT", "SAMPLES", "MIN", "MAX", "LAST"]]
                for (index, channel) in description.channels.enumerated() {
                    let values = samples.filter { $0.channel == UInt32(index) }.map(\.value)
                    let format = { (value: Double?) in value.map { String(format: "%.6g", $0) } ?? "-" }
                    rows.append([channel.name, channel.unit, String(values.count), format(values.min()), format(values.max()), format(values.last)])
                }
                print(ResultPresenter.table(rows))
                if let ended {
                    print("the stream ended early: \(ended)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Scan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the USB devices the plugins support (by VID:PID and serial) and the GPIO chips, with the inventory entry for each.")
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                print(DeviceScan.run(catalog: lab.catalog).render())
            }
        }
    }
}

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lab", abstract: "The lab inventory.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate the inventory: plugins, settings, power outlets, toolchains.")
        @OptionGroup var options: LabOptions

        func run() throws {
            var findings = [LabCheck.Finding]()
            try report {
                let lab = try options.lab()
                findings = LabCheck.run(lab)
                let inventory = lab.inventory.inventory
                print("inventory \(lab.inventory.path): \(inventory.boards.count) board(s), \(inventory.powerSwitches?.count ?? 0) power switch(es), \(inventory.probes?.count ?? 0) probe(s), \(inventory.toolchains.count) toolchain(s)")
                if findings.isEmpty {
                    print("ok: every entry resolves to a plugin and every instance was created")
                } else {
                    findings.forEach { print("error: \($0)") }
                }
            }
            if !findings.isEmpty { throw ExitCode(1) }
        }
    }
}

struct Toolchains: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Managed toolchain environments, one per version.",
                                                    subcommands: [Install.self, List.self, Remove.self])

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the Python environment of a toolchain version.")
        @Argument(help: "The toolchain plugin's name (e.g. tvm, onnxruntime).") var name: String
        @Option(help: "The version to install; the plugin's default when absent.") var version: String?
        @Flag(help: "Do nothing when that version is already installed.") var ifMissing = false
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let spec = try lab.environmentSpec(plugin: name)
                let chosen = version ?? spec.defaultVersion
                if ifMissing, lab.environments.installed(name).contains(where: { $0.version == chosen }) {
                    print("\(name) \(chosen) is already installed")
                    return
                }
                let record = try lab.environments.install(name, version: chosen, spec: spec) { print("\(name) \(chosen): \($0)") }
                // The toolchain must answer in its new environment, or the install is not done.
                let description = try lab.toolchain(name, version: chosen).describe()
                print("installed \(name) \(record.version) (runtime \(description.version)) in \(lab.environments.folder(name, chosen).path)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List installed toolchain environments.")
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                var rows = [["TOOLCHAIN", "VERSION", "INSTALLED", "PYTHON"]]
                for name in lab.catalog.plugins.keys.sorted() {
                    for record in lab.environments.installed(name) {
                        rows.append([name, record.version, ResultCoding.timestamp(record.installedAt), record.python])
                    }
                }
                print(rows.count == 1 ? "no toolchain environment is installed" : ResultPresenter.table(rows))
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a toolchain environment.")
        @Argument var name: String
        @Option var version: String
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                try options.lab().environments.remove(name, version: version)
                print("removed \(name) \(version)")
            }
        }
    }
}

struct Results: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stored results.", subcommands: [List.self, Show.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the newest results.")
        @Option(help: "How many.") var limit = 20
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let store = try SQLiteResultStore(path: lab.home.database.path)
                print(ResultPresenter.list(try store.list(limit: limit)))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one result (a unique prefix of its id is enough).")
        @Argument var id: String
        @Flag(help: "The whole stored bundle as JSON.") var json = false
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let store = try SQLiteResultStore(path: lab.home.database.path)
                guard let result = try store.result(id: id) else { throw Failure(description: "no result with id '\(id)' in \(lab.home.database.path)") }
                print(json ? String(decoding: try ResultCoding.encoder.encode(result), as: UTF8.self)
                           : ResultPresenter.summary(result, store: lab.home.database.path))
            }
        }
    }
}

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the JSON Schema of a configuration file.")
    @Argument(help: "experiment, inventory or manifest") var name: String

    func run() throws {
        try report {
            guard let text = Schemas.text(named: name) else {
                throw Failure(description: "no schema named '\(name)' (known: \(Schemas.names.joined(separator: ", ")))")
            }
            print(Schemas.normalized(text))
        }
    }
}
