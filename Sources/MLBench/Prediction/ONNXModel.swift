import Foundation

/// The part of an ONNX model that performance prediction reads: the main
/// graph's nodes, initializers (shapes, and values of small integer tensors
/// such as Reshape's target shape), inputs, outputs and declared shapes.
///
/// Read straight from the protobuf wire format (`onnx.proto`'s field numbers),
/// without generated code; fields outside this subset are skipped.
public struct ONNXModel: Sendable {
    public var irVersion: Int64
    public var producer: String
    /// Operator set versions by domain ("" is the default ONNX domain).
    public var opsets: [String: Int64]
    public var graph: Graph

    public struct Graph: Sendable {
        public var name: String
        public var nodes: [Node]
        public var initializers: [Tensor]
        public var inputs: [ValueInfo]
        public var outputs: [ValueInfo]
        /// Shapes of intermediate tensors, when the producer recorded them.
        public var valueInfo: [ValueInfo]
    }

    public struct Node: Sendable {
        public var name: String
        public var opType: String
        public var domain: String
        public var inputs: [String]
        public var outputs: [String]
        public var attributes: [String: Attribute]

        /// The name to show in messages: the node's own, else its operator and first output.
        public var label: String {
            name.isEmpty ? "\(opType) node producing '\(outputs.first ?? "?")'" : "\(opType) node '\(name)'"
        }
    }

    /// An attribute's value; only the kinds the CNN operators use are kept.
    public enum Attribute: Sendable, Equatable {
        case int(Int64)
        case float(Float)
        case ints([Int64])
        case floats([Float])
        case string(String)
        case tensor(Tensor)
        /// Graphs, strings lists and other kinds nothing here needs.
        case other
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dims: [Int64]
        public var dataType: Int32
        /// The integer values, when the tensor is an INT64 or INT32 one stored in the file.
        public var integerValues: [Int64]?
        /// True when the values live in a separate file (`data_location` EXTERNAL).
        public var isExternal: Bool

        public var elementCount: Int64 { dims.reduce(1, *) }
    }

    /// A declared tensor: its element type and shape, each dimension a number
    /// or a symbolic name (dynamic), or no shape at all.
    public struct ValueInfo: Sendable, Equatable {
        public var name: String
        public var elementType: Int32?
        public var shape: [Dimension]?
    }

    public enum Dimension: Sendable, Equatable, CustomStringConvertible {
        case value(Int64)
        case symbol(String)
        case unknown

        public var description: String {
            switch self {
            case .value(let value): return String(value)
            case .symbol(let name): return name
            case .unknown: return "?"
            }
        }
    }

    /// ONNX's TensorProto.DataType values used here.
    public enum DataType {
        public static let float: Int32 = 1, int32: Int32 = 6, int64: Int32 = 7

        /// Bytes per element, for memory estimates; nil for strings and unknown types.
        public static func size(_ type: Int32) -> Int? {
            switch type {
            case 2, 3, 9: return 1          // uint8, int8, bool
            case 4, 5, 10, 16: return 2     // uint16, int16, float16, bfloat16
            case 1, 6, 12: return 4         // float, int32, uint32
            case 7, 11, 13, 14: return 8    // int64, double, uint64, complex64
            case 15: return 16              // complex128
            default: return nil
            }
        }
    }
}

/// What is wrong with an ONNX file or graph for feature extraction, naming
/// the file and the node, tensor or byte where it goes wrong.
public struct ONNXError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The file is not a readable ONNX protobuf.
        case corrupt
        /// An operator that shape inference does not know.
        case unsupportedOperator = "unsupported_operator"
        /// A shape that is not a static number (a symbolic batch, a shape computed at run time).
        case dynamicShape = "dynamic_shape"
        /// A graph that does not hold together (a missing tensor, mismatched shapes).
        case invalidGraph = "invalid_graph"
    }

    public var kind: Kind
    public var file: String
    public var message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

extension ONNXModel {
    /// Reads the ONNX file at `path`.
    public static func load(_ path: String) throws -> ONNXModel {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ONNXError(.corrupt, file: path, "cannot be read: \(error.localizedDescription)")
        }
        return try parse(data, file: path)
    }

    /// Parses ONNX bytes; `file` names them in errors.
    public static func parse(_ data: Data, file: String) throws -> ONNXModel {
        let bytes = [UInt8](data)
        var context = "ModelProto"
        do {
            var reader = ProtobufReader(bytes[...])
            var model = ONNXModel(irVersion: 0, producer: "", opsets: [:], graph: Graph(
                name: "", nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: []))
            var sawGraph = false
            while let field = try reader.nextField() {
                switch field.number {
                case 1: model.irVersion = try reader.int64(field)
                case 2: model.producer = try reader.string(field)
                case 7:
                    context = "ModelProto.graph"
                    var graphReader = try reader.message(field)
                    model.graph = try readGraph(&graphReader, context: &context)
                    sawGraph = true
                case 8:
                    context = "ModelProto.opset_import"
                    var opset = try reader.message(field)
                    var domain = "", version: Int64 = 0
                    while let inner = try opset.nextField() {
                        switch inner.number {
                        case 1: domain = try opset.string(inner)
                        case 2: version = try opset.int64(inner)
                        default: try opset.skip(inner)
                        }
                    }
                    model.opsets[domain] = version
                default: try reader.skip(field)
                }
            }
            context = "ModelProto"
            guard sawGraph, model.irVersion > 0 else {
                throw ONNXError(.corrupt, file: file, "not an ONNX model: \(sawGraph ? "no ir_version" : "no graph") in the protobuf (\(bytes.count) bytes)")
            }
            return model
        } catch let error as ProtobufError {
            throw ONNXError(.corrupt, file: file, "not a valid ONNX protobuf: \(error) (in \(context))")
        }
    }

    private static func readGraph(_ reader: inout ProtobufReader, context: inout String) throws -> Graph {
        var graph = Graph(name: "", nodes: [], initializers: [], inputs: [], outputs: [], valueInfo: [])
        while let field = try reader.nextField() {
            switch field.number {
            case 1:
                context = "GraphProto.node[\(graph.nodes.count)]"
                var node = try reader.message(field)
                graph.nodes.append(try readNode(&node))
            case 2: graph.name = try reader.string(field)
            case 5:
                context = "GraphProto.initializer[\(graph.initializers.count)]"
                var tensor = try reader.message(field)
                graph.initializers.append(try readTensor(&tensor))
            case 11, 12, 13:
                let list = field.number == 11 ? "input" : field.number == 12 ? "output" : "value_info"
                context = "GraphProto.\(list)"
                var info = try reader.message(field)
                let value = try readValueInfo(&info)
                switch field.number {
                case 11: graph.inputs.append(value)
                case 12: graph.outputs.append(value)
                default: graph.valueInfo.append(value)
                }
            default: try reader.skip(field)
            }
        }
        return graph
    }

    private static func readNode(_ reader: inout ProtobufReader) throws -> Node {
        var node = Node(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [:])
        while let field = try reader.nextField() {
            switch field.number {
            case 1: node.inputs.append(try reader.string(field))
            case 2: node.outputs.append(try reader.string(field))
            case 3: node.name = try reader.string(field)
            case 4: node.opType = try reader.string(field)
            case 5:
                var attribute = try reader.message(field)
                let (name, value) = try readAttribute(&attribute)
                node.attributes[name] = value
            case 7: node.domain = try reader.string(field)
            default: try reader.skip(field)
            }
        }
        return node
    }

    private static func readAttribute(_ reader: inout ProtobufReader) throws -> (String, Attribute) {
        var name = ""
        var type: Int64 = 0
        var int: Int64?, float: Float?, string: String?, tensor: Tensor?
        var ints = [Int64](), floats = [Float]()
        while let field = try reader.nextField() {
            switch field.number {
            case 1: name = try reader.string(field)
            case 2: float = try reader.float(field)
            case 3: int = try reader.int64(field)
            case 4:
                // Bytes; attribute strings (auto_pad, mode) are ASCII.
                string = (try? reader.string(field)) ?? ""
            case 5:
                var inner = try reader.message(field)
                tensor = try readTensor(&inner)
            case 7: try reader.appendFloats(field, to: &floats)
            case 8: try reader.appendInt64s(field, to: &ints)
            case 20: type = try reader.int64(field)
            default: try reader.skip(field)
            }
        }
        // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7.
        switch type {
        case 1: return (name, .float(float ?? 0))
        case 2: return (name, .int(int ?? 0))
        case 3: return (name, .string(string ?? ""))
        case 4: return (name, tensor.map(Attribute.tensor) ?? .other)
        case 6: return (name, .floats(floats))
        case 7: return (name, .ints(ints))
        case 0:
            // Very old writers left the type out: infer it from the field that is set.
            if let int { return (name, .int(int)) }
            if let float { return (name, .float(float)) }
            if !ints.isEmpty { return (name, .ints(ints)) }
            if !floats.isEmpty { return (name, .floats(floats)) }
            if let string { return (name, .string(string)) }
            if let tensor { return (name, .tensor(tensor)) }
            return (name, .other)
        default: return (name, .other)
        }
    }

    private static func readTensor(_ reader: inout ProtobufReader) throws -> Tensor {
        var tensor = Tensor(name: "", dims: [], dataType: 0, integerValues: nil, isExternal: false)
        var int64Data = [Int64](), int32Data = [Int64]()
        var raw: ArraySlice<UInt8>?
        while let field = try reader.nextField() {
            switch field.number {
            case 1: try reader.appendInt64s(field, to: &tensor.dims)
            case 2: tensor.dataType = Int32(truncatingIfNeeded: try reader.int64(field))
            case 5: try reader.appendInt64s(field, to: &int32Data)
            case 7: try reader.appendInt64s(field, to: &int64Data)
            case 8: tensor.name = try reader.string(field)
            case 9:
                guard field.wireType == .lengthDelimited else { try reader.skip(field); continue }
                raw = try reader.lengthDelimited()
            case 14: tensor.isExternal = try reader.int64(field) == 1
            default: try reader.skip(field)
            }
        }
        // Only small integer tensors are decoded: they are shapes, axes and
        // split sizes that shape inference needs; weights are never copied.
        let count = tensor.elementCount
        if count <= Self.decodedIntegerLimit, tensor.dataType == DataType.int64 || tensor.dataType == DataType.int32 {
            if let raw {
                let width = tensor.dataType == DataType.int64 ? 8 : 4
                if raw.count == Int(count) * width {
                    tensor.integerValues = stride(from: raw.startIndex, to: raw.endIndex, by: width).map { start in
                        let value = raw[start..<(start + width)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                        return width == 8 ? Int64(bitPattern: value) : Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: value)))
                    }
                }
            } else if tensor.dataType == DataType.int64, int64Data.count == Int(count) {
                tensor.integerValues = int64Data
            } else if tensor.dataType == DataType.int32, int32Data.count == Int(count) {
                tensor.integerValues = int32Data.map { Int64(Int32(truncatingIfNeeded: $0)) }
            }
        }
        return tensor
    }

    /// Integer tensors up to this many elements have their values decoded.
    static let decodedIntegerLimit: Int64 = 1024

    private static func readValueInfo(_ reader: inout ProtobufReader) throws -> ValueInfo {
        var info = ValueInfo(name: "", elementType: nil, shape: nil)
        while let field = try reader.nextField() {
            switch field.number {
            case 1: info.name = try reader.string(field)
            case 2:
                // TypeProto.tensor_type (1) → elem_type (1), shape (2) → dim (1) → dim_value (1) | dim_param (2).
                var type = try reader.message(field)
                while let typeField = try type.nextField() {
                    guard typeField.number == 1 else { try type.skip(typeField); continue }
                    var tensorType = try type.message(typeField)
                    while let tensorField = try tensorType.nextField() {
                        switch tensorField.number {
                        case 1: info.elementType = Int32(truncatingIfNeeded: try tensorType.int64(tensorField))
                        case 2:
                            var shape = try tensorType.message(tensorField)
                            var dims = [Dimension]()
                            while let shapeField = try shape.nextField() {
                                guard shapeField.number == 1 else { try shape.skip(shapeField); continue }
                                var dimension = try shape.message(shapeField)
                                var dim = Dimension.unknown
                                while let dimField = try dimension.nextField() {
                                    switch dimField.number {
                                    case 1: dim = .value(try dimension.int64(dimField))
                                    case 2: dim = .symbol(try dimension.string(dimField))
                                    default: try dimension.skip(dimField)
                                    }
                                }
                                dims.append(dim)
                            }
                            info.shape = dims
                        default: try tensorType.skip(tensorField)
                        }
                    }
                }
            default: try reader.skip(field)
            }
        }
        return info
    }
}
