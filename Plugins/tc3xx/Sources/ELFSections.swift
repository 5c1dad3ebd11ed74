import Foundation

/// A section header of an ELF file (System V ABI, "Sections").
public struct ELFSection: Equatable, Sendable {
    public var name: String
    public var type: UInt32
    public var flags: UInt64
    public var address: UInt64
    public var size: UInt64

    /// SHF_ALLOC: the section occupies memory while the program runs.
    public var isAllocated: Bool { flags & 0x2 != 0 }
    /// SHT_NOBITS (.bss): occupies memory, not the file — RAM, never flash.
    public var isNoBits: Bool { type == 8 }
}

public struct ELFError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var message: String
    public var description: String { "\(file): \(message)" }
}

/// Reads the section headers of an ELF file, 32-bit (TriCore) or 64-bit, little-
/// or big-endian, from the ELF header's e_shoff/e_shentsize/e_shnum/e_shstrndx.
public enum ELFSections {
    public static func read(_ path: String) throws -> [ELFSection] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ELFError(file: path, message: "cannot be read")
        }
        return try parse([UInt8](data), file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String = "ELF") throws -> [ELFSection] {
        func fail(_ message: String) -> ELFError { ELFError(file: file, message: message) }
        guard bytes.count >= 52, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw fail("not an ELF file (no \\x7fELF magic)")
        }
        let is64: Bool
        switch bytes[4] {
        case 1: is64 = false
        case 2: is64 = true
        default: throw fail("unknown ELF class \(bytes[4])")
        }
        guard bytes[5] == 1 || bytes[5] == 2 else { throw fail("unknown data encoding \(bytes[5])") }
        let little = bytes[5] == 1
        func unsigned(_ offset: Int, _ width: Int) throws -> UInt64 {
            guard offset >= 0, offset + width <= bytes.count else { throw fail("truncated: field at byte \(offset) is past the end (\(bytes.count) bytes)") }
            var value: UInt64 = 0
            for i in 0..<width {
                let byte = UInt64(bytes[offset + (little ? width - 1 - i : i)])
                value = value << 8 | byte
            }
            return value
        }
        let word = is64 ? 8 : 4
        let shoff = Int(try unsigned(is64 ? 0x28 : 0x20, word))
        let shentsize = Int(try unsigned(is64 ? 0x3a : 0x2e, 2))
        let shnum = Int(try unsigned(is64 ? 0x3c : 0x30, 2))
        let shstrndx = Int(try unsigned(is64 ? 0x3e : 0x32, 2))
        guard shnum > 0 else { throw fail("no section headers (e_shnum is 0)") }
        guard shentsize >= (is64 ? 64 : 40) else { throw fail("section header size \(shentsize) is too small") }
        guard shstrndx < shnum else { throw fail("section name table index \(shstrndx) is not below e_shnum \(shnum)") }

        struct Raw { var nameOffset: Int; var type: UInt32; var flags: UInt64; var address: UInt64; var offset: Int; var size: UInt64 }
        var raws = [Raw]()
        for index in 0..<shnum {
            let base = shoff + index * shentsize
            raws.append(Raw(nameOffset: Int(try unsigned(base, 4)), type: UInt32(try unsigned(base + 4, 4)),
                            flags: try unsigned(base + 8, word), address: try unsigned(base + 8 + word, word),
                            offset: Int(try unsigned(base + 8 + 2 * word, word)), size: try unsigned(base + 8 + 3 * word, word)))
        }
        let names = raws[shstrndx]
        func name(at offset: Int) throws -> String {
            let start = names.offset + offset
            guard offset < Int(names.size), start < bytes.count else { throw fail("section name offset \(offset) is outside the name table") }
            let end = bytes[start...].firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        return try raws.dropFirst().map { raw in   // section 0 is the null section
            ELFSection(name: try name(at: raw.nameOffset), type: raw.type, flags: raw.flags, address: raw.address, size: raw.size)
        }
    }
}
