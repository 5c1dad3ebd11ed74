import Foundation
import MLBenchPluginKit

/// One memory of a TC3xx and the address windows through which it is seen
/// (PFlash has a cached and an uncached window onto the same cells).
public struct TC3xxMemory: Equatable, Sendable, Decodable {
    /// "DSPR0", "PSPR1", "LMU", "DLMU2", "PFlash", "DFlash".
    public var name: String
    public var sizeBytes: UInt64
    public var bases: [UInt64]
    /// Flash holds a program's initialised data too (its load image): .data counts
    /// there as well as in the RAM it is copied to.
    public var isFlash: Bool

    public init(name: String, sizeBytes: UInt64, bases: [UInt64], isFlash: Bool = false) {
        self.name = name
        self.sizeBytes = sizeBytes
        self.bases = bases
        self.isFlash = isFlash
    }

    func contains(_ address: UInt64) -> Bool {
        bases.contains { address >= $0 && address < $0 + sizeBytes }
    }
}

/// The memory maps of the supported TC3xx devices, and the usage of each memory
/// by a program: its allocated ELF sections bucketed by address.
public enum TC3xxMemoryMap {
    private static let kib: UInt64 = 1024

    /// TC397 (TriBoard): six cores. Addresses from the TC39x user manual's memory
    /// map, as gathered in HARDWARE.md: DSPR0 0x70000000 and DSPR1 0x60000000 240 KiB,
    /// DSPR2–5 96 KiB, PSPR at DSPR base + 0x100000 (64 KiB), PFlash 16 MiB at
    /// 0x80000000 (cached) and 0xA0000000 (uncached), DFlash 1 MiB at 0xAF000000,
    /// DLMU n at 0x90000000 + n·0x10000 (64 KiB), LMU 768 KiB at 0x90040000.
    public static let tc397: [TC3xxMemory] = {
        let dsprBases: [UInt64] = [0x7000_0000, 0x6000_0000, 0x5000_0000, 0x4000_0000, 0x3000_0000, 0x1000_0000]
        var map = [TC3xxMemory]()
        for (core, base) in dsprBases.enumerated() {
            map.append(TC3xxMemory(name: "DSPR\(core)", sizeBytes: (core < 2 ? 240 : 96) * kib, bases: [base]))
            map.append(TC3xxMemory(name: "PSPR\(core)", sizeBytes: 64 * kib, bases: [base + 0x10_0000]))
        }
        // DLMU0–3 sit below the LMU; DLMU4/5 are elsewhere on the TC39x (not mapped here: a section there is reported).
        for core in 0..<4 { map.append(TC3xxMemory(name: "DLMU\(core)", sizeBytes: 64 * kib, bases: [0x9000_0000 + UInt64(core) * 0x1_0000])) }
        map.append(TC3xxMemory(name: "LMU", sizeBytes: 768 * kib, bases: [0x9004_0000]))
        map.append(TC3xxMemory(name: "PFlash", sizeBytes: 16 * kib * kib, bases: [0x8000_0000, 0xA000_0000], isFlash: true))
        map.append(TC3xxMemory(name: "DFlash", sizeBytes: 1024 * kib, bases: [0xAF00_0000], isFlash: true))
        return map
    }()

    /// TC375 (Lite Kit): three cores, the TC39x layout for them. Sizes (DSPR0/1
    /// 240 KiB, DSPR2 96 KiB, PFlash 6 MiB, DFlash 1 MiB, no LMU) are UNVERIFIED:
    /// check the TC37x user manual, or give the map in the inventory (`memory_map`).
    public static let tc375: [TC3xxMemory] = {
        let dsprBases: [UInt64] = [0x7000_0000, 0x6000_0000, 0x5000_0000]
        var map = [TC3xxMemory]()
        for (core, base) in dsprBases.enumerated() {
            map.append(TC3xxMemory(name: "DSPR\(core)", sizeBytes: (core < 2 ? 240 : 96) * kib, bases: [base]))
            map.append(TC3xxMemory(name: "PSPR\(core)", sizeBytes: 64 * kib, bases: [base + 0x10_0000]))
            map.append(TC3xxMemory(name: "DLMU\(core)", sizeBytes: 64 * kib, bases: [0x9000_0000 + UInt64(core) * 0x1_0000]))
        }
        map.append(TC3xxMemory(name: "PFlash", sizeBytes: 6 * kib * kib, bases: [0x8000_0000, 0xA000_0000], isFlash: true))
        map.append(TC3xxMemory(name: "DFlash", sizeBytes: 1024 * kib, bases: [0xAF00_0000], isFlash: true))
        return map
    }()

    public static func named(_ device: String) -> [TC3xxMemory]? {
        switch device.lowercased() {
        case "tc397": return tc397
        case "tc375": return tc375
        default: return nil
        }
    }

    /// The usage of each memory by the allocated sections of a program, each
    /// counted once at its run address. A section outside every memory, or running
    /// past the end of its memory, is an error naming it: the program cannot be
    /// right for this board. (The flash copy of initialised RAM data is not a
    /// section of its own and is not counted: a known underestimate of flash use.)
    public static func usage(of sections: [ELFSection], map: [TC3xxMemory], file: String) throws -> [MemoryRegion] {
        var used = [String: UInt64]()
        for section in sections where section.isAllocated && section.size > 0 {
            guard let memory = map.first(where: { $0.contains(section.address) }) else {
                throw PluginFailure(.invalidRequest, String(format: "%@: section %@ at 0x%08llx (%llu bytes) is in none of this board's memories (%@)",
                                                            file, section.name, section.address, section.size,
                                                            map.map(\.name).joined(separator: ", ")))
            }
            guard memory.contains(section.address + section.size - 1) else {
                throw PluginFailure(.invalidRequest, String(format: "%@: section %@ at 0x%08llx (%llu bytes) runs past the end of %@ (%llu bytes)",
                                                            file, section.name, section.address, section.size, memory.name, memory.sizeBytes))
            }
            if memory.isFlash && section.isNoBits {
                throw PluginFailure(.invalidRequest, "\(file): section \(section.name) is uninitialised data (NOBITS) placed in \(memory.name), which is flash")
            }
            used[memory.name, default: 0] += section.size
        }
        return map.map { MemoryRegion(name: $0.name, sizeBytes: $0.sizeBytes, usedBytes: used[$0.name] ?? 0) }
    }
}
