import CGPIOD
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error from libgpiod, naming the chip (and line) and the call that failed.
public struct GPIOError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The chip as the user named it ("gpiochip0", "/dev/gpiochip2", a label).
    public var chip: String
    /// The line ("line 17", "line 'RELAY1'"), when the call concerns one.
    public var line: String?
    public var call: String
    public var errno: Int32
    /// A hint for the operator when the cause is a common one.
    public var hint: String?

    public init(chip: String, line: String? = nil, call: String, errno: Int32, hint: String? = nil) {
        self.chip = chip
        self.line = line
        self.call = call
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        var text = "GPIO chip '\(chip)'"
        if let line { text += " \(line)" }
        text += ": \(call) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        if let hint { text += "; \(hint)" }
        return text
    }
}

/// A GPIO chip opened through libgpiod v1. Owns the chip handle; lines taken
/// from it keep it open.
public final class GPIOChip: @unchecked Sendable {
    let pointer: OpaquePointer
    /// How the user named the chip (what errors repeat).
    public let spec: String

    /// Opens a chip by path ("/dev/gpiochip0"), by name ("gpiochip0") or by label
    /// ("pinctrl-bcm2835"), tried in that order.
    public init(_ spec: String) throws {
        self.spec = spec
        let trimmed = spec.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw GPIOError(chip: spec, call: "gpiod_chip_open", errno: EINVAL, hint: "the chip setting is empty")
        }
        var opened: OpaquePointer?
        var calls: [(String, Int32)] = []
        if trimmed.hasPrefix("/") {
            opened = gpiod_chip_open(trimmed)
            if opened == nil { calls.append(("gpiod_chip_open", Glibc.errno)) }
        } else {
            opened = gpiod_chip_open_by_name(trimmed)
            if opened == nil {
                calls.append(("gpiod_chip_open_by_name", Glibc.errno))
                opened = gpiod_chip_open_by_label(trimmed)
                if opened == nil { calls.append(("gpiod_chip_open_by_label", Glibc.errno)) }
            }
        }
        guard let opened else {
            // The first failure is the most telling (by label reports ENOENT for everything).
            let (call, code) = calls.first ?? ("gpiod_chip_open", ENOENT)
            let chips = GPIOChip.available()
            let hint = chips.isEmpty
                ? "this machine has no GPIO chips (no /dev/gpiochip*)"
                : "chips here: " + chips.map { "\($0.name) '\($0.label)'" }.joined(separator: ", ")
            throw GPIOError(chip: spec, call: call, errno: code, hint: hint)
        }
        pointer = opened
    }

    deinit { gpiod_chip_close(pointer) }

    /// The kernel's name for the chip ("gpiochip0").
    public var name: String { String(cString: gpiod_chip_name(pointer)) }
    /// The driver's label ("pinctrl-bcm2835").
    public var label: String { String(cString: gpiod_chip_label(pointer)) }
    /// Lines 0…lineCount-1 exist.
    public var lineCount: Int { Int(gpiod_chip_num_lines(pointer)) }

    /// The line at `offset`.
    public func line(offset: Int) throws -> GPIOLine {
        guard offset >= 0, offset < lineCount else {
            throw GPIOError(chip: spec, line: "line \(offset)", call: "gpiod_chip_get_line", errno: EINVAL,
                            hint: "the chip has lines 0…\(lineCount - 1)")
        }
        guard let line = gpiod_chip_get_line(pointer, UInt32(offset)) else {
            throw GPIOError(chip: spec, line: "line \(offset)", call: "gpiod_chip_get_line", errno: Glibc.errno)
        }
        return GPIOLine(chip: self, pointer: line, label: "line \(offset)")
    }

    /// The line named `name` (its name in the device tree or ACPI table).
    public func line(named name: String) throws -> GPIOLine {
        guard let line = gpiod_chip_find_line(pointer, name) else {
            throw GPIOError(chip: spec, line: "line '\(name)'", call: "gpiod_chip_find_line", errno: Glibc.errno == 0 ? ENOENT : Glibc.errno,
                            hint: "no line of this chip has that name")
        }
        return GPIOLine(chip: self, pointer: line, label: "line '\(name)'")
    }

    /// A chip found on this machine.
    public struct Info: Sendable, Equatable {
        public var name: String
        public var label: String
        public var path: String
        public var lineCount: Int
    }

    /// The GPIO chips present (/dev/gpiochip*), each opened once to read its name and label.
    public static func available() -> [Info] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("gpiochip") }.sorted()
        return names.compactMap { name in
            guard let chip = try? GPIOChip("/dev/" + name) else { return nil }
            return Info(name: chip.name, label: chip.label, path: "/dev/" + name, lineCount: chip.lineCount)
        }
    }
}

/// One line of a chip. While requested it is held by this process (other
/// programs see it as used); released when this object goes away.
public final class GPIOLine: @unchecked Sendable {
    public let chip: GPIOChip
    let pointer: OpaquePointer
    /// "line 17" or "line 'RELAY1'", for errors.
    public let label: String
    public private(set) var isRequested = false

    init(chip: GPIOChip, pointer: OpaquePointer, label: String) {
        self.chip = chip
        self.pointer = pointer
        self.label = label
    }

    deinit { if isRequested { gpiod_line_release(pointer) } }

    private func error(_ call: String, hint: String? = nil) -> GPIOError {
        GPIOError(chip: chip.spec, line: label, call: call, errno: Glibc.errno, hint: hint)
    }

    /// Requests the line as an output with an initial logical value. With
    /// `activeLow`, logical 1 drives the pin low (most relay boards).
    public func requestOutput(consumer: String, activeLow: Bool, initial: Bool) throws {
        let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        guard gpiod_line_request_output_flags(pointer, consumer, flags, initial ? 1 : 0) == 0 else {
            let consumerNow = gpiod_line_consumer(pointer).map { String(cString: $0) }
            throw error("gpiod_line_request_output_flags",
                        hint: consumerNow.map { "the line is used by '\($0)'" })
        }
        isRequested = true
    }

    /// Sets the logical value of a requested output line.
    public func set(_ value: Bool) throws {
        guard gpiod_line_set_value(pointer, value ? 1 : 0) == 0 else { throw error("gpiod_line_set_value") }
    }

    /// The logical value of a requested line (for an output: what it drives).
    public func value() throws -> Bool {
        let value = gpiod_line_get_value(pointer)
        guard value >= 0 else { throw error("gpiod_line_get_value") }
        return value == 1
    }

    /// Gives the line back. Its level afterwards is up to the kernel driver.
    public func release() {
        if isRequested { gpiod_line_release(pointer) }
        isRequested = false
    }
}
