import Foundation

/// Static shape inference over an ONNX graph, with what each node costs:
/// floating-point operations and parameters. Every tensor must have a
/// number for every dimension; anything else is an error naming the node.
///
/// FLOPs count a multiply-accumulate as two operations (Conv, Gemm, MatMul),
/// a bias addition as one per output element, one per output element for
/// element-wise operators (per extra input for variadic ones), the window size
/// per output element for pooling, two per element for an inference-time
/// BatchNormalization (scale and shift), three per element for Softmax
/// (exponential, sum, division), and none for operators that only move data
/// (Reshape, Flatten, Transpose, Concat, Split, Squeeze, Pad, Identity, Dropout).
struct ShapeInference {
    let model: ONNXModel
    let file: String

    /// One node after inference.
    struct Layer {
        var node: ONNXModel.Node
        var inputShapes: [[Int64]]
        var outputShapes: [[Int64]]
        var flops: Int64
        /// Elements of the node's weights (initializer inputs that are parameters).
        var params: Int64
    }

    private(set) var shapes: [String: [Int64]] = [:]
    /// Values of small integer tensors known before run time (initializers, Constant outputs).
    private(set) var constants: [String: [Int64]] = [:]
    private var initializerNames = Set<String>()

    init(model: ONNXModel, file: String) {
        self.model = model
        self.file = file
    }

    static let activationOperators: Set<String> = [
        "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu", "Celu",
        "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu", "Softmax", "LogSoftmax",
    ]
    static let unaryOperators: Set<String> = [
        "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not", "Cos", "Sin",
    ]
    static let dataMovementOperators: Set<String> = ["Identity", "Dropout"]
    static let binaryOperators: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"]
    static let poolingOperators: Set<String> = ["MaxPool", "AveragePool", "LpPool"]
    static let reduceOperators: Set<String> = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL2"]

    /// Infers every node's shapes in graph order (ONNX requires topological order).
    mutating func run() throws -> [Layer] {
        let graph = model.graph
        for tensor in graph.initializers {
            shapes[tensor.name] = tensor.dims
            initializerNames.insert(tensor.name)
            if let values = tensor.integerValues { constants[tensor.name] = values }
        }
        for input in graph.inputs where !initializerNames.contains(input.name) {
            guard let dims = input.shape else {
                throw ONNXError(.dynamicShape, file: file, "graph input '\(input.name)' declares no shape")
            }
            shapes[input.name] = try dims.enumerated().map { index, dim in
                guard case .value(let value) = dim, value > 0 else {
                    throw ONNXError(.dynamicShape, file: file,
                                    "graph input '\(input.name)' has dimension \(index) '\(dim)', not a fixed number; export the model with a static shape (e.g. batch 1)")
                }
                return value
            }
        }
        var layers = [Layer]()
        for node in graph.nodes {
            layers.append(try infer(node))
            for (name, shape) in zip(node.outputs, layers[layers.count - 1].outputShapes) where !name.isEmpty {
                shapes[name] = shape
            }
        }
        for output in graph.outputs where shapes[output.name] == nil {
            throw ONNXError(.invalidGraph, file: file, "graph output '\(output.name)' is produced by no node")
        }
        return layers
    }

    // MARK: one node

    private mutating func infer(_ node: ONNXModel.Node) throws -> Layer {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw error(.unsupportedOperator, node, "is in domain '\(node.domain)', which shape inference does not know")
        }
        let inputs = try node.inputs.map { name -> [Int64] in
            if name.isEmpty { return [] }  // an optional input left out
            guard let shape = shapes[name] else {
                throw error(.invalidGraph, node, "reads '\(name)', which no earlier node, initializer or graph input produces")
            }
            return shape
        }
        var layer = Layer(node: node, inputShapes: inputs, outputShapes: [], flops: 0, params: 0)
        let op = node.opType
        func elements(_ shape: [Int64]) -> Int64 { shape.reduce(1, *) }
        func weights(_ indices: [Int]) -> Int64 {
            indices.filter { $0 < node.inputs.count && initializerNames.contains(node.inputs[$0]) }
                .reduce(0) { $0 + elements(inputs[$1]) }
        }
        switch op {
        case "Conv":
            let output = try convolution(node, inputs)
            layer.outputShapes = [output]
            let perOutput = inputs[1].dropFirst().reduce(1, *)  // C/group × kernel
            layer.flops = 2 * elements(output) * perOutput + (hasInput(node, 2) ? elements(output) : 0)
            layer.params = weights([1, 2])
        case "Gemm":
            try require(node, inputs, count: 2, rank: 2)
            let transA = int(node, "transA") == 1, transB = int(node, "transB") == 1
            let (m, k) = transA ? (inputs[0][1], inputs[0][0]) : (inputs[0][0], inputs[0][1])
            let (kb, n) = transB ? (inputs[1][1], inputs[1][0]) : (inputs[1][0], inputs[1][1])
            guard k == kb else { throw error(.invalidGraph, node, "multiplies [\(m), \(k)] by [\(kb), \(n)]: inner dimensions differ") }
            layer.outputShapes = [[m, n]]
            layer.flops = 2 * m * n * k + (hasInput(node, 2) ? m * n : 0)
            layer.params = weights([1, 2])
        case "MatMul":
            guard inputs.count == 2, !inputs[0].isEmpty, !inputs[1].isEmpty else {
                throw error(.invalidGraph, node, "needs two inputs")
            }
            var a = inputs[0], b = inputs[1]
            if a.count == 1 { a = [1] + a }
            if b.count == 1 { b = b + [1] }
            guard a[a.count - 1] == b[b.count - 2] else {
                throw error(.invalidGraph, node, "multiplies \(inputs[0]) by \(inputs[1]): inner dimensions differ")
            }
            let batch = try broadcast(node, Array(a.dropLast(2)), Array(b.dropLast(2)))
            var output = batch + [a[a.count - 2], b[b.count - 1]]
            if inputs[0].count == 1 { output.remove(at: output.count - 2) }
            if inputs[1].count == 1 { output.removeLast() }
            layer.outputShapes = [output]
            layer.flops = 2 * elements(batch) * a[a.count - 2] * b[b.count - 1] * a[a.count - 1]
            layer.params = weights([1])
        case "BatchNormalization":
            try require(node, inputs, count: 5, rank: nil)
            layer.outputShapes = [inputs[0]] + node.outputs.dropFirst().map { _ in [inputs[1].first ?? 0] }
            layer.flops = 2 * elements(inputs[0])
            layer.params = weights([1, 2, 3, 4])
        case _ where Self.poolingOperators.contains(op):
            let output = try pooling(node, inputs)
            layer.outputShapes = node.outputs.map { _ in output }
            layer.flops = elements(output) * (ints(node, "kernel_shape") ?? []).reduce(1, *)
        case "GlobalAveragePool", "GlobalMaxPool":
            try require(node, inputs, count: 1, rank: nil)
            guard inputs[0].count >= 3 else { throw error(.invalidGraph, node, "needs an input of rank 3 or more, got \(inputs[0])") }
            layer.outputShapes = [Array(inputs[0].prefix(2)) + Array(repeating: 1, count: inputs[0].count - 2)]
            layer.flops = elements(inputs[0])
        case _ where Self.activationOperators.contains(op) || Self.unaryOperators.contains(op):
            guard let first = inputs.first, !node.inputs[0].isEmpty else { throw error(.invalidGraph, node, "has no input") }
            var output = first
            if op == "PRelu", inputs.count > 1 { output = try broadcast(node, first, inputs[1]) }
            layer.outputShapes = [output]
            layer.flops = (op == "Softmax" || op == "LogSoftmax" ? 3 : 1) * elements(output)
            layer.params = op == "PRelu" ? weights([1]) : 0
        case _ where Self.dataMovementOperators.contains(op):
            guard let first = inputs.first else { throw error(.invalidGraph, node, "has no input") }
            // Dropout's optional mask has the data's shape too.
            layer.outputShapes = node.outputs.map { _ in first }
        case _ where Self.binaryOperators.contains(op):
            guard inputs.count >= 2 || (op == "Sum" || op == "Mean" || op == "Max" || op == "Min") && inputs.count >= 1 else {
                throw error(.invalidGraph, node, "needs two inputs, got \(inputs.count)")
            }
            let output = try inputs.dropFirst().reduce(inputs[0]) { try broadcast(node, $0, $1) }
            layer.outputShapes = [output]
            layer.flops = elements(output) * Int64(max(1, inputs.count - 1))
        case "Concat":
            guard let first = inputs.first else { throw error(.invalidGraph, node, "has no input") }
            let axis = try normalizedAxis(node, int(node, "axis") ?? 0, rank: first.count)
            var output = first
            output[axis] = 0
            for (index, shape) in inputs.enumerated() {
                guard shape.count == first.count,
                      shape.enumerated().allSatisfy({ $0.offset == axis || $0.element == first[$0.offset] }) else {
                    throw error(.invalidGraph, node, "concatenates \(first) with \(shape) (input \(index)) on axis \(axis): other dimensions differ")
                }
                output[axis] += shape[axis]
            }
            layer.outputShapes = [output]
        case "Flatten":
            try require(node, inputs, count: 1, rank: nil)
            let shape = inputs[0]
            let axis = try normalizedAxis(node, int(node, "axis") ?? 1, rank: shape.count, inclusiveEnd: true)
            layer.outputShapes = [[shape.prefix(axis).reduce(1, *), shape.dropFirst(axis).reduce(1, *)]]
        case "Reshape":
            try require(node, inputs, count: 2, rank: nil)
            let target = try constantInput(node, 1, what: "target shape")
            layer.outputShapes = [try reshape(node, inputs[0], to: target, allowZero: int(node, "allowzero") == 1)]
        case "Transpose":
            try require(node, inputs, count: 1, rank: nil)
            let shape = inputs[0]
            let perm = ints(node, "perm")?.map(Int.init) ?? Array((0..<shape.count).reversed())
            guard perm.sorted() == Array(0..<shape.count) else {
                throw error(.invalidGraph, node, "has perm \(perm), not a permutation of the \(shape.count) axes of \(shape)")
            }
            layer.outputShapes = [perm.map { shape[$0] }]
        case "Split":
            layer.outputShapes = try split(node, inputs)
        case "Squeeze", "Unsqueeze":
            try require(node, inputs, count: 1, rank: nil)
            let axes = try ints(node, "axes") ?? (hasInput(node, 1) ? constantInput(node, 1, what: "axes") : nil)
            layer.outputShapes = [try squeeze(node, inputs[0], axes: axes, unsqueeze: op == "Unsqueeze")]
        case _ where Self.reduceOperators.contains(op):
            try require(node, inputs, count: 1, rank: nil)
            let shape = inputs[0]
            let given = try ints(node, "axes") ?? (hasInput(node, 1) ? constantInput(node, 1, what: "axes") : nil)
            let axes = try Set((given ?? Array(0..<Int64(shape.count))).map { try normalizedAxis(node, Int($0), rank: shape.count) })
            let keep = (int(node, "keepdims") ?? 1) == 1
            layer.outputShapes = [shape.enumerated().compactMap { index, dim in
                axes.contains(index) ? (keep ? 1 : nil) : dim
            }]
            layer.flops = elements(shape)
        case "Pad":
            try require(node, inputs, count: 1, rank: nil)
            let pads = try ints(node, "pads") ?? constantInput(node, 1, what: "pads")
            let shape = inputs[0]
            guard pads.count == 2 * shape.count else {
                throw error(.invalidGraph, node, "has \(pads.count) pads for an input of rank \(shape.count)")
            }
            layer.outputShapes = [shape.enumerated().map { $1 + pads[$0] + pads[$0 + shape.count] }]
        case "Constant":
            guard case .tensor(let tensor)? = node.attributes["value"] else {
                throw error(.unsupportedOperator, node, "holds no tensor 'value' (other Constant forms are not supported)")
            }
            layer.outputShapes = [tensor.dims]
            if let values = tensor.integerValues, let name = node.outputs.first { constants[name] = values }
        default:
            throw error(.unsupportedOperator, node, "is not supported by mlbench's shape inference (supported: \(Self.supportedOperators.joined(separator: ", ")))")
        }
        if layer.outputShapes.count < node.outputs.count {
            throw error(.invalidGraph, node, "has \(node.outputs.count) outputs; \(op) produces \(layer.outputShapes.count)")
        }
        return layer
    }

    static let supportedOperators: [String] = (
        ["Conv", "Gemm", "MatMul", "BatchNormalization", "GlobalAveragePool", "GlobalMaxPool", "Concat", "Flatten",
         "Reshape", "Transpose", "Split", "Squeeze", "Unsqueeze", "Pad", "Constant"]
        + activationOperators + unaryOperators + dataMovementOperators + binaryOperators + poolingOperators + reduceOperators
    ).sorted()

    // MARK: operators

    private func convolution(_ node: ONNXModel.Node, _ inputs: [[Int64]]) throws -> [Int64] {
        try require(node, inputs, count: 2, rank: nil)
        let x = inputs[0], w = inputs[1]
        guard x.count >= 3, w.count == x.count else {
            throw error(.invalidGraph, node, "has input \(x) and weights \(w): ranks must match and be 3 or more")
        }
        let group = int(node, "group") ?? 1
        guard group > 0, x[1] == w[1] * group, w[0] % group == 0 else {
            throw error(.invalidGraph, node, "has \(x[1]) input channels but weights \(w) in \(group) group(s)")
        }
        let kernel = ints(node, "kernel_shape") ?? Array(w.dropFirst(2))
        let spatial = try window(node, input: Array(x.dropFirst(2)), kernel: kernel, ceilMode: false)
        return [x[0], w[0]] + spatial
    }

    private func pooling(_ node: ONNXModel.Node, _ inputs: [[Int64]]) throws -> [Int64] {
        try require(node, inputs, count: 1, rank: nil)
        let x = inputs[0]
        guard let kernel = ints(node, "kernel_shape"), x.count == kernel.count + 2 else {
            throw error(.invalidGraph, node, "needs a kernel_shape with one size per spatial axis of \(x)")
        }
        return Array(x.prefix(2)) + (try window(node, input: Array(x.dropFirst(2)), kernel: kernel, ceilMode: int(node, "ceil_mode") == 1))
    }

    /// Output sizes of a sliding window (Conv, pooling) under pads, strides,
    /// dilations and auto_pad, as the ONNX operator definitions give them.
    private func window(_ node: ONNXModel.Node, input: [Int64], kernel: [Int64], ceilMode: Bool) throws -> [Int64] {
        let rank = input.count
        guard kernel.count == rank else { throw error(.invalidGraph, node, "has kernel \(kernel) for spatial size \(input)") }
        let strides = ints(node, "strides") ?? Array(repeating: 1, count: rank)
        let dilations = ints(node, "dilations") ?? Array(repeating: 1, count: rank)
        let pads = ints(node, "pads") ?? Array(repeating: 0, count: 2 * rank)
        guard strides.count == rank, dilations.count == rank, pads.count == 2 * rank, strides.allSatisfy({ $0 > 0 }) else {
            throw error(.invalidGraph, node, "has strides \(strides), dilations \(dilations) or pads \(pads) that do not fit spatial size \(input)")
        }
        let autoPad = string(node, "auto_pad") ?? "NOTSET"
        return try (0..<rank).map { axis in
            let extent = (kernel[axis] - 1) * dilations[axis] + 1
            let size: Int64
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER": size = (input[axis] + strides[axis] - 1) / strides[axis]
            case "VALID": size = (input[axis] - extent) / strides[axis] + 1
            case "NOTSET", "":
                let span = input[axis] + pads[axis] + pads[axis + rank] - extent
                let steps = ceilMode ? (span + strides[axis] - 1) / strides[axis] : span / strides[axis]
                size = span < 0 ? 0 : steps + 1
            default: throw error(.invalidGraph, node, "has auto_pad '\(autoPad)', which ONNX does not define")
            }
            guard size > 0 else {
                throw error(.invalidGraph, node, "leaves no output on spatial axis \(axis): input \(input[axis]), kernel extent \(extent), stride \(strides[axis])")
            }
            return size
        }
    }

    private func reshape(_ node: ONNXModel.Node, _ shape: [Int64], to target: [Int64], allowZero: Bool) throws -> [Int64] {
        var output = try target.enumerated().map { index, dim -> Int64 in
            if dim == 0, !allowZero {
                guard index < shape.count else { throw error(.invalidGraph, node, "copies dimension \(index) of \(shape), which has none") }
                return shape[index]
            }
            return dim
        }
        let total = shape.reduce(1, *)
        let known = output.filter { $0 != -1 }.reduce(1, *)
        let unknown = output.indices.filter { output[$0] == -1 }
        guard unknown.count <= 1, output.allSatisfy({ $0 >= -1 }) else {
            throw error(.invalidGraph, node, "has target shape \(target), with more than one -1 or a negative size")
        }
        if let index = unknown.first {
            guard known > 0, total % known == 0 else { throw error(.invalidGraph, node, "cannot reshape \(shape) to \(target)") }
            output[index] = total / known
        }
        guard output.reduce(1, *) == total else { throw error(.invalidGraph, node, "cannot reshape \(shape) (\(total) elements) to \(target)") }
        return output
    }

    private func split(_ node: ONNXModel.Node, _ inputs: [[Int64]]) throws -> [[Int64]] {
        guard let shape = inputs.first else { throw error(.invalidGraph, node, "has no input") }
        let axis = try normalizedAxis(node, int(node, "axis") ?? 0, rank: shape.count)
        let parts = node.outputs.count
        let sizes = try ints(node, "split") ?? (hasInput(node, 1) ? constantInput(node, 1, what: "split sizes") : nil)
            ?? {
                guard shape[axis] % Int64(parts) == 0 else {
                    throw error(.invalidGraph, node, "splits \(shape[axis]) on axis \(axis) into \(parts) unequal parts without sizes")
                }
                return Array(repeating: shape[axis] / Int64(parts), count: parts)
            }()
        guard sizes.count == parts, sizes.reduce(0, +) == shape[axis] else {
            throw error(.invalidGraph, node, "splits \(shape[axis]) on axis \(axis) into \(sizes) for \(parts) outputs")
        }
        return sizes.map { size in
            var output = shape
            output[axis] = size
            return output
        }
    }

    private func squeeze(_ node: ONNXModel.Node, _ shape: [Int64], axes: [Int64]?, unsqueeze: Bool) throws -> [Int64] {
        if unsqueeze {
            guard let axes else { throw error(.invalidGraph, node, "has no axes") }
            let rank = shape.count + axes.count
            let positions = try Set(axes.map { try normalizedAxis(node, Int($0), rank: rank) })
            var rest = shape.makeIterator()
            return (0..<rank).map { positions.contains($0) ? 1 : rest.next()! }
        }
        let positions = try Set((axes ?? shape.indices.filter { shape[$0] == 1 }.map(Int64.init)).map {
            try normalizedAxis(node, Int($0), rank: shape.count)
        })
        return shape.enumerated().filter { !positions.contains($0.offset) }.map(\.element)
    }

    private func broadcast(_ node: ONNXModel.Node, _ a: [Int64], _ b: [Int64]) throws -> [Int64] {
        let rank = max(a.count, b.count)
        let left = Array(repeating: Int64(1), count: rank - a.count) + a
        let right = Array(repeating: Int64(1), count: rank - b.count) + b
        return try zip(left, right).map { x, y in
            guard x == y || x == 1 || y == 1 else { throw error(.invalidGraph, node, "cannot broadcast \(a) with \(b)") }
            return max(x, y)
        }
    }

    // MARK: helpers

    private func constantInput(_ node: ONNXModel.Node, _ index: Int, what: String) throws -> [Int64] {
        let name = node.inputs[index]
        guard let values = constants[name] else {
            throw error(.dynamicShape, node, "takes its \(what) from '\(name)', which is computed at run time, not a constant; export the model with static shapes")
        }
        return values
    }

    private func require(_ node: ONNXModel.Node, _ inputs: [[Int64]], count: Int, rank: Int?) throws {
        guard inputs.count >= count else {
            throw error(.invalidGraph, node, "needs \(count) inputs, got \(inputs.count)")
        }
        if let rank, let bad = inputs.prefix(count).first(where: { $0.count != rank }) {
            throw error(.invalidGraph, node, "needs inputs of rank \(rank), got \(bad)")
        }
    }

    private func hasInput(_ node: ONNXModel.Node, _ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }

    private func normalizedAxis(_ node: ONNXModel.Node, _ axis: Int64, rank: Int, inclusiveEnd: Bool = false) throws -> Int {
        try normalizedAxis(node, Int(axis), rank: rank, inclusiveEnd: inclusiveEnd)
    }

    private func normalizedAxis(_ node: ONNXModel.Node, _ axis: Int, rank: Int, inclusiveEnd: Bool = false) throws -> Int {
        let limit = inclusiveEnd ? rank + 1 : rank
        let value = axis < 0 ? axis + rank : axis
        guard value >= 0, value < limit else { throw error(.invalidGraph, node, "has axis \(axis), outside a tensor of rank \(rank)") }
        return value
    }

    private func int(_ node: ONNXModel.Node, _ name: String) -> Int64? {
        if case .int(let value)? = node.attributes[name] { return value }
        return nil
    }

    private func ints(_ node: ONNXModel.Node, _ name: String) -> [Int64]? {
        if case .ints(let value)? = node.attributes[name] { return value }
        return nil
    }

    private func string(_ node: ONNXModel.Node, _ name: String) -> String? {
        if case .string(let value)? = node.attributes[name] { return value }
        return nil
    }

    private func error(_ kind: ONNXError.Kind, _ node: ONNXModel.Node, _ message: String) -> ONNXError {
        ONNXError(kind, file: file, "\(node.label) \(message)")
    }
}
