import Foundation

/// The 11 model-level features of the performance-prediction method (the
/// specification's §D.2, after Bouzidi et al.), computed from an ONNX graph.
///
/// Definitions, so that a feature table measured elsewhere can be made to match:
/// - `flops`: floating-point operations of one inference (see `ShapeInference`
///   for the count per operator; a multiply-accumulate is two);
/// - `activations`: the number of activation layers (Relu, Sigmoid, Clip, Softmax, ...);
/// - `neurons`: the sum of the output elements of every layer;
/// - `conv_params`, `fc_params`, `bn_params`: parameters (weights and biases;
///   scale, bias, mean and variance for BatchNormalization) of those layers;
///   a fully-connected layer is a Gemm, or a MatMul whose second input is a weight;
/// - `nb_layers`: every node but Constant;
/// - `input_size`: the height of the first graph input read as NCHW (dimension 2),
///   or its elements per sample when its rank is below 4;
/// - `bn_layers`, `conv_layers`, `fc_layers`: the number of those layers.
public struct ModelFeatures: Codable, Sendable, Equatable {
    public var flops: Int64
    public var activations: Int64
    public var neurons: Int64
    public var convParams: Int64
    public var nbLayers: Int64
    public var inputSize: Int64
    public var fcParams: Int64
    public var bnParams: Int64
    public var bnLayers: Int64
    public var convLayers: Int64
    public var fcLayers: Int64

    /// The column names of the feature table, in the specification's order.
    public static let columns = ["flops", "activations", "neurons", "conv_params", "nb_layers", "input_size",
                                 "fc_params", "bn_params", "bn_layers", "conv_layers", "fc_layers"]

    /// The values in the order of `columns`.
    public var values: [Int64] {
        [flops, activations, neurons, convParams, nbLayers, inputSize, fcParams, bnParams, bnLayers, convLayers, fcLayers]
    }
}

/// One node of the graph with its inferred shapes and cost.
public struct LayerFeatures: Codable, Sendable, Equatable {
    public var name: String
    public var opType: String
    public var inputShapes: [[Int64]]
    public var outputShapes: [[Int64]]
    public var flops: Int64
    public var params: Int64
    /// The index of the fused kernel this node belongs to.
    public var kernel: Int
}

/// A kernel as a runtime executes it: a compute node with the nodes fused into
/// it (Conv+BatchNormalization+Add+Relu, Gemm+Relu, ...), the unit a
/// kernel-level predictor (nn-Meter, LitePred) learns latencies of.
///
/// Fusion rule, the one ONNX Runtime's CPU execution provider applies at its
/// default optimisation level (checked against its profiles): a Conv, Gemm or
/// MatMul takes, in this order and each at most once, a BatchNormalization, an
/// Add and an activation (not Softmax) that follow it, as long as each
/// intermediate tensor has that node as its only consumer and is not a graph
/// output; a Sigmoid whose only consumer is a Mul of the Sigmoid's own input
/// (x · sigmoid(x), swish) is one kernel with it; a BatchNormalization without
/// a compute node before it takes the activation that follows it (ONNX
/// Runtime's blocked layout runs such a pair as one convolution when the
/// channels fit its blocks, and as two nodes otherwise: as one kernel it is
/// timed alike either way). Every other node is a kernel of its own.
public struct KernelFeatures: Codable, Sendable, Equatable {
    /// Operator types joined with "+" ("Conv+BatchNormalization+Relu").
    public var kind: String
    public var nodes: [String]
    public var inputShape: [Int64]
    public var outputShape: [Int64]
    public var flops: Int64
    public var params: Int64
    /// For Conv and pooling kernels: the window, strides and groups.
    public var kernelShape: [Int64]?
    public var strides: [Int64]?
    public var groups: Int64?
}

/// Everything feature extraction tells about one ONNX model.
public struct GraphFeatures: Codable, Sendable, Equatable {
    public var file: String
    public var model: ModelFeatures
    public var layers: [LayerFeatures]
    public var kernels: [KernelFeatures]

    /// Reads the ONNX file at `path` and extracts its features. Throws an
    /// `ONNXError` naming the node for a corrupt file, an unsupported
    /// operator or a shape that is not static.
    public static func extract(path: String) throws -> GraphFeatures {
        try extract(ONNXModel.load(path), file: path)
    }

    public static func extract(_ model: ONNXModel, file: String) throws -> GraphFeatures {
        var inference = ShapeInference(model: model, file: file)
        let layers = try inference.run()
        let nodes = layers.filter { $0.node.opType != "Constant" }
        let isWeight = Set(model.graph.initializers.map(\.name))
        func isFullyConnected(_ layer: ShapeInference.Layer) -> Bool {
            layer.node.opType == "Gemm" || layer.node.opType == "MatMul" && layer.node.inputs.count > 1 && isWeight.contains(layer.node.inputs[1])
        }
        let conv = nodes.filter { $0.node.opType == "Conv" }
        let fc = nodes.filter(isFullyConnected)
        let bn = nodes.filter { $0.node.opType == "BatchNormalization" }

        let firstInput = model.graph.inputs.first { !isWeight.contains($0.name) }.flatMap { inference.shapes[$0.name] } ?? []
        let inputSize = firstInput.count >= 4 ? firstInput[2] : firstInput.dropFirst().reduce(1, *)
        let features = ModelFeatures(
            flops: nodes.reduce(0) { $0 + $1.flops },
            activations: Int64(nodes.filter { ShapeInference.activationOperators.contains($0.node.opType) }.count),
            neurons: nodes.reduce(0) { total, layer in total + layer.outputShapes.reduce(0) { $0 + $1.reduce(1, *) } },
            convParams: conv.reduce(0) { $0 + $1.params },
            nbLayers: Int64(nodes.count),
            inputSize: inputSize,
            fcParams: fc.reduce(0) { $0 + $1.params },
            bnParams: bn.reduce(0) { $0 + $1.params },
            bnLayers: Int64(bn.count),
            convLayers: Int64(conv.count),
            fcLayers: Int64(fc.count))

        let (kernelOf, kernels) = fuse(nodes, graphOutputs: Set(model.graph.outputs.map(\.name)))
        let described = zip(nodes.indices, nodes).map { index, layer in
            LayerFeatures(name: layer.node.name, opType: layer.node.opType, inputShapes: layer.inputShapes,
                          outputShapes: layer.outputShapes, flops: layer.flops, params: layer.params, kernel: kernelOf[index])
        }
        return GraphFeatures(file: file, model: features, layers: described, kernels: kernels)
    }

    static let fusionAnchors: Set<String> = ["Conv", "Gemm", "MatMul"]

    /// Groups nodes into kernels (the rule is on `KernelFeatures`); returns each
    /// node's kernel index and the kernels.
    private static func fuse(_ layers: [ShapeInference.Layer], graphOutputs: Set<String>) -> ([Int], [KernelFeatures]) {
        var consumers = [String: [Int]]()
        for (index, layer) in layers.enumerated() {
            for input in Set(layer.node.inputs) where !input.isEmpty { consumers[input, default: []].append(index) }
        }
        var kernelOf = Array(repeating: -1, count: layers.count)
        var kernels = [KernelFeatures]()
        for start in layers.indices where kernelOf[start] < 0 {
            var members = [start]
            let anchor = layers[start].node.opType
            // The stages a follower may fill, in order: BatchNormalization, Add, activation
            // (a lone BatchNormalization: the activation only).
            var stage = fusionAnchors.contains(anchor) ? 0 : anchor == "BatchNormalization" ? 2 : 3
            if anchor == "Sigmoid", let output = layers[start].node.outputs.first, !graphOutputs.contains(output),
               let next = consumers[output], next.count == 1, kernelOf[next[0]] < 0,
               layers[next[0]].node.opType == "Mul", layers[next[0]].node.inputs.contains(layers[start].node.inputs[0]) {
                members.append(next[0])
            }
            while stage < 3 {
                let last = layers[members[members.count - 1]]
                guard last.node.outputs.count == 1, let output = last.node.outputs.first, !graphOutputs.contains(output),
                      let next = consumers[output], next.count == 1, kernelOf[next[0]] < 0 else { break }
                let op = layers[next[0]].node.opType
                if stage < 1, op == "BatchNormalization" { stage = 1 }
                else if stage < 2, op == "Add" { stage = 2 }
                else if op != "Softmax", op != "LogSoftmax", ShapeInference.activationOperators.contains(op) { stage = 3 }
                else { break }
                members.append(next[0])
            }
            for member in members { kernelOf[member] = kernels.count }
            let head = layers[start]
            func ints(_ name: String) -> [Int64]? {
                if case .ints(let values)? = head.node.attributes[name] { return values }
                return nil
            }
            let windowed = anchor == "Conv" || ShapeInference.poolingOperators.contains(anchor)
            var groups: Int64?
            if anchor == "Conv" {
                if case .int(let value)? = head.node.attributes["group"] { groups = value } else { groups = 1 }
            }
            let kernelShape = windowed ? (ints("kernel_shape") ?? (anchor == "Conv" ? Array(head.inputShapes[1].dropFirst(2)) : nil)) : nil
            let spatialRank = kernelShape?.count ?? 0
            kernels.append(KernelFeatures(
                kind: members.map { layers[$0].node.opType }.joined(separator: "+"),
                nodes: members.map { layers[$0].node.name },
                inputShape: head.inputShapes.first ?? [],
                outputShape: layers[members[members.count - 1]].outputShapes.first ?? [],
                flops: members.reduce(0) { $0 + layers[$1].flops },
                params: members.reduce(0) { $0 + layers[$1].params },
                kernelShape: kernelShape,
                strides: windowed ? (ints("strides") ?? Array(repeating: 1, count: spatialRank)) : nil,
                groups: groups))
        }
        return (kernelOf, kernels)
    }
}
