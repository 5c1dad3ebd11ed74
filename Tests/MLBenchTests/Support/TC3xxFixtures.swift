import Foundation
import MLBenchCore
import XCTest

/// What the TC3xx tests build with the host's tools: the UART harness as a host
/// program, and programs linked at TC397 addresses (for the memory table).
enum TC3xxFixtures {
    nonisolated(unsafe) private static var harness: URL?

    /// The harness with the dense 8x4 model, built once with the host's C compiler.
    static func hostHarness(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        if let harness { return harness }
        let source = MLBenchBinary.repository.appendingPathComponent("Plugins/tc3xx/harness")
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("mlbench-harness-host-\(getpid())")
        let result = try ChildProcess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary.path] +
                                          ["harness.c", "port_host.c", "model_dense.c"].map { source.appendingPathComponent($0).path },
                                          timeout: 120)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        harness = binary
        return binary
    }

    /// Tests/Fixtures/tc3xx-elf/program.c compiled (`-m32`/`-m64`) and linked by
    /// tc397.ld (or `script`) into `folder`/program.elf.
    static func linkedProgram(bits: Int, script: String? = nil, in folder: URL,
                              file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let fixture = MLBenchBinary.repository.appendingPathComponent("Tests/Fixtures/tc3xx-elf")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let object = folder.appendingPathComponent("program.o").path, elf = folder.appendingPathComponent("program.elf")
        var scriptPath = fixture.appendingPathComponent("tc397.ld").path
        if let script {
            scriptPath = folder.appendingPathComponent("custom.ld").path
            try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        }
        let compile = try ChildProcess.run(["cc", "-m\(bits)", "-c", "-O1", "-fno-pic", "-fno-asynchronous-unwind-tables", "-ffreestanding",
                                            "-fno-common", fixture.appendingPathComponent("program.c").path, "-o", object], timeout: 120)
        if compile.status != 0 && bits == 32 { throw XCTSkip("no 32-bit code generation here: \(compile.stderr)") }
        XCTAssertEqual(compile.status, 0, compile.stderr, file: file, line: line)
        let linked = try ChildProcess.run(["ld"] + (bits == 32 ? ["-m", "elf_i386"] : []) + ["-T", scriptPath, "-e", "0", "-o", elf.path, object],
                                          timeout: 120)
        XCTAssertEqual(linked.status, 0, linked.stderr, file: file, line: line)
        return elf
    }

    /// Stops the harness a stand-in flasher started (its pid is in `pidFile`).
    static func stopBoard(pidFile: URL) {
        if let pid = try? String(contentsOf: pidFile, encoding: .utf8), let value = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(value, SIGKILL)
        }
    }
}
