import ArgumentParser
import Foundation
import MLBench
import MLBenchCore

@main
struct MLBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlbench",
        abstract: "Benchmark ML inference on real boards.",
        subcommands: [Run.self, Check.self, Guide.self, Features.self, PredictorCommand.self, Plugins.self, LabCommand.self,
                      Devices.self, Toolchains.self, Results.self, Verify.self, QueueCommand.self, Boards.self, Worker.self,
                      Serve.self, Users.self, Schema.self])
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

/// Which store a command uses.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store: a postgres:// URL (several bench hosts) or an SQLite file. Default: $MLBENCH_STORE, else results.sqlite in the lab's data folder.")
    var store: String?

    /// The store, signing what it stores with the lab's key.
    func open(_ lab: Lab) throws -> LabStore {
        let store = try LabStore.open(location(lab))
        store.signer = try BundleSigner.forLab(lab.home)
        return store
    }

    /// Where the store is: the option, $MLBENCH_STORE, else the lab home's SQLite file.
    func location(_ lab: Lab) -> String {
        if let location = self.store ?? ProcessInfo.processInfo.environment["MLBENCH_STORE"], !location.isEmpty { return location }
        return lab.home.database.path
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
    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print the stored result as JSON instead of a summary.")
    var json = false

    @Flag(help: "Print only the stored result's id (what `mlbench worker` reads).")
    var idOnly = false

    @Option(help: "Resolve the experiment's relative paths against this folder instead of the file's. Default: $MLBENCH_EXPERIMENT_DIRECTORY (set by mlbench worker), else the file's folder.")
    var relativeTo: String?

    @Flag(name: .shortAndLong, help: "Print no progress.")
    var quiet = false

    @Flag(help: "Discard the result at the end: print it, then delete it with the files no other result needs (a trial run).")
    var discard = false

    @Flag(help: "Ask at the end whether to keep the result (an answer starting with n discards it; no answer keeps it).")
    var ask = false

    func run() throws {
        var outcome: ExperimentResult?
        try report {
            let base = relativeTo ?? ProcessInfo.processInfo.environment["MLBENCH_EXPERIMENT_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
            let file = try ExperimentFile.load(experiment, relativeTo: base)
            let lab = try options.lab()
            let store = try storeOptions.open(lab)
            let runner = ExperimentRunner(lab: lab, store: store) { line in
                if !quiet { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            }
            outcome = try runner.run(file)
            if let outcome {
                print(idOnly ? outcome.id
                      : json ? String(decoding: try ResultCoding.encoder.encode(outcome), as: UTF8.self)
                      : ResultPresenter.summary(outcome, store: store.location))
                var keep = !discard
                if keep, ask {
                    FileHandle.standardError.write(Data("keep this result? [Y/n] ".utf8))
                    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
                    keep = !(answer?.hasPrefix("n") ?? false)
                    if answer == nil { FileHandle.standardError.write(Data("(no answer: kept)\n".utf8)) }
                }
                if !keep {
                    let (_, removed) = try store.delete(id: outcome.id, blobs: lab.home.blobs)
                    FileHandle.standardError.write(Data("discarded \(outcome.id): nothing of it is kept (\(removed.count) file\(removed.count == 1 ? "" : "s") removed)\n".utf8))
                }
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

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the performance-prediction features of an ONNX model: the 11 model-level ones, and its fused kernels.",
        discussion: "Shapes must be static. A corrupt file, an unsupported operator or a dynamic shape is an error naming the node (exit status 2).")

    @Argument(help: "The ONNX model.")
    var model: String

    @Flag(help: "Print everything as JSON: the model-level features, every layer with its shapes, and the kernels.")
    var json = false

    @Flag(help: "Also print the fused kernels (a kernel-level predictor's units).")
    var kernels = false

    func run() throws {
        try report {
            let features = try GraphFeatures.extract(path: model)
            if json {
                print(try JSONCoding.encode(features))
                return
            }
            print(features.file)
            for (column, value) in zip(ModelFeatures.columns, features.model.values) {
                print("  \(column.padding(toLength: 12, withPad: " ", startingAt: 0)) \(value)")
            }
            guard kernels else { return }
            var rows = [["KERNEL", "INPUT", "OUTPUT", "WINDOW", "FLOPS", "PARAMS"]]
            for kernel in features.kernels {
                let window = kernel.kernelShape.map { shape in
                    "\(shape.map(String.init).joined(separator: "x"))/\(kernel.strides?.map(String.init).joined(separator: "x") ?? "1")"
                        + (kernel.groups.map { $0 > 1 ? " g\($0)" : "" } ?? "")
                } ?? "-"
                rows.append([kernel.kind, "\(kernel.inputShape)", "\(kernel.outputShape)", window, String(kernel.flops), String(kernel.params)])
            }
            print(ResultPresenter.table(rows))
        }
    }
}

struct Guide: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank the lab's (toolchain, board) pairs for a model under constraints, before any deployment.",
        discussion: "Every pair gets the checks of `mlbench check` (format, operators, memory) and the predictions of the predictors given; pairs that cannot work or break a limit are excluded with every reason, the rest ranked by the cost. Pairs no predictor speaks for are listed unranked.")

    @Argument(help: "The ONNX model (not with --search, which takes the experiment's).") var model: String?
    @Option(help: "The cost to rank by: latency, memory or energy (energy: a predictor of energy_mj, or measured with --search on a board with a power probe).") var cost: Guidance.Cost = .latency
    @Option(name: .customLong("max-latency-ms"), help: "The largest predicted latency allowed, in ms.") var maxLatencyMs: Double?
    @Option(name: .customLong("max-memory-mb"), help: "The largest predicted peak memory allowed, in MiB.") var maxMemoryMb: Double?
    @Option(help: "A folder of trained predictors (mlbench predictor train --output); repeatable, one per board and toolchain. Without it, every predictor trained into the lab's predictors folder ($MLBENCH_HOME/predictors).") var predictor: [String] = []
    @Flag(help: "Print the verdicts as JSON.") var json = false
    @Option(help: "Search the toolchain's option space of --experiment: grid, random or model (a surrogate picks the next options by predicted cost and uncertainty).") var search: OptionSearch.Strategy?
    @Option(help: "The experiment whose toolchain options the search varies (its model, inputs, board and measurement are kept).") var experiment: String?
    @Option(help: "An option and the values to try, name=value,value; repeatable.") var space: [String] = []
    @Option(help: "The most experiments the search runs.") var budget = 8
    @Option(help: "The seed of the random and model-based searches.") var seed: UInt64 = 0
    @Flag(help: "Evaluate by prediction (predicted:<board>, the board's trained predictors) instead of measuring.") var predicted = false
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        if let search {
            try runSearch(search)
            return
        }
        try report {
            guard let model else { throw Failure(description: "give the ONNX model to rank the lab's pairs for, or --search with --experiment") }
            let lab = try options.lab()
            var predictions = [String: [String: Guidance.Prediction]]()
            var unpredictable: String?
            let predictor = self.predictor.isEmpty ? Predictor(home: lab.home).trained() : self.predictor
            if !predictor.isEmpty {
                // A model the predictors cannot describe is still checked; it is only not predicted.
                let features: GraphFeatures?
                do { features = try GraphFeatures.extract(path: model) } catch {
                    features = nil
                    unpredictable = "\(error)"
                }
                for folder in predictor {
                    guard let features else { break }
                    for (target, prediction) in try Predictor(home: lab.home).predict(features: features, folder: folder) {
                        guard let board = prediction.board, let toolchain = prediction.toolchain else {
                            throw Failure(description: "the predictor in \(folder) does not say which board and toolchain it speaks for: its table needs board and toolchain columns with one value each")
                        }
                        predictions["\(board)/\(toolchain)", default: [:]][target] = prediction
                    }
                }
            }
            let guidance = try Guidance.run(model: model, lab: lab, cost: cost,
                                            constraints: .init(maxLatencyMs: maxLatencyMs, maxMemoryMb: maxMemoryMb), predictions: predictions)
            if json {
                print(try JSONCoding.encode(guidance))
                return
            }
            if let unpredictable { print("no prediction: \(unpredictable)") }
            print("\(model): \(guidance.candidates.filter { !$0.excluded }.count) of \(guidance.candidates.count) (toolchain, board) pairs possible, ranked by \(cost.rawValue)")
            for candidate in guidance.candidates {
                let name = "\(candidate.toolchain) \(candidate.toolchainVersion ?? "?") for '\(candidate.target ?? "?")' on \(candidate.board)"
                let predicted = [candidate.latencyMs.map { String(format: "latency %.3f ms", $0.value) },
                                 candidate.memoryMb.map { String(format: "memory %.1f MiB", $0.value) }].compactMap { $0 }
                let head = candidate.excluded ? "excluded" : candidate.rank.map { "#\($0)" } ?? "unranked"
                print("  \(head) \(name)\(predicted.isEmpty ? "" : " — predicted " + predicted.joined(separator: ", "))")
                candidate.reasons.forEach { print("      \($0)") }
            }
        }
    }

    /// The option search: each point an experiment derived from --experiment, measured or predicted.
    func runSearch(_ strategy: OptionSearch.Strategy) throws {
        try report {
            guard let experiment else { throw Failure(description: "--search needs --experiment, the experiment whose toolchain options it varies") }
            guard model == nil else { throw Failure(description: "--search takes the model from --experiment; leave the model argument out") }
            let lab = try options.lab()
            let template = try ExperimentFile.load(experiment)
            let space = try OptionSpace.parse(space)
            let evaluate = OptionSearch.experiments(template: template, lab: lab, store: try storeOptions.open(lab), cost: cost, predicted: predicted)
            let outcome = try OptionSearch.run(space: space, strategy: strategy, budget: budget, seed: seed) { point in
                let result = try evaluate(point)
                // Progress on standard error: a measured search runs for minutes.
                let options = point.sorted { $0.key < $1.key }.map { "\($0.key)=\(OptionSearch.describe($0.value))" }.joined(separator: ", ")
                FileHandle.standardError.write(Data("  \(options): \(result.cost.map { String(format: "%.4g", $0) } ?? "no cost (\(result.reason ?? "?"))")\(result.result.map { " (result \($0.prefix(8)))" } ?? "")\n".utf8))
                return result
            }
            if json {
                print(try JSONCoding.encode(outcome))
                return
            }
            let unit = cost == .latency ? "ms" : cost == .memory ? "MiB" : "mJ"
            print("\(strategy.rawValue) search, \(predicted ? "predicted" : "measured") \(cost.rawValue) in \(unit): \(outcome.evaluations.count) of \(outcome.points) option sets evaluated (budget \(budget))")
            for (index, evaluation) in outcome.evaluations.enumerated() {
                let options = evaluation.options.sorted { $0.key < $1.key }.map { "\($0.key)=\(OptionSearch.describe($0.value))" }.joined(separator: ", ")
                print("  \(index == outcome.best ? "best" : "    ") \(options): \(evaluation.cost.map { String(format: "%.4g", $0) } ?? "-") — \(evaluation.chosenBecause)\(evaluation.reason.map { "; \($0)" } ?? "")")
            }
        }
    }
}

extension Guidance.Cost: ExpressibleByArgument {}
extension OptionSearch.Strategy: ExpressibleByArgument {}

struct PredictorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predictor", abstract: "Performance predictors: their environment, the model zoo, training and validation.",
        subcommands: [Install.self, Zoo.self, Campaign.self, Kernels.self, Train.self])

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the predictor's Python environment (scikit-learn, XGBoost), one per version.")
        @Option(help: "The scikit-learn version; the default when absent.") var version: String?
        @Flag(help: "Do nothing when that version is already installed.") var ifMissing = false
        @OptionGroup var options: LabOptions

        func run() throws {
            try report {
                let predictor = Predictor(home: try options.lab().home)
                let chosen = version ?? Predictor.environmentSpec.defaultVersion
                if ifMissing, predictor.environments.installed(Predictor.environmentName).contains(where: { $0.version == chosen }) {
                    print("predictor \(chosen) is already installed")
                    return
                }
                let record = try predictor.environments.install(Predictor.environmentName, version: chosen, spec: Predictor.environmentSpec) {
                    print("predictor \(chosen): \($0)")
                }
                print("installed predictor \(record.version) in \(predictor.environments.folder(Predictor.environmentName, chosen).path)")
            }
        }
    }

    struct Zoo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the model zoo (synthetic CNNs and standard architectures with random weights) from a seed.",
            discussion: "Arguments after -- go to zoo.py (e.g. -- --synthetic 40 --sizes 32,64,96,128); see Docs/Prediction.md.")
        @Option(help: "The folder to write the zoo into.") var output: String
        @Argument(parsing: .postTerminator, help: "Arguments for zoo.py.") var arguments: [String] = []
        @OptionGroup var options: LabOptions

        func run() throws {
            var status: Int32 = 0
            try report {
                status = try Predictor(home: try options.lab().home).runScript("zoo.py", arguments: ["--output", output] + arguments)
            }
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Campaign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure every model of a zoo with real experiments and write the feature table (CSV).",
            discussion: "Each model runs as an ordinary experiment (stored in the result store); the table has the 11 features, latency_ms (median of the raw timings), peak_memory_mb and the result id. Models that fail are listed, and the exit status is 1.")
        @Option(help: "The zoo's manifest.json.") var zoo: String
        @Option(help: "The table to write.") var table: String
        @Option(help: "The board (inventory name).") var board = "host"
        @Option(help: "The toolchain (inventory name).") var toolchain = "onnxruntime"
        @Option(help: "The toolchain's target.") var target = "cpu"
        @Option(help: "Only the first N models of the manifest (0: all).") var limit = 0
        @Option(help: "The measurement block of every experiment, as a YAML flow mapping.") var measurement: String?
        @Option(help: "Queue the experiments as this series for the lab's workers instead of running them here; gather them later with --collect.") var queue: String?
        @Option(help: "Write the table from the finished experiments of this queued series.") var collect: String?
        @Flag(name: .shortAndLong, help: "Print no progress.") var quiet = false
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            var failed = false
            try report {
                guard queue == nil || collect == nil else { throw Failure(description: "give --queue (to submit) or --collect (to gather), not both") }
                let lab = try options.lab()
                var plan = MeasurementCampaign.Plan()
                plan.board = board
                plan.toolchain = toolchain
                plan.target = target
                plan.limit = limit
                if let measurement { plan.measurement = measurement }
                let store = try storeOptions.open(lab)
                let campaign = MeasurementCampaign(lab: lab, store: store, plan: plan) { line in
                    if !quiet { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
                }
                if let series = queue {
                    let outcome = try campaign.submit(manifestPath: zoo, series: series, user: currentUser(), to: store)
                    print("queued \(outcome.queued.count) experiment(s) as series '\(series)' for board \(board); gather them with --collect \(series)")
                    outcome.failures.forEach { print("failed: \($0)") }
                    failed = !outcome.failures.isEmpty
                    return
                }
                if let series = collect {
                    let outcome = try campaign.collect(manifestPath: zoo, series: series, tablePath: table, from: store)
                    print("wrote \(outcome.rows) row(s) to \(table)\(outcome.pending.isEmpty ? "" : "; \(outcome.pending.count) still pending")")
                    outcome.pending.forEach { print("pending: \($0)") }
                    outcome.failures.forEach { print("failed: \($0)") }
                    failed = !outcome.failures.isEmpty
                    return
                }
                let outcome = try campaign.run(manifestPath: zoo, tablePath: table)
                print("wrote \(outcome.rows) row(s) to \(table)")
                outcome.failures.forEach { print("failed: \($0)") }
                failed = !outcome.failures.isEmpty
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Kernels: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure every fused kernel of a zoo's models with ONNX Runtime's profiler, for the kernel-level predictor.",
            discussion: "Writes a kernel table (one row per kernel: kind, shapes, FLOPs, parameters, time, the part of it that is layout conversions, whether it ran in the blocked layout) and a model table (the 11 features, end-to-end latency, the kernels' sum), each time a percentile of runs interleaved between a plain and a profiling session; train with `mlbench predictor train --table MODELS --kernels KERNELS`. Runs on this machine in the ONNX Runtime environment; see Docs/Prediction.md.")
        @Option(help: "The zoo's manifest.json.") var zoo: String
        @Option(help: "The kernel table to write (CSV).") var kernels: String
        @Option(help: "The model table to write (CSV).") var models: String
        @Option(help: "ONNX Runtime's intra-op threads.") var threads = 1
        @Option(help: "Seconds of runs per model, end to end and again profiled.") var budget = 0.4
        @Option(help: "The percentile of the runs recorded, end to end and per kernel (10: the time without other processes' interference; 50: the median).") var percentile = 10.0
        @Option(help: "End-to-end times by the calling thread's CPU time (cpu, with --threads 1: wall time less other processes' turns) or the wall clock (wall). Default: cpu with one thread, wall with more.") var clock: String?
        @Option(help: "The ONNX Runtime environment's version; the newest when absent.") var version: String?
        @Option(help: "Only the first N models of the manifest (0: all).") var limit = 0
        @OptionGroup var options: LabOptions

        func run() throws {
            var status: Int32 = 0
            try report {
                guard threads >= 1, budget > 0, (0...100).contains(percentile) else {
                    throw Failure(description: "--threads must be at least 1, --budget above 0 and --percentile within 0–100")
                }
                var plan = KernelCampaign.Plan()
                plan.threads = threads
                plan.budgetSeconds = budget
                plan.percentile = percentile
                plan.clock = clock ?? (threads == 1 ? "cpu" : "wall")
                guard ["cpu", "wall"].contains(plan.clock) else { throw Failure(description: "--clock must be cpu or wall, not '\(plan.clock)'") }
                plan.version = version
                plan.limit = limit
                let outcome = try KernelCampaign(home: try options.lab().home, plan: plan)
                    .run(manifestPath: zoo, kernelsPath: kernels, modelsPath: models)
                outcome.failures.forEach { print("failed: \($0)") }
                status = outcome.status != 0 ? outcome.status : outcome.failures.isEmpty ? 0 : 1
            }
            if status != 0 { throw ExitCode(status) }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train the five regressors on a feature table and print the validation report of every test domain.",
            discussion: "The table is a CSV with a header: model, the 11 features (see `mlbench features`), latency_ms and/or peak_memory_mb; optional family and synthetic. Writes report.json, report.txt and the predictors into --output.")
        @Option(help: "The feature table (CSV).") var table: String
        @Option(help: "The folder for the report and the predictors.") var output: String
        @Option(help: "Randomised 80/20 splits, one seed each.") var splits = 20
        @Option(help: "The first seed of the splits.") var seed = 0
        @Option(help: "Train only this target (latency_ms, peak_memory_mb, energy_mj); repeatable.") var target: [String] = []
        @Option(help: "Train only this regressor (poly, svr, mlp, rf, xgb); repeatable. Default: all five.") var regressor: [String] = []
        @Option(help: "A kernel table (mlbench predictor kernels): adds the kernel-level latency predictor, joined on the table's file column. Repeatable: kernels of files the table does not list (a zoo made with --kernel-samples) train the kernel regressors in every fold.") var kernels: [String] = []
        @Option(help: "The kernel-level predictor's per-kernel-type regressor: linxgb (the default: a power law of FLOPs with boosted trees on its residuals), xgb or rf.") var kernelRegressor: String?
        @Option(name: .customLong("options"), help: "The toolchain options the table was measured with, as a JSON object; predicted experiments use the predictor only with these options.") var toolchainOptions: String?
        @Option(help: "The predictor environment's version; the newest when absent.") var version: String?
        @OptionGroup var options: LabOptions

        func run() throws {
            var status: Int32 = 0
            try report {
                for file in [table] + kernels where !FileManager.default.fileExists(atPath: file) {
                    throw Failure(description: "the table '\(file)' does not exist")
                }
                var arguments = ["--table", table, "--output", output, "--splits", String(splits), "--seed", String(seed)]
                arguments += target.flatMap { ["--target", $0] } + regressor.flatMap { ["--regressor", $0] }
                arguments += kernels.flatMap { ["--kernels", $0] }
                if let kernelRegressor { arguments += ["--kernel-regressor", kernelRegressor] }
                if let toolchainOptions { arguments += ["--options", toolchainOptions] }
                status = try Predictor(home: try options.lab().home).runScript("train.py", arguments: arguments, version: version)
            }
            if status != 0 { throw ExitCode(status) }
        }
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
    static let configuration = CommandConfiguration(abstract: "Stored results.", subcommands: [List.self, Show.self, Compare.self, Replay.self, Export.self, MLflow.self, Delete.self])

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a stored result's experiment again, from its stored definition and the files it used (from the blob store), and compare.")
        @Argument(help: "The result's id (a unique prefix is enough).") var id: String
        @Flag(name: .shortAndLong, help: "Print no progress.") var quiet = false
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            var replayed: ExperimentResult?
            try report {
                let lab = try options.lab()
                let store = try storeOptions.open(lab)
                guard let original = try store.result(id: id) else { throw Failure(description: "no result with id '\(id)' in \(store.location)") }
                let folder = lab.home.scratch.appendingPathComponent("replay-\(UUID().uuidString)", isDirectory: true)
                defer { try? FileManager.default.removeItem(at: folder) }
                let file = try ExperimentFile.load(try MLBench.Replay.prepare(original, blobs: lab.home.blobs, into: folder))
                let runner = ExperimentRunner(lab: lab, store: store) { line in
                    if !quiet { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
                }
                let outcome = try runner.run(file)
                replayed = outcome
                print("replay of \(original.id): result \(outcome.id)\n")
                print(ResultPresenter.comparison([original, outcome]))
            }
            if replayed?.status == .failed { throw ExitCode(1) }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Results side by side, each compared with the first, with the significance of the differences.")
        @Argument(help: "Two or more result ids (unique prefixes); the first is the baseline.") var ids: [String]
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                guard ids.count >= 2 else { throw Failure(description: "compare needs at least two result ids (got \(ids.count))") }
                print(ResultPresenter.comparison(try storeOptions.open(try options.lab()).bundles(ids: ids)))
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write results as JSON (whole bundles) or CSV (headline figures).")
        @Argument(help: "Result ids (unique prefixes); all results when none.") var ids: [String] = []
        @Option(help: "json or csv.") var format = "json"
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                guard format == "json" || format == "csv" else { throw Failure(description: "--format '\(format)' is not json or csv") }
                let results = try storeOptions.open(try options.lab()).bundles(ids: ids)
                print(format == "json" ? try ResultExport.json(results) : ResultExport.csv(results), terminator: format == "json" ? "\n" : "")
            }
        }
    }

    struct MLflow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mlflow",
            abstract: "Log a result as an MLflow run: parameters, metrics (per-iteration latency as a history) and artifacts (the bundle, raw samples).",
            discussion: """
                The tracking server is --tracking-uri, else $MLFLOW_TRACKING_URI, else `mlflow: {tracking_uri: …}` in the inventory. \
                Credentials come from $MLFLOW_TRACKING_TOKEN (bearer), or $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD (basic). \
                Artifacts are uploaded through the server's artifacts proxy (`mlflow server --serve-artifacts`, the default).
                """)
        @Argument(help: "The result's id (a unique prefix is enough).") var id: String
        @Option(help: "The tracking server's URL (http://host:port).") var trackingURI: String?
        @Option(help: "The MLflow experiment (created when missing). Default: the inventory's, else 'mlbench'.") var experiment: String?
        @Flag(help: "Log a new run even when the result was logged to this experiment before.") var again = false
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let settings = lab.inventory.inventory.mlflow
                let environment = ProcessInfo.processInfo.environment
                guard let uri = trackingURI ?? environment["MLFLOW_TRACKING_URI"].flatMap({ $0.isEmpty ? nil : $0 }) ?? settings?.trackingURI else {
                    throw Failure(description: "no MLflow tracking server: give --tracking-uri, set MLFLOW_TRACKING_URI, or set mlflow.tracking_uri in the inventory")
                }
                let name = experiment ?? settings?.experiment ?? MLflowExport.defaultExperiment
                guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw Failure(description: "--experiment is empty") }
                let store = try storeOptions.open(lab)
                guard let result = try store.result(id: id) else { throw Failure(description: "no result with id '\(id)' in \(store.location)") }
                let logged = try MLflowExport.log(result, experiment: name, client: try MLflowClient(trackingURI: uri), again: again)
                if logged.alreadyLogged {
                    print("\(result.id) was logged before as run \(logged.runID) of experiment '\(name)' (--again logs a new run)\n\(logged.url)")
                } else {
                    print("logged \(result.id) as run \(logged.runID) of experiment '\(name)': \(logged.parameters) parameters, "
                          + "\(logged.metrics) metrics, \(logged.artifacts.count) artifacts (\(logged.artifacts.joined(separator: ", ")))\n\(logged.url)")
                }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a result, and the files it kept that no other result needs.")
        @Argument(help: "The result's id (a unique prefix is enough).") var id: String
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let (result, removed) = try storeOptions.open(lab).delete(id: id, blobs: lab.home.blobs)
                print("deleted \(result.id) (\(result.name)); \(removed.count) file\(removed.count == 1 ? "" : "s") no other result needs removed")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the newest results.")
        @Option(help: "How many.") var limit = 20
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let store = try storeOptions.open(lab)
                print(ResultPresenter.list(try store.list(limit: limit)))
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one result (a unique prefix of its id is enough).")
        @Argument var id: String
        @Flag(help: "The whole stored bundle as JSON.") var json = false
        @OptionGroup var options: LabOptions
        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            try report {
                let lab = try options.lab()
                let store = try storeOptions.open(lab)
                guard let result = try store.result(id: id) else { throw Failure(description: "no result with id '\(id)' in \(store.location)") }
                print(json ? String(decoding: try ResultCoding.encoder.encode(result), as: UTF8.self)
                           : ResultPresenter.summary(result, store: store.location))
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a stored result: its bundle's signature and every model, input and output file it names by SHA-256.")
    @Argument(help: "The result's id (a unique prefix is enough).") var id: String
    @OptionGroup var options: LabOptions
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        var problems = [String]()
        try report {
            let lab = try options.lab()
            problems = try storeOptions.open(lab).verify(id: id, blobs: lab.home.blobs, trustedKeys: BundleSigner.trustedKeys(lab.home))
            print(problems.isEmpty ? "\(id): intact (signature and every file checked)" : problems.map { "\(id): \($0)" }.joined(separator: "\n"))
        }
        if !problems.isEmpty { throw ExitCode(1) }
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
