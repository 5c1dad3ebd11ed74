import Foundation

/// An n-dimensional array read from or written to a `.npy` file, its values widened to
/// `Double` in C (row-major) order.
///
/// Widening is lossless for every supported dtype except 64-bit integers beyond ±2⁵³;
/// tensors are used to compare outputs, not to compute with.
public struct Tensor: Sendable, Equatable {
    /// The dimensions; `[]` for a scalar (one value).
    public var shape: [Int]
    /// The NumPy dtype it came from, in NumPy's canonical spelling: `<` for multi-byte
    /// types, `|` for single-byte ones (`<f4`, `<i8`, `|u1`, `|b1`, ...).
    public var dtype: String
    /// The elements in C order; booleans are 0 and 1.
    public var values: [Double]

    public init(shape: [Int], dtype: String = "<f8", values: [Double]) {
        self.shape = shape
        self.dtype = dtype
        self.values = values
    }

    /// The number of elements the shape calls for (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Why a `.npy` file could not be read or written.
public struct NPYError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Problem: Sendable, Equatable {
        /// The file could not be read or written (the system's message).
        case io(String)
        /// The file does not start with `\x93NUMPY`.
        case badMagic
        /// A format version other than 1.0, 2.0 or 3.0.
        case unsupportedVersion(major: Int, minor: Int)
        /// The header length field promises more bytes than the file has.
        case truncatedHeader(expected: Int, got: Int)
        /// The header dictionary is malformed or lacks a key.
        case badHeader(String)
        /// A dtype outside the supported set (structured, complex, strings, objects, ...).
        case unsupportedDtype(String)
        /// A big-endian dtype such as `>f4`.
        case bigEndian(String)
        /// `fortran_order: True`; only C order is read.
        case fortranOrder
        /// Fewer data bytes than the shape and dtype call for.
        case truncatedData(expected: Int, got: Int)
    }

    /// The file path, or whatever names the bytes when they did not come from a file.
    public var source: String
    public var problem: Problem

    public init(source: String, problem: Problem) {
        self.source = source
        self.problem = problem
    }

    public var description: String {
        let what: String
        switch problem {
        case .io(let message): what = message
        case .badMagic: what = "bad magic: not a NumPy .npy file (it must start with \\x93NUMPY)"
        case .unsupportedVersion(let major, let minor):
            what = "unsupported .npy format version \(major).\(minor) (1.0, 2.0 and 3.0 are read)"
        case .truncatedHeader(let expected, let got):
            what = "truncated header: expected \(expected) bytes got \(got)"
        case .badHeader(let reason): what = "bad header: \(reason)"
        case .unsupportedDtype(let dtype):
            what = "unsupported dtype '\(dtype)' (supported: \(NPY.supportedDtypes.joined(separator: " ")))"
        case .bigEndian(let dtype):
            what = "unsupported dtype '\(dtype)': big-endian data is not read; save it little-endian, "
                + "e.g. array.astype(array.dtype.newbyteorder('<'))"
        case .fortranOrder:
            what = "fortran_order is True: only C-order arrays are read; save np.ascontiguousarray(array)"
        case .truncatedData(let expected, let got):
            what = "truncated data: expected \(expected) bytes got \(got)"
        }
        return "\(source): \(what)"
    }
}

/// Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
///
/// The format: the magic `\x93NUMPY`, a major and minor version byte, a little-endian
/// header length (2 bytes in 1.0, 4 in 2.0 and 3.0), a Python dict literal giving
/// `descr`, `fortran_order` and `shape`, then the raw elements.
public enum NPY {
    /// The dtypes read, in NumPy's canonical spelling.
    public static let supportedDtypes = ["<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8",
                                         "|u1", "<u2", "<u4", "<u8", "|b1"]

    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Reads a `.npy` file. Errors name the file.
    public static func read(contentsOf url: URL) throws -> Tensor {
        let data: Data
        do {
            // Mapped: a large output file is not copied before it is widened.
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw NPYError(source: url.path, problem: .io("cannot read: \(error.localizedDescription)"))
        }
        return try decode(data, source: url.path)
    }

    /// Decodes the bytes of a `.npy` file; `source` names them in errors.
    /// Bytes after the data are ignored, as NumPy does.
    public static func decode(_ data: Data, source: String) throws -> Tensor {
        try data.withUnsafeBytes { try decode($0, source: source) }
    }

    /// Encodes a tensor as a version 1.0 file (2.0 when the header outgrows 1.0), in C
    /// order: `<f4` when the tensor's dtype is `<f4`, `<f8` for every other dtype (the
    /// values are already doubles; integers and booleans stay exact up to 2⁵³).
    ///
    /// - Precondition: `values.count` equals the product of `shape`.
    public static func encode(_ tensor: Tensor) -> Data {
        precondition(tensor.shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(tensor.shape)")
        precondition(tensor.values.count == tensor.elementCount,
                     "\(tensor.values.count) values for shape \(tensor.shape)")
        let single = tensor.dtype == "<f4"
        let descr = single ? "<f4" : "<f8"
        let shape: String
        switch tensor.shape.count {
        case 0: shape = "()"
        case 1: shape = "(\(tensor.shape[0]),)"  // a Python 1-tuple needs its comma
        default: shape = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
        // NumPy pads with spaces and a final newline so that the data starts on a
        // 64-byte boundary, which lets readers map the file and use the data in place.
        var prefixLength = magic.count + 2 + 2
        var version: UInt8 = 1
        if header.count + 1 + 64 > Int(UInt16.max) {
            version = 2
            prefixLength = magic.count + 2 + 4
        }
        let padding = (64 - (prefixLength + header.count + 1) % 64) % 64
        header += [UInt8](repeating: 0x20, count: padding)
        header.append(0x0A)

        var data = Data(capacity: prefixLength + header.count + tensor.values.count * (single ? 4 : 8))
        data.append(contentsOf: magic)
        data.append(contentsOf: [version, 0])
        if version == 1 {
            withUnsafeBytes(of: UInt16(header.count).littleEndian) { data.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: UInt32(header.count).littleEndian) { data.append(contentsOf: $0) }
        }
        data.append(contentsOf: header)
        if single {
            let words = tensor.values.map { Float($0).bitPattern.littleEndian }
            words.withUnsafeBytes { data.append(contentsOf: $0) }
        } else {
            let words = tensor.values.map { $0.bitPattern.littleEndian }
            words.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    /// Writes a tensor as `encode` does, atomically (a reader never sees half a file).
    public static func write(_ tensor: Tensor, to url: URL) throws {
        do {
            try encode(tensor).write(to: url, options: .atomic)
        } catch {
            throw NPYError(source: url.path, problem: .io("cannot write: \(error.localizedDescription)"))
        }
    }

    // MARK: - Decoding

    private static func decode(_ raw: UnsafeRawBufferPointer, source: String) throws -> Tensor {
        func fail(_ problem: NPYError.Problem) -> NPYError { NPYError(source: source, problem: problem) }

        guard raw.count >= magic.count, zip(raw.prefix(magic.count), magic).allSatisfy({ $0 == $1 }) else {
            throw fail(.badMagic)
        }
        guard raw.count >= 8 else { throw fail(.truncatedHeader(expected: 8, got: raw.count)) }
        let major = Int(raw[6])
        let minor = Int(raw[7])
        guard (1...3).contains(major), minor == 0 else {
            throw fail(.unsupportedVersion(major: major, minor: minor))
        }
        let lengthBytes = major == 1 ? 2 : 4
        let headerStart = 8 + lengthBytes
        guard raw.count >= headerStart else {
            throw fail(.truncatedHeader(expected: headerStart, got: raw.count))
        }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(raw[8 + i]) << (8 * i) }
        let dataStart = headerStart + headerLength
        guard raw.count >= dataStart else {
            throw fail(.truncatedHeader(expected: dataStart, got: raw.count))
        }
        // 1.0 and 2.0 headers are Latin-1, 3.0 headers UTF-8.
        let headerBytes = UnsafeRawBufferPointer(rebasing: raw[headerStart..<dataStart])
        guard let headerText = String(bytes: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail(.badHeader("not valid \(major == 3 ? "UTF-8" : "Latin-1") text"))
        }
        let header: Header
        do {
            header = try Header(parsing: headerText)
        } catch let error as HeaderSyntaxError {
            throw fail(.badHeader(error.reason))
        }
        let element = try ElementType(descr: header.descr, fail: fail)
        if header.fortranOrder { throw fail(.fortranOrder) }

        var count = 1
        for dimension in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail(.badHeader("shape \(header.shape) is too large")) }
            count = product
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: element.size)
        guard !overflow else { throw fail(.badHeader("shape \(header.shape) is too large")) }
        let available = raw.count - dataStart
        guard available >= expected else { throw fail(.truncatedData(expected: expected, got: available)) }

        let body = UnsafeRawBufferPointer(rebasing: raw[dataStart..<(dataStart + expected)])
        return Tensor(shape: header.shape, dtype: element.dtype, values: element.widen(body, count))
    }

    /// A supported element type: its canonical dtype, size, and how to widen it.
    private struct ElementType {
        var dtype: String
        var size: Int
        var widen: (UnsafeRawBufferPointer, Int) -> [Double]

        init(descr: String, fail: (NPYError.Problem) -> NPYError) throws {
            guard descr.count == 3, let order = descr.first else { throw fail(.unsupportedDtype(descr)) }
            let code = String(descr.dropFirst())
            guard let size = Int(code.dropFirst()) else { throw fail(.unsupportedDtype(descr)) }
            if size == 1 {
                // Byte order means nothing for one byte; NumPy spells these with '|'.
                guard "<>|=".contains(order) else { throw fail(.unsupportedDtype(descr)) }
            } else {
                switch order {
                case "<": break
                case "=":  // native order: little on every platform mlbench runs on
                    #if _endian(big)
                    throw fail(.bigEndian(descr))
                    #else
                    break
                    #endif
                case ">", "!": throw fail(.bigEndian(descr))
                default: throw fail(.unsupportedDtype(descr))
                }
            }
            self.size = size
            self.dtype = (size == 1 ? "|" : "<") + code
            switch code {
            case "f2": widen = { raw, n in load(UInt16.self, raw, n).map { halfToDouble(UInt16(littleEndian: $0)) } }
            case "f4": widen = { raw, n in load(UInt32.self, raw, n).map { Double(Float(bitPattern: UInt32(littleEndian: $0))) } }
            case "f8": widen = { raw, n in load(UInt64.self, raw, n).map { Double(bitPattern: UInt64(littleEndian: $0)) } }
            case "i1": widen = { raw, n in load(Int8.self, raw, n).map { Double($0) } }
            case "i2": widen = { raw, n in load(Int16.self, raw, n).map { Double(Int16(littleEndian: $0)) } }
            case "i4": widen = { raw, n in load(Int32.self, raw, n).map { Double(Int32(littleEndian: $0)) } }
            case "i8": widen = { raw, n in load(Int64.self, raw, n).map { Double(Int64(littleEndian: $0)) } }
            case "u1": widen = { raw, n in load(UInt8.self, raw, n).map { Double($0) } }
            case "u2": widen = { raw, n in load(UInt16.self, raw, n).map { Double(UInt16(littleEndian: $0)) } }
            case "u4": widen = { raw, n in load(UInt32.self, raw, n).map { Double(UInt32(littleEndian: $0)) } }
            case "u8": widen = { raw, n in load(UInt64.self, raw, n).map { Double(UInt64(littleEndian: $0)) } }
            case "b1": widen = { raw, n in load(UInt8.self, raw, n).map { $0 == 0 ? 0 : 1 } }
            default: throw fail(.unsupportedDtype(descr))
            }
        }
    }

    /// Copies `count` elements in one `memcpy`: the file offers no alignment guarantee,
    /// and a bulk copy is what keeps a 10 MB file from being read byte by byte.
    private static func load<T: FixedWidthInteger>(_ type: T.Type, _ raw: UnsafeRawBufferPointer, _ count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 {
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw.prefix(count * MemoryLayout<T>.size)))
            }
            initialized = count
        }
    }

    /// IEEE 754 binary16 to double, by hand: `Float16` is missing on Intel Macs.
    static func halfToDouble(_ bits: UInt16) -> Double {
        let negative = bits & 0x8000 != 0
        let exponent = Int((bits >> 10) & 0x1F)
        let fraction = Double(bits & 0x03FF)
        let magnitude: Double
        switch exponent {
        case 0: magnitude = fraction * 0x1p-24  // zero and subnormals
        case 0x1F: magnitude = fraction == 0 ? .infinity : .nan
        default: magnitude = (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }

    // MARK: - Header

    private struct HeaderSyntaxError: Error {
        var reason: String
    }

    /// The three keys of the header dict, parsed from its Python literal.
    private struct Header {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]

        init(parsing text: String) throws {
            var parser = LiteralParser(text)
            guard case .dict(let entries) = try parser.parseValue() else {
                throw HeaderSyntaxError(reason: "the header is not a dict: \(text.trimmed)")
            }
            try parser.expectEnd()
            func entry(_ key: String) throws -> Literal {
                guard let value = entries.first(where: { $0.0 == key })?.1 else {
                    throw HeaderSyntaxError(reason: "no '\(key)' key in \(text.trimmed)")
                }
                return value
            }
            switch try entry("descr") {
            case .string(let s): descr = s
            // A list descr is a structured (record) dtype, refused as an unsupported dtype.
            case .sequence: descr = "structured (record) dtype"
            default: throw HeaderSyntaxError(reason: "'descr' is not a string")
            }
            guard case .bool(let fortran) = try entry("fortran_order") else {
                throw HeaderSyntaxError(reason: "'fortran_order' is not True or False")
            }
            fortranOrder = fortran
            guard case .sequence(let items) = try entry("shape") else {
                throw HeaderSyntaxError(reason: "'shape' is not a tuple")
            }
            shape = try items.map {
                guard case .int(let n) = $0, n >= 0 else {
                    throw HeaderSyntaxError(reason: "'shape' must hold non-negative integers")
                }
                return n
            }
        }
    }

    private indirect enum Literal {
        case string(String)
        case int(Int)
        case bool(Bool)
        case none
        case sequence([Literal])
        case dict([(String, Literal)])
    }

    /// A parser for the small part of Python's literal syntax that `.npy` headers use:
    /// dicts, tuples, lists, quoted strings, integers (with Python 2's `L` suffix), True,
    /// False and None.
    private struct LiteralParser {
        let scalars: [Unicode.Scalar]
        var position = 0

        init(_ text: String) { scalars = Array(text.unicodeScalars) }

        mutating func parseValue() throws -> Literal {
            skipSpace()
            guard position < scalars.count else { throw HeaderSyntaxError(reason: "unexpected end of header") }
            let c = scalars[position]
            switch c {
            case "{":
                position += 1
                var entries: [(String, Literal)] = []
                while true {
                    skipSpace()
                    if consume("}") { return .dict(entries) }
                    guard case .string(let key) = try parseValue() else {
                        throw HeaderSyntaxError(reason: "dict keys must be strings")
                    }
                    skipSpace()
                    guard consume(":") else { throw HeaderSyntaxError(reason: "expected ':' after '\(key)'") }
                    entries.append((key, try parseValue()))
                    skipSpace()
                    if consume("}") { return .dict(entries) }
                    guard consume(",") else { throw HeaderSyntaxError(reason: "expected ',' or '}' in dict") }
                }
            case "(", "[":
                let close: Unicode.Scalar = c == "(" ? ")" : "]"
                position += 1
                var items: [Literal] = []
                while true {
                    skipSpace()
                    if consume(close) { return .sequence(items) }
                    items.append(try parseValue())
                    skipSpace()
                    if consume(close) { return .sequence(items) }
                    guard consume(",") else { throw HeaderSyntaxError(reason: "expected ',' or '\(close)'") }
                }
            case "'", "\"":
                position += 1
                var value = String.UnicodeScalarView()
                while position < scalars.count, scalars[position] != c {
                    if scalars[position] == "\\", position + 1 < scalars.count { position += 1 }
                    value.append(scalars[position])
                    position += 1
                }
                guard position < scalars.count else { throw HeaderSyntaxError(reason: "unterminated string") }
                position += 1
                return .string(String(value))
            case "-", "0"..."9":
                let start = position
                position += 1
                while position < scalars.count, ("0"..."9").contains(scalars[position]) { position += 1 }
                let digits = String(String.UnicodeScalarView(scalars[start..<position]))
                if position < scalars.count, scalars[position] == "L" { position += 1 }
                guard let n = Int(digits) else { throw HeaderSyntaxError(reason: "bad integer '\(digits)'") }
                return .int(n)
            default:
                let start = position
                while position < scalars.count, scalars[position].properties.isAlphabetic { position += 1 }
                switch String(String.UnicodeScalarView(scalars[start..<position])) {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                case let word:
                    throw HeaderSyntaxError(reason: "unexpected '\(word.isEmpty ? String(c) : word)'")
                }
            }
        }

        mutating func expectEnd() throws {
            skipSpace()
            guard position == scalars.count else {
                throw HeaderSyntaxError(reason: "unexpected text after the dict")
            }
        }

        private mutating func skipSpace() {
            while position < scalars.count, scalars[position].properties.isWhitespace || scalars[position] == "\0" {
                position += 1
            }
        }

        private mutating func consume(_ scalar: Unicode.Scalar) -> Bool {
            guard position < scalars.count, scalars[position] == scalar else { return false }
            position += 1
            return true
        }
    }
}

private extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
