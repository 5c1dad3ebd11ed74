import Foundation
@testable import MLBench
import XCTest
import Yams

/// Sweeps land on every compatible board, with every combination of the swept values.
final class SweepTests: XCTestCase {
    let inventory = Inventory(
        pluginPaths: nil,
        boards: ["host-1": .init(plugin: "host", kind: nil, settings: nil, power: nil, resetTimeoutS: nil),
                 "host-2": .init(plugin: "host", kind: nil, settings: nil, power: nil, resetTimeoutS: nil),
                 "host-old": .init(plugin: "host", kind: nil, settings: nil, power: nil, resetTimeoutS: nil),
                 "host-unregistered": .init(plugin: "host", kind: nil, settings: nil, power: nil, resetTimeoutS: nil),
                 "jetson-1": .init(plugin: "jetson", kind: "orin", settings: nil, power: nil, resetTimeoutS: nil)],
        powerSwitches: nil, probes: nil, toolchains: [:])

    let definition = """
        name: sweep-me
        model: model.onnx
        inputs: {image: inputs/image.npy}
        reference: {toolchain: onnxruntime}
        toolchain: {name: tvm, target: llvm}
        board: host-1
        measurement: {min_iterations: 50}
        semantic_preservation: {metric: cosine, threshold: 1.0e-6}
        """

    func registry() -> [LabBoard] {
        [LabBoard(name: "host-1", host: "bench-a", health: .good, enabled: true, note: nil),
         LabBoard(name: "host-2", host: "bench-b", health: .unknown, enabled: false, note: nil),
         LabBoard(name: "host-old", host: "bench-a", health: .retired, enabled: true, note: nil),
         LabBoard(name: "jetson-1", host: "bench-a", health: .good, enabled: true, note: nil)]
    }

    func testCompatibleBoardsShareThePluginAreRegisteredAndNotRetired() throws {
        XCTAssertEqual(try Sweep.compatibleBoards(with: "host-1", inventory: inventory, registry: registry()), ["host-1", "host-2"],
                       "a disabled or unchecked board still gets its share; it runs when it is back")
        XCTAssertEqual(try Sweep.compatibleBoards(with: "jetson-1", inventory: inventory, registry: registry()), ["jetson-1"])
        XCTAssertThrowsError(try Sweep.compatibleBoards(with: "nope", inventory: inventory, registry: registry())) { error in
            XCTAssertTrue("\(error)".contains("'nope' is not in the inventory"), "\(error)")
        }
    }

    func testEveryBoardGetsEveryCombinationOfValues() throws {
        let points = try Sweep.expand(definition, boards: ["host-1", "host-2"], parameters: [
            Sweep.Parameter(parsing: "measurement.min_iterations=100,1000"),
            Sweep.Parameter(parsing: "toolchain.options.opt_level=2,3"),
        ])
        XCTAssertEqual(points.count, 8)
        XCTAssertEqual(Set(points.map { "\($0.board) \($0.values["measurement.min_iterations"]!) \($0.values["toolchain.options.opt_level"]!)" }).count, 8)
        for point in points {
            let document = try XCTUnwrap(try Yams.load(yaml: point.definition) as? [String: Any])
            XCTAssertEqual(document["board"] as? String, point.board, "each definition names its board")
            let measurement = try XCTUnwrap(document["measurement"] as? [String: Any])
            XCTAssertEqual(measurement["min_iterations"] as? Int, Int(point.values["measurement.min_iterations"]!), "values keep their YAML type")
            let toolchain = try XCTUnwrap(document["toolchain"] as? [String: Any])
            XCTAssertEqual(toolchain["name"] as? String, "tvm", "the rest is untouched")
            XCTAssertEqual((toolchain["options"] as? [String: Any])?["opt_level"] as? Int, Int(point.values["toolchain.options.opt_level"]!))
        }
        XCTAssertEqual(try Sweep.expand(definition, boards: ["host-2"], parameters: []).count, 1, "no parameter: one per board")
    }

    func testBadSweepsNameWhatIsWrong() throws {
        XCTAssertThrowsError(try Sweep.Parameter(parsing: "measurement.min_iterations")) { error in
            XCTAssertTrue("\(error)".contains("is not PATH=VALUE"), "\(error)")
        }
        XCTAssertThrowsError(try Sweep.expand(definition, boards: ["host-1"], parameters: [Sweep.Parameter(parsing: "board.x=1")])) { error in
            XCTAssertEqual("\(error)", "cannot sweep 'board.x': 'board' holds a value, not a mapping")
        }
    }

    /// Queued and claimed through the store: the sweep lands on every compatible board.
    func testASweepLandsOnEveryCompatibleBoard() throws {
        try StoreBackends.each { store, backend in
            for board in registry() {
                try store.registerBoard(board.name, host: board.host)
                try store.setHealth(board.health == .retired ? .retired : .good, board: board.name, note: nil)
            }
            let boards = try Sweep.compatibleBoards(with: "host-1", inventory: inventory, registry: try store.boards())
            for point in try Sweep.expand(definition, boards: boards, parameters: [Sweep.Parameter(parsing: "measurement.min_iterations=10,20")]) {
                _ = try store.submit(Submission(user: "alice", name: "sweep-me", board: point.board, series: "sweep-1",
                                                definition: point.definition), at: Date())
            }
            var landed = [String: Int]()
            for host in ["bench-a", "bench-b"] {
                while let lease = try store.claim(host: host, worker: host, leaseDuration: 60, policy: .standard, at: Date()) {
                    landed[lease.experiment.board, default: 0] += 1
                    try store.complete(experiment: lease.experiment.id, worker: host, state: .succeeded, resultID: nil, note: nil,
                                       policy: .standard, at: Date())
                }
            }
            XCTAssertEqual(landed, ["host-1": 2, "host-2": 2], "\(backend)")
        }
    }
}
