import Foundation

/// Putting experiments in the queue: what `mlbench queue submit|sweep` and the service's
/// API share, so that both check and queue the same way.
public enum Submitting {
    /// Who is told when the experiment ends.
    public struct Notify: Sendable, Equatable {
        public var email: String?
        public var webhook: String?
        public init(email: String? = nil, webhook: String? = nil) {
            self.email = email
            self.webhook = webhook
        }
    }

    /// Refuses an experiment the checks find impossible (unsupported format or operator,
    /// a model too large for the board, a bad option) or that targets a predicted board:
    /// it never reaches the queue.
    public static func refuseImpossible(_ file: ExperimentFile, lab: Lab, what: String) throws {
        // A predicted target has no board to lease: the queue would hold it forever.
        if let board = file.experiment.predictedBoard {
            throw LabError.usage("\(what) targets predicted:\(board), which touches no board and is not queued; run it with `mlbench run \(file.path)`")
        }
        let check = try CompatibilityCheck.run(experiment: file, lab: lab)
        guard check.compatible else {
            throw LabError.usage("\(what) is impossible, nothing was queued: \(check.errorSummary)")
        }
    }

    /// Checks and queues `file` as `user` on `board` (the file's own board when nil).
    public static func submit(_ file: ExperimentFile, lab: Lab, store: LabStore, user: String, board: String? = nil,
                              series: String? = nil, notify: Notify = Notify(), at now: Date = Date()) throws -> QueuedExperiment {
        let board = board ?? file.experiment.board
        var definition = file.text
        var checked = file
        if board != file.experiment.board {
            // Another board of the same kind: the definition names the board it runs on.
            guard let point = try Sweep.expand(file.text, boards: [board], parameters: []).first else {
                throw LabError.usage("'\(file.experiment.name)' cannot be moved to board '\(board)'")
            }
            definition = point.definition
            checked.experiment.board = board
        }
        try refuseImpossible(checked, lab: lab, what: "'\(file.experiment.name)' on \(board)")
        return try store.submit(Submission(user: user, name: file.experiment.name, board: board, series: series, definition: definition,
                                           directory: file.directory.path, notifyEmail: notify.email, notifyWebhook: notify.webhook), at: now)
    }

    /// The board an experiment should go to when the lab may choose: among the boards
    /// compatible with the file's own (same plugin and kind, registered, not retired), those
    /// that are enabled and in good health, the one with the least work waiting or running
    /// (ties: the file's own board first, then by name). Refused when none can start work.
    public static func placement(for file: ExperimentFile, lab: Lab, store: LabStore) throws -> String {
        let registry = try store.boards()
        let compatible = try Sweep.compatibleBoards(with: file.experiment.board, inventory: lab.inventory.inventory, registry: registry)
        let ready = Set(registry.filter { $0.enabled && $0.health == .good }.map(\.name))
        let candidates = compatible.filter(ready.contains)
        guard !candidates.isEmpty else {
            throw LabError.usage("no board compatible with '\(file.experiment.board)' is enabled and in good health (compatible: \(compatible.isEmpty ? "none" : compatible.joined(separator: ", ")))")
        }
        var load = [String: Int]()
        for experiment in try store.experiments(state: nil) where !experiment.state.isFinal && experiment.state != .suspended {
            load[experiment.board, default: 0] += 1
        }
        return candidates.min { a, b in
            let (la, lb) = (load[a] ?? 0, load[b] ?? 0)
            if la != lb { return la < lb }
            if (a == file.experiment.board) != (b == file.experiment.board) { return a == file.experiment.board }
            return a < b
        }!
    }

    /// What a sweep queued.
    public struct SweepOutcome: Sendable {
        public var series: String
        public var boards: [String]
        public var experiments: [QueuedExperiment]
    }

    /// Queues one experiment per compatible board (or only `boards`) and per combination
    /// of the swept values, as one series; every point is checked before any is queued.
    public static func sweep(_ file: ExperimentFile, lab: Lab, store: LabStore, user: String, parameters: [String], boards only: [String],
                             series: String?, notify: Notify = Notify(), at now: Date = Date()) throws -> SweepOutcome {
        let compatible = try Sweep.compatibleBoards(with: file.experiment.board, inventory: lab.inventory.inventory, registry: try store.boards())
        if let wrong = only.first(where: { !compatible.contains($0) }) {
            throw LabError.usage("board '\(wrong)' is not compatible with '\(file.experiment.board)' (compatible: \(compatible.joined(separator: ", ")))")
        }
        let boards = only.isEmpty ? compatible : only
        guard !boards.isEmpty else {
            throw LabError.usage("no registered board is compatible with '\(file.experiment.board)'; register one with `mlbench boards register`")
        }
        let points = try Sweep.expand(file.text, boards: boards, parameters: parameters.map(Sweep.Parameter.init(parsing:)))
        // Every point must still be a valid experiment before any is queued.
        let scratch = lab.home.scratch.appendingPathComponent("sweep-\(UUID().uuidString).yaml")
        try FileManager.default.createDirectory(at: lab.home.scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for point in points {
            try point.definition.write(to: scratch, atomically: true, encoding: .utf8)
            let label = "the sweep point \(point.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) on \(point.board)"
            let pointFile: ExperimentFile
            do {
                pointFile = try ExperimentFile.load(scratch.path, relativeTo: file.directory.path)
            } catch {
                throw LabError.usage("\(label) is not a valid experiment: \(error)")
            }
            try refuseImpossible(pointFile, lab: lab, what: label)
        }
        let name = series ?? "sweep-\(file.experiment.name)-\(UUID().uuidString.prefix(8).lowercased())"
        var queued = [QueuedExperiment]()
        for point in points {
            queued.append(try store.submit(Submission(user: user, name: file.experiment.name, board: point.board, series: name,
                                                      definition: point.definition, directory: file.directory.path,
                                                      notifyEmail: notify.email, notifyWebhook: notify.webhook), at: now))
        }
        return SweepOutcome(series: name, boards: boards, experiments: queued)
    }
}
