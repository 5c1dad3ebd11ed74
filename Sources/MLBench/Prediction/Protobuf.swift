import Foundation

/// A reader of the protobuf wire format, enough to walk an ONNX file without
/// generated code: fields are read one by one, length-delimited ones come back
/// as slices of the same buffer (no copy, so large initializers cost nothing).
///
/// Every error names the byte offset in the file, so a corrupt model is
/// reported where it breaks.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    struct Field {
        var number: Int
        var wireType: WireType
        /// Where the field's key starts in the buffer.
        var offset: Int
    }

    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var isAtEnd: Bool { position >= bytes.endIndex }

    /// The next field's key, or nil at the end of the message.
    mutating func nextField() throws -> Field? {
        guard !isAtEnd else { return nil }
        let offset = position
        let key = try varint()
        let number = Int(truncatingIfNeeded: key >> 3)
        guard let wireType = WireType(rawValue: UInt8(key & 7)) else {
            throw ProtobufError(offset: offset, message: "unknown wire type \(key & 7) for field \(number)")
        }
        guard number > 0 else { throw ProtobufError(offset: offset, message: "field number \(number) is not valid") }
        return Field(number: number, wireType: wireType, offset: offset)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < bytes.endIndex else { throw ProtobufError(offset: start, message: "varint runs past the end of the data") }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw ProtobufError(offset: start, message: "varint longer than 10 bytes") }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        let raw = try take(4, what: "fixed32")
        return raw.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func fixed64() throws -> UInt64 {
        let raw = try take(8, what: "fixed64")
        return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The payload of a length-delimited field (a message, a string, bytes or a packed array).
    mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
        let start = position
        let length = try varint()
        guard length <= UInt64(bytes.endIndex - position) else {
            throw ProtobufError(offset: start, message: "length \(length) runs past the end of the data (\(bytes.endIndex - position) bytes left)")
        }
        return try take(Int(length), what: "length-delimited field")
    }

    /// Skips the value of `field`, whatever its type.
    mutating func skip(_ field: Field) throws {
        switch field.wireType {
        case .varint: _ = try varint()
        case .fixed64: _ = try take(8, what: "fixed64")
        case .fixed32: _ = try take(4, what: "fixed32")
        case .lengthDelimited: _ = try lengthDelimited()
        case .startGroup, .endGroup:
            // Groups are deprecated and ONNX never writes them.
            throw ProtobufError(offset: field.offset, message: "field \(field.number) is a group, which ONNX never uses")
        }
    }

    // MARK: typed values, checked against the wire type they must have

    mutating func int64(_ field: Field) throws -> Int64 {
        try expect(field, .varint)
        return Int64(bitPattern: try varint())
    }

    mutating func float(_ field: Field) throws -> Float {
        try expect(field, .fixed32)
        return Float(bitPattern: try fixed32())
    }

    mutating func string(_ field: Field) throws -> String {
        try expect(field, .lengthDelimited)
        let raw = try lengthDelimited()
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw ProtobufError(offset: field.offset, message: "field \(field.number) is not valid UTF-8")
        }
        return text
    }

    mutating func message(_ field: Field) throws -> ProtobufReader {
        try expect(field, .lengthDelimited)
        return ProtobufReader(try lengthDelimited())
    }

    /// Repeated int64 values: protobuf writers may pack them into one field or
    /// write one field per value; both are read.
    mutating func appendInt64s(_ field: Field, to values: inout [Int64]) throws {
        if field.wireType == .lengthDelimited {
            var packed = ProtobufReader(try lengthDelimited())
            while !packed.isAtEnd { values.append(Int64(bitPattern: try packed.varint())) }
        } else {
            values.append(try int64(field))
        }
    }

    /// Repeated float values, packed or not.
    mutating func appendFloats(_ field: Field, to values: inout [Float]) throws {
        if field.wireType == .lengthDelimited {
            var packed = ProtobufReader(try lengthDelimited())
            while !packed.isAtEnd { values.append(Float(bitPattern: try packed.fixed32())) }
        } else {
            values.append(try float(field))
        }
    }

    private func expect(_ field: Field, _ wireType: WireType) throws {
        guard field.wireType == wireType else {
            throw ProtobufError(offset: field.offset, message: "field \(field.number) has wire type \(field.wireType), expected \(wireType)")
        }
    }

    private mutating func take(_ count: Int, what: String) throws -> ArraySlice<UInt8> {
        guard count <= bytes.endIndex - position else {
            throw ProtobufError(offset: position, message: "\(what) of \(count) bytes runs past the end of the data")
        }
        defer { position += count }
        return bytes[position..<(position + count)]
    }
}

/// Malformed protobuf data, at a byte offset of the file.
struct ProtobufError: Error, CustomStringConvertible {
    var offset: Int
    var message: String
    var description: String { "byte \(offset): \(message)" }
}
