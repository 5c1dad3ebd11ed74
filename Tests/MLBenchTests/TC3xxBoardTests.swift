import Foundation
import MLBenchCore
import MLBenchPluginKit
@testable import TC3xxBoard
import XCTest

/// The TC3xx board's deployment path: an ELF linked at TC397 addresses gives the
/// memory table, the inventory's flasher command is run on it, and the board is
/// ready when the harness answers on the UART. The stand-in flasher "boots" the
/// host build of the harness on a pseudo-terminal at the configured device path.
final class TC3xxBoardTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tc3xx-board-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        TC3xxFixtures.stopBoard(pidFile: scratch.appendingPathComponent("harness.pid"))
        try? FileManager.default.removeItem(at: scratch)
    }

    /// A flasher that checks its ELF and starts the harness anew (as a reset after flashing would).
    func standInFlasher(link: String) throws -> String {
        let script = scratch.appendingPathComponent("flash.sh")
        let pidFile = scratch.appendingPathComponent("harness.pid").path
        try """
            #!/bin/sh
            [ -f "$1" ] || { echo "flash.sh: no ELF at $1" >&2; exit 1; }
            echo "$1" >> '\(scratch.appendingPathComponent("flashed.log").path)'
            [ -f '\(pidFile)' ] && kill "$(cat '\(pidFile)')" 2>/dev/null
            rm -f '\(link)'
            nohup '\(try TC3xxFixtures.hostHarness().path)' --link '\(link)' >/dev/null 2>&1 &
            echo $! > '\(pidFile)'
            for i in $(seq 50); do [ -e '\(link)' ] && exit 0; sleep 0.1; done
            echo "flash.sh: the board did not come up" >&2; exit 1
            """.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        return script.path
    }

    func board() throws -> TC3xxBoard {
        let link = scratch.appendingPathComponent("ttyTC3").path
        return try TC3xxBoard(PluginConfiguration(kind: "tc3xx", pluginDirectory: scratch.path, settings: .object([
            "name": .string("tc397-1"), "device": .string(link), "memory_map": .string("tc397"),
            "flasher": .array([.string(try standInFlasher(link: link)), .string("{elf}")]),
            "work_root": .string(scratch.appendingPathComponent("work").path), "reply_timeout_s": .number(2),
            "transcript": .string(scratch.appendingPathComponent("uart.log").path),
        ])))
    }

    func testDeployFlashesAndRecordsTheMemoryTable() throws {
        let board = try board()
        XCTAssertEqual(try board.describe().memories.first { $0.name == "DSPR0" }?.usedBytes, nil, "nothing flashed yet: usage unknown")
        let elf = try TC3xxFixtures.linkedProgram(bits: 64, in: scratch.appendingPathComponent("build"))
        let deployment = try board.deploy(DeployRequest(files: [DeployFile(source: elf.path, name: "model.elf")]))
        XCTAssertTrue(try String(contentsOf: scratch.appendingPathComponent("flashed.log"), encoding: .utf8).contains("/model.elf"))

        let description = try board.describe()
        XCTAssertEqual(description.architecture, "tricore")
        let used = Dictionary(uniqueKeysWithValues: description.memories.map { ($0.name, $0.usedBytes ?? 0) })
        XCTAssertEqual(used["DSPR0"], 1024 + 8192)
        XCTAssertEqual(used["LMU"], 4096)
        XCTAssertEqual(used["DFlash"], 0)

        XCTAssertTrue(try board.reset(ResetRequest(timeoutMs: 5000)).log.contains("mlbench-harness-host"))
        let observed = try board.conditions(ConditionsRequest()).observed
        XCTAssertEqual(observed["harness_model"], "dense-8x4")
        XCTAssertEqual(observed["memory_DSPR0_used_bytes"], "9216")
        XCTAssertThrowsError(try board.conditions(ConditionsRequest(apply: ["clock_mhz": "300"]))) { error in
            XCTAssertEqual((error as? PluginFailure)?.code, .unsupported)
        }

        try board.cleanup(CleanupRequest(directory: deployment.directory))
        XCTAssertFalse(FileManager.default.fileExists(atPath: deployment.directory), "the user's files are removed")
        XCTAssertThrowsError(try board.cleanup(CleanupRequest(directory: "/etc")))
    }

    func testAnELFThatDoesNotFitIsRefusedBeforeFlashing() throws {
        let board = try board()
        let elf = try TC3xxFixtures.linkedProgram(bits: 64, script: """
            SECTIONS {
              .text 0x80000100 : { *(.text*) }
              .rodata 0xA0010000 : { *(.rodata*) }
              .data 0x70000000 : { *(.data*) }
              .bss 0x7003b000 (NOLOAD) : { *(.bss*) }
              .lmu_data 0x90040000 : { *(.lmu_data) }
              /DISCARD/ : { *(.note*) *(.eh_frame*) *(.comment) }
            }
            """, in: scratch.appendingPathComponent("build"))
        XCTAssertThrowsError(try board.deploy(DeployRequest(files: [DeployFile(source: elf.path, name: "model.elf")]))) { error in
            XCTAssertEqual((error as? PluginFailure)?.code, .invalidRequest)
            XCTAssertTrue("\(error)".contains("section .bss at 0x7003b000 (8192 bytes) runs past the end of DSPR0"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("flashed.log").path), "nothing was flashed")
        XCTAssertThrowsError(try board.deploy(DeployRequest(files: [DeployFile(source: "/etc/hostname", name: "hostname")]))) { error in
            XCTAssertTrue("\(error)".contains("none of the files is an ELF program"), "\(error)")
        }
    }
}
