import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// A real experiment through the queue: submitted with `mlbench queue submit`, run by
/// `mlbench worker` in its own `mlbench run` process, its result stored and linked.
final class QueueEndToEndTests: XCTestCase {
    func testASubmittedExperimentIsRunByTheWorkerAndItsResultLinked() throws {
        let home = try MLBenchBinary.temporaryHome()
        defer { try? FileManager.default.removeItem(at: home) }
        // The submitter's folder, with paths relative to it; the worker runs a copy of the
        // definition elsewhere, so they must still resolve here.
        let folder = home.appendingPathComponent("alice")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let sample = MLBenchBinary.repository.appendingPathComponent("Examples/sample")
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("model.onnx"),
                                                   withDestinationURL: sample.appendingPathComponent("model.onnx"))
        try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent("inputs"),
                                                   withDestinationURL: sample.appendingPathComponent("inputs"))
        let file = folder.appendingPathComponent("quick.yaml")
        try """
            name: queued-quick
            model: model.onnx
            inputs: {image: inputs/image.npy}
            reference: {toolchain: onnxruntime}
            toolchain: {name: onnxruntime, target: cpu}
            board: host
            measurement: {min_iterations: 20, min_time_s: 0, max_time_s: 2}
            semantic_preservation: {metric: cosine, threshold: 1.0e-6}
            """.write(to: file, atomically: true, encoding: .utf8)

        let user = ["MLBENCH_USER": "alice"]
        XCTAssertEqual(try MLBenchBinary.run(["boards", "register", "host", "--host", "bench-1"], home: home).status, 0)
        XCTAssertEqual(try MLBenchBinary.run(["boards", "health", "host", "good", "--note", "checked"], home: home).status, 0)
        let submitted = try MLBenchBinary.run(["queue", "submit", file.path], home: home, environment: user)
        XCTAssertEqual(submitted.status, 0, submitted.stderr)
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.removeItem(at: file) // what was submitted is what runs, not the file as it is later

        let worker = try MLBenchBinary.run(["worker", "--host", "bench-1", "--drain", "--",
                                            MLBenchBinary.executable.path, "run", "--quiet", "--id-only"], home: home, timeout: 300)
        XCTAssertEqual(worker.status, 0, worker.stderr)

        let store = try LabStore(sqlitePath: home.appendingPathComponent("results.sqlite").path)
        let experiment = try XCTUnwrap(try store.experiment(id: id))
        XCTAssertEqual(experiment.state, .succeeded, "\(experiment.note ?? "") \(worker.stderr.suffix(2000))")
        let result = try XCTUnwrap(try store.result(id: try XCTUnwrap(experiment.resultID)), "the queue links the stored result")
        XCTAssertEqual(result.status, .succeeded, result.failure?.reason ?? "")
        XCTAssertEqual(result.name, "queued-quick")
        XCTAssertEqual(result.user, "alice", "the result is the submitter's")
        XCTAssertEqual(result.experimentText, experiment.definition)
        XCTAssertEqual(try store.usage(user: "alice").map(\.experimentID), [id])
        let listed = try MLBenchBinary.run(["queue", "list"], home: home)
        XCTAssertTrue(listed.stdout.contains("queued-quick") && listed.stdout.contains("succeeded"), listed.stdout)
        let usage = try MLBenchBinary.run(["queue", "usage", "--experiments"], home: home)
        let aliceLine = usage.stdout.split(separator: "\n").first { $0.hasPrefix("alice") }.map(String.init) ?? ""
        XCTAssertTrue(aliceLine.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "1", "one experiment of alice's: \(usage.stdout)")
        XCTAssertTrue(usage.stdout.contains(String(id.prefix(8))), "and its line: \(usage.stdout)")

        // The result is signed and its files are kept: verify finds it intact, then finds a changed byte.
        let intact = try MLBenchBinary.run(["verify", result.id], home: home)
        XCTAssertEqual(intact.status, 0, intact.output)
        XCTAssertTrue(intact.stdout.contains("intact"), intact.stdout)

        // Replay: the stored definition on the very files it used (the original folder is gone).
        try FileManager.default.removeItem(at: folder)
        let replay = try MLBenchBinary.run(["results", "replay", result.id, "-q"], home: home, timeout: 300)
        XCTAssertEqual(replay.status, 0, replay.output)
        XCTAssertTrue(replay.stdout.contains("replay of \(result.id)") && replay.stdout.contains("(baseline)"), replay.stdout)
        let replayed = try XCTUnwrap(try store.list(limit: 10).first { $0.id != result.id })
        let again = try XCTUnwrap(try store.result(id: replayed.id))
        XCTAssertEqual(again.status, .succeeded, again.failure?.reason ?? "")
        XCTAssertEqual(again.checksums["model"], result.checksums["model"], "the same model file")
        XCTAssertEqual(again.checksums["input:image"], result.checksums["input:image"], "the same inputs")
        let model = LabHome(root: home).blobs.path(of: try XCTUnwrap(result.checksums["model"]))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: model.path)
        let handle = try FileHandle(forUpdating: model)
        try handle.seek(toOffset: 100)
        let byte = try XCTUnwrap(try handle.read(upToCount: 1)).first! ^ 0x01
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([byte]))
        try handle.close()
        let changed = try MLBenchBinary.run(["verify", result.id], home: home)
        XCTAssertEqual(changed.status, 1, changed.output)
        XCTAssertTrue(changed.stdout.contains("model: blob") && changed.stdout.contains("was changed"), changed.stdout)
        let refused = try MLBenchBinary.run(["results", "replay", result.id, "-q"], home: home)
        XCTAssertEqual(refused.status, 2, refused.output)
        XCTAssertTrue(refused.stderr.contains("cannot be replayed: its model") && refused.stderr.contains("was changed"), refused.stderr)
    }
}
