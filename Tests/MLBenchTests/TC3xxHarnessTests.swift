import Foundation
import MLBenchCore
import MLBenchPluginKit
import SerialDriver
@testable import TC3xxBoard
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The TC3xx UART harness (Plugins/tc3xx/harness), compiled for the host and
/// served on a pseudo-terminal, driven through the termios serial driver as a
/// miniWiggler's UART would be; and the faults of a harness that talks garbage or nothing.
final class TC3xxHarnessTests: XCTestCase {
    var scratch: URL!
    var harness: ChildProcess?

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tc3xx-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        harness?.terminate()
        _ = try? harness?.wait(timeout: 5)   // reaped, not left a zombie
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Starts the harness and opens its UART as the plugin does.
    func connect() throws -> UARTHarness {
        let link = scratch.appendingPathComponent("ttyTC3").path
        harness = try ChildProcess([try TC3xxFixtures.hostHarness().path, "--link", link])
        let deadline = Date().addingTimeInterval(10)
        while (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil, Date() < deadline { usleep(10_000) }
        let transcript = try SerialTranscript(path: scratch.appendingPathComponent("uart.log").path)
        let port = try SerialPort(path: link, settings: SerialSettings(baudRate: 115_200, framing: "8N1"), transcript: transcript)
        return UARTHarness(board: "tc397", port: port, attempts: 3, timeout: 2)
    }

    func floats(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    func testProfileLoadInferResultsOverAPseudoTerminal() throws {
        let client = try connect()
        XCTAssertTrue(try client.waitReady(timeout: 5).contains("mlbench-harness-host"))
        let profile = try client.profile()
        XCTAssertEqual(profile, HarnessProfile(profile: "mlbench-harness-1", model: "dense-8x4", inputBytes: 32, outputBytes: 16,
                                               timer: "clock_monotonic"))

        // Input e3 selects the fourth weight column: outputs are that column plus the bias, exactly.
        try client.load(floats([0, 0, 0, 1, 0, 0, 0, 0]), chunk: 12)
        let run = try client.infer(25, warmup: 3)
        XCTAssertEqual(run.lapsUs.count, 25, "one timing per inference")
        XCTAssertTrue(run.lapsUs.allSatisfy { $0 < 100_000 }, "\(run.lapsUs)")
        XCTAssertEqual(Set(run.counters.keys), Set(HarnessRun.counterNames))
        XCTAssertEqual(run.counters["icnt"], .some(nil), "the host has no instruction counter: reported as absent, not zero")
        #if arch(x86_64)
        XCTAssertGreaterThan((run.counters["ccnt"] ?? nil) ?? 0, 0, "cycles from the TSC")
        #endif
        let expected = floats([Float(0.1) + 1.0, Float(-0.2) + -0.125, Float(0.3) + 0.0, Float(0.0) + 0.5])
        XCTAssertEqual(try client.results(), expected, "the outputs come back bit for bit")

        // The transcript holds both directions.
        let log = try String(contentsOf: scratch.appendingPathComponent("uart.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("> infer 25 3%"), log.suffix(500).description)
        XCTAssertTrue(log.contains("< ") && log.contains("m-lap-us-"))
    }

    func testRefusalsAreNamedAndNotRetried() throws {
        let client = try connect()
        _ = try client.waitReady(timeout: 5)
        XCTAssertThrowsError(try client.load([1, 2, 3])) { error in
            let failure = error as? TransportFailure
            XCTAssertEqual(failure?.kind, .command)
            XCTAssertEqual(failure?.attempts, 1)
            XCTAssertTrue("\(error)".contains("board 'tc397', step 'load'") && "\(error)".contains("the model takes 32 bytes, not 3"), "\(error)")
        }
        XCTAssertThrowsError(try client.infer(1)) { error in
            XCTAssertTrue("\(error)".contains("the input is not loaded"), "\(error)")
        }
    }

    /// A board side that answers garbage, then one that says nothing: bounded
    /// retries, then a classified failure naming the board and the step.
    func testGarbageAndSilenceGetBoundedRetriesThenAClassifiedFailure() throws {
        let terminal = try PseudoTerminal()
        let master = terminal.master
        let port = try SerialPort(path: terminal.slavePath)
        let client = UARTHarness(board: "tc375-lite", port: port, attempts: 3, timeout: 0.3)
        // The "board": answers every command with noise (a wrong baud rate looks like this).
        let answering = Thread {
            var buffer = [UInt8](repeating: 0, count: 256)
            var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            var answered = 0
            while answered < 3, poll(&descriptor, 1, 3000) > 0 {
                let count = read(master, &buffer, buffer.count)
                if count <= 0 { break }
                if buffer[..<count].contains(UInt8(ascii: "%")) {
                    _ = "\u{7f}\u{1b}x\u{fe}garbage\r\nm-ready\r\n".withCString { write(master, $0, strlen($0)) }
                    answered += 1
                }
            }
        }
        answering.start()
        XCTAssertThrowsError(try client.profile()) { error in
            let failure = error as? TransportFailure
            XCTAssertEqual(failure?.kind, .garbage)
            XCTAssertEqual(failure?.attempts, 3)
            XCTAssertTrue("\(error)".hasPrefix("board 'tc375-lite', step 'run': unreadable reply after 3 attempts"), "\(error)")
        }
        Thread.sleep(forTimeInterval: 0.2)
        let began = Date()
        XCTAssertThrowsError(try client.name()) { error in
            XCTAssertEqual((error as? TransportFailure)?.kind, .timedOut, "\(error)")
            XCTAssertEqual((error as? TransportFailure)?.attempts, 3)
        }
        XCTAssertLessThan(Date().timeIntervalSince(began), 3, "three short waits, not a hang")
    }
}

/// Memory usage per TC3xx memory from the allocated sections of an ELF built
/// by the host's compiler and placed at TC397 addresses by a linker script.
final class TC3xxMemoryTests: XCTestCase {
    func link(_ bits: Int, script: String? = nil) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("elf-\(UUID().uuidString.prefix(8))")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return try TC3xxFixtures.linkedProgram(bits: bits, script: script, in: folder)
    }

    /// The parser agrees with binutils' readelf on every section.
    func testSectionsMatchReadelf() throws {
        for bits in [64, 32] {
            let elf: URL
            do { elf = try link(bits) } catch is XCTSkip { continue }
            let sections = try ELFSections.read(elf.path)
            let readelf = try ChildProcess.run(["readelf", "-S", "-W", elf.path], timeout: 30)
            for section in sections where !section.name.isEmpty {
                let row = readelf.stdout.split(separator: "\n").first { $0.contains(" \(section.name) ") }
                let fields = row?.split(separator: "]").last?.split(separator: " ").map(String.init) ?? []
                XCTAssertGreaterThanOrEqual(fields.count, 5, "readelf lists \(section.name)")
                guard fields.count >= 5 else { continue }
                XCTAssertEqual(UInt64(fields[2], radix: 16), section.address, "\(bits)-bit \(section.name) address")
                XCTAssertEqual(UInt64(fields[4], radix: 16), section.size, "\(bits)-bit \(section.name) size")
            }
            XCTAssertEqual(sections.first { $0.name == ".bss" }?.isNoBits, true)
        }
    }

    func testUsagePerMemoryOfATC397Program() throws {
        let elf = try link(64)
        let sections = try ELFSections.read(elf.path)
        let regions = try TC3xxMemoryMap.usage(of: sections, map: TC3xxMemoryMap.tc397, file: elf.path)
        let byName = Dictionary(uniqueKeysWithValues: regions.map { ($0.name, $0) })
        XCTAssertEqual(byName["DSPR0"]?.usedBytes, 1024 + 8192, ".data and .bss")
        XCTAssertEqual(byName["DSPR0"]?.sizeBytes, 240 * 1024)
        XCTAssertEqual(byName["LMU"]?.usedBytes, 4096)
        let text = try XCTUnwrap(sections.first { $0.name == ".text" }).size
        XCTAssertEqual(byName["PFlash"]?.usedBytes, text + 300, "code (cached window) and constants (uncached window) are one flash")
        XCTAssertEqual(byName["DSPR1"]?.usedBytes, 0)
        XCTAssertEqual(byName["DFlash"]?.usedBytes, 0)
        XCTAssertEqual(regions.count, TC3xxMemoryMap.tc397.count, "every memory is listed, used or not")
    }

    func testSectionsOutsideTheMapAreNamed() throws {
        let elf = try link(64, script: """
            SECTIONS {
              .text 0x80000100 : { *(.text*) }
              .rodata 0xA0010000 : { *(.rodata*) }
              .data 0x20000000 : { *(.data*) }
              .bss 0x70008000 (NOLOAD) : { *(.bss*) }
              .lmu_data 0x90040000 : { *(.lmu_data) }
              /DISCARD/ : { *(.note*) *(.eh_frame*) *(.comment) }
            }
            """)
        XCTAssertThrowsError(try TC3xxMemoryMap.usage(of: try ELFSections.read(elf.path), map: TC3xxMemoryMap.tc397, file: "program.elf")) { error in
            XCTAssertTrue("\(error)".contains("program.elf: section .data at 0x20000000 (1024 bytes) is in none of this board's memories"), "\(error)")
        }
        XCTAssertThrowsError(try ELFSections.parse(Array("#!/bin/sh\n".utf8) + [UInt8](repeating: 0, count: 60), file: "flash.sh")) { error in
            XCTAssertEqual("\(error)", "flash.sh: not an ELF file (no \\x7fELF magic)")
        }
    }
}
