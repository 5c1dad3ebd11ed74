import Foundation

/// Format checks of uploaded files, made on the bytes before anything is stored: an ONNX
/// model must parse as a protobuf ModelProto (with an IR version and a graph); an input must
/// be a NumPy .npy file whose header is well formed, whose dtype is a plain number type (no
/// Python objects: they would be unpickled) and whose data is exactly as long as the shape says.
public enum UploadValidation {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        init(_ message: String) { self.message = message }
    }

    /// What an accepted file is.
    public struct Accepted: Codable, Sendable, Equatable {
        /// onnx or npy.
        public var format: String
        public var dtype: String?
        public var shape: [Int]?
    }

    /// Checks `data` as the kind the caller says it is (`model` or `input`), or as whatever
    /// its first bytes say when `kind` is nil.
    public static func check(_ data: Data, kind: String?) throws -> Accepted {
        let looksNPY = data.starts(with: npyMagic)
        switch kind {
        case "model":
            if looksNPY { throw Failure("a model was expected, but this is a NumPy .npy file") }
            return try onnx(data)
        case "input":
            return try npy(data)
        case nil:
            return looksNPY ? try npy(data) : try onnx(data)
        case let other?:
            throw Failure("kind '\(other)' is not model or input")
        }
    }

    // MARK: ONNX

    /// Walks the protobuf wire format of a ModelProto: every field well formed and inside the
    /// file, field 1 (ir_version) a varint, field 7 (graph) present.
    public static func onnx(_ data: Data) throws -> Accepted {
        guard !data.isEmpty else { throw Failure("the model file is empty") }
        let bytes = [UInt8](data)
        var index = 0
        var sawVersion = false, sawGraph = false
        func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard index < bytes.count else { throw Failure("not an ONNX model: a protobuf varint runs past the end of the file (at byte \(index))") }
                let byte = bytes[index]
                index += 1
                guard shift < 64 else { throw Failure("not an ONNX model: a protobuf varint is too long (at byte \(index))") }
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while index < bytes.count {
            let start = index
            let key = try varint()
            let field = key >> 3, wireType = key & 7
            guard field > 0 else { throw Failure("not an ONNX model: protobuf field number 0 at byte \(start)") }
            switch wireType {
            case 0:
                _ = try varint()
                if field == 1 { sawVersion = true }
            case 1:
                guard index + 8 <= bytes.count else { throw Failure("not an ONNX model: a 64-bit field runs past the end of the file (at byte \(start))") }
                index += 8
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.count - index) else {
                    throw Failure("not an ONNX model: field \(field) at byte \(start) claims \(length) bytes, more than the file has left")
                }
                index += Int(length)
                if field == 7 { sawGraph = true }
            case 5:
                guard index + 4 <= bytes.count else { throw Failure("not an ONNX model: a 32-bit field runs past the end of the file (at byte \(start))") }
                index += 4
            default:
                throw Failure("not an ONNX model: protobuf wire type \(wireType) at byte \(start) is not used by ONNX")
            }
        }
        guard sawVersion else { throw Failure("not an ONNX model: it has no ir_version (field 1)") }
        guard sawGraph else { throw Failure("not an ONNX model: it has no graph (field 7)") }
        return Accepted(format: "onnx", dtype: nil, shape: nil)
    }

    // MARK: NPY

    static let npyMagic = Data([0x93]) + Data("NUMPY".utf8)

    /// Number types an input may hold, by kind letter, with their allowed sizes.
    static let numberKinds: [Character: Set<Int>] = ["b": [1], "i": [1, 2, 4, 8], "u": [1, 2, 4, 8], "f": [2, 4, 8], "c": [8, 16]]

    public static func npy(_ data: Data) throws -> Accepted {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, data.starts(with: npyMagic) else { throw Failure("not a NumPy .npy file: it does not start with \\x93NUMPY") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw Failure("not a NumPy .npy file: the header is cut short") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw Failure("NumPy .npy format version \(major) is not supported (1, 2 or 3)")
        }
        guard headerStart + headerLength <= bytes.count else { throw Failure("not a NumPy .npy file: the header is longer than the file") }
        guard let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw Failure("the .npy header is not text")
        }
        guard let descr = capture(header, #"'descr'\s*:\s*'([^']*)'"#) else { throw Failure("the .npy header has no 'descr' (dtype)") }
        guard let order = capture(header, #"'fortran_order'\s*:\s*(True|False)"#) else { throw Failure("the .npy header has no 'fortran_order'") }
        guard let shapeText = capture(header, #"'shape'\s*:\s*\(([^)]*)\)"#) else { throw Failure("the .npy header has no 'shape'") }
        _ = order
        let shape = try shapeText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { part -> Int in
            guard let value = Int(part), value >= 0 else { throw Failure("the .npy shape (\(shapeText)) is not a tuple of sizes") }
            return value
        }
        // dtype: byte order, kind letter, item size (e.g. <f4, |u1).
        let characters = Array(descr)
        guard characters.count >= 2, "<>|=".contains(characters[0]) || characters[0].isLetter else {
            throw Failure("the .npy dtype '\(descr)' is not a plain number type")
        }
        let kindIndex = "<>|=".contains(characters[0]) ? 1 : 0
        let kind = characters[kindIndex]
        guard let sizes = numberKinds[kind], let size = Int(String(characters[(kindIndex + 1)...])), sizes.contains(size) else {
            throw Failure("the .npy dtype '\(descr)' is not a plain number type (bool, int, uint, float or complex); object and structured arrays are refused")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw Failure("the .npy shape (\(shapeText)) is too large") }
            count = product
        }
        let expected = count * size
        let actual = bytes.count - headerStart - headerLength
        guard actual == expected else {
            throw Failure("the .npy data is \(actual) bytes, but shape (\(shapeText)) of \(descr) needs \(expected)")
        }
        return Accepted(format: "npy", dtype: descr, shape: shape)
    }

    private static func capture(_ text: String, _ pattern: String) -> String? {
        guard let expression = try? NSRegularExpression(pattern: pattern),
              let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let range = Range(match.range(at: 1), in: text) else { return nil }
        return String(text[range])
    }
}
