import Foundation
@testable import MLBench
import MLBenchCore
import XCTest

/// The protobuf reader on bytes written by hand: both encodings of repeated
/// fields, and corrupt data named by its byte offset.
final class ProtobufReaderTests: XCTestCase {
    func testReadsPackedAndUnpackedRepeatedIntegersAndNegativeValues() throws {
        // field 8 packed: [3, 300]; field 8 unpacked: -1 (ten-byte varint); field 2 fixed32 1.5.
        let bytes: [UInt8] = [0x42, 0x03, 0x03, 0xAC, 0x02,
                              0x40, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                              0x15, 0x00, 0x00, 0xC0, 0x3F]
        var reader = ProtobufReader(bytes[...])
        var ints = [Int64]()
        var float: Float?
        while let field = try reader.nextField() {
            switch field.number {
            case 8: try reader.appendInt64s(field, to: &ints)
            case 2: float = try reader.float(field)
            default: XCTFail("unexpected field \(field.number)")
            }
        }
        XCTAssertEqual(ints, [3, 300, -1])
        XCTAssertEqual(float, 1.5)
    }

    func testTruncatedDataIsAnErrorAtItsOffset() {
        // A length-delimited field claiming 10 bytes with 2 left.
        var reader = ProtobufReader([0x0A, 0x0A, 0x01, 0x02][...])
        XCTAssertThrowsError(try { _ = try reader.message(try XCTUnwrap(try reader.nextField())) }()) { error in
            XCTAssertTrue("\(error)".contains("byte 1"), "\(error)")
            XCTAssertTrue("\(error)".contains("runs past the end"), "\(error)")
        }
        var wrongType = ProtobufReader([0x0B][...])  // wire type 3: a group
        XCTAssertThrowsError(try wrongType.skip(try XCTUnwrap(try wrongType.nextField())))
    }
}

/// Features of ONNX graphs written by the onnx package, checked against
/// values computed by hand, and the errors for graphs that cannot be read.
final class FeatureExtractionTests: LabTestCase {
    /// A ResNet-, MobileNet- and ShuffleNet-like block: strided Conv+BN+Relu, a
    /// depthwise Conv added to its input, a channel shuffle (Reshape, Transpose,
    /// Reshape from a Constant), Split into max and average pooling, Concat,
    /// global pooling and two fully-connected layers (Gemm and MatMul). onnx's own
    /// shape inference writes value_info, which every inferred shape must match.
    static let blockModel = """
        import numpy as np, onnx
        from onnx import TensorProto, helper, numpy_helper
        rng = np.random.default_rng(0)
        def w(name, *shape, dtype=np.float32):
            return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)
        inits = [w("c1.w", 16, 3, 3, 3), w("c1.b", 16), w("bn.s", 16), w("bn.b", 16), w("bn.m", 16),
                 numpy_helper.from_array(np.ones(16, np.float32), "bn.v"), w("c2.w", 16, 1, 3, 3),
                 numpy_helper.from_array(np.array([1, 2, 8, 16, 16], np.int64), "shuffle.shape"),
                 numpy_helper.from_array(np.array([8, 8], np.int64), "split.sizes"),
                 w("fc.w", 10, 16), w("fc.b", 10), w("mm.w", 10, 4)]
        nodes = [
            helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="c1", strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn"),
            helper.make_node("Relu", ["bn"], ["r1"], name="r1"),
            helper.make_node("Conv", ["r1", "c2.w"], ["c2"], name="c2", group=16, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["c2", "r1"], ["add"], name="add"),
            helper.make_node("Relu", ["add"], ["r2"], name="r2"),
            helper.make_node("Reshape", ["r2", "shuffle.shape"], ["s1"], name="s1"),
            helper.make_node("Transpose", ["s1"], ["s2"], name="s2", perm=[0, 2, 1, 3, 4]),
            helper.make_node("Constant", [], ["back"], name="back",
                             value=numpy_helper.from_array(np.array([1, -1, 16, 16], np.int64))),
            helper.make_node("Reshape", ["s2", "back"], ["s3"], name="s3"),
            helper.make_node("Split", ["s3", "split.sizes"], ["h1", "h2"], name="split", axis=1),
            helper.make_node("MaxPool", ["h1"], ["p1"], name="p1", kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("AveragePool", ["h2"], ["p2"], name="p2", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("Concat", ["p1", "p2"], ["cat"], name="cat", axis=1),
            helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
            helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
            helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], name="fc", transB=1),
            helper.make_node("Sigmoid", ["fc"], ["sig"], name="sig"),
            helper.make_node("MatMul", ["sig", "mm.w"], ["mm"], name="mm"),
            helper.make_node("Softmax", ["mm"], ["y"], name="softmax", axis=-1),
        ]
        graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        onnx.save(onnx.shape_inference.infer_shapes(model, strict_mode=True), OUTPUT)
        """

    func testModelLevelFeaturesMatchHandComputedValues() throws {
        let path = scratch.appendingPathComponent("block.onnx")
        try MLBenchBinary.makeModel(at: path, Self.blockModel)
        let features = try GraphFeatures.extract(path: path.path)
        let model = features.model
        // Conv c1: 16×16×16 outputs × (2 × 27 + 1 bias) = 225280; BN 2 × 4096; Relu 4096;
        // depthwise c2: 4096 × 2 × 9 = 73728; Add 4096; Relu 4096; MaxPool 512 × 4; AveragePool 512 × 9;
        // GlobalAveragePool 1024; Gemm 2 × 16 × 10 + 10; Sigmoid 10; MatMul 2 × 10 × 4; Softmax 3 × 4.
        XCTAssertEqual(model.flops, 225280 + 8192 + 4096 + 73728 + 4096 + 4096 + 2048 + 4608 + 1024 + 330 + 10 + 80 + 12)
        XCTAssertEqual(model.convParams, 16 * 27 + 16 + 16 * 9)
        XCTAssertEqual(model.bnParams, 4 * 16)
        XCTAssertEqual(model.fcParams, 10 * 16 + 10 + 10 * 4)
        XCTAssertEqual(model.convLayers, 2)
        XCTAssertEqual(model.bnLayers, 1)
        XCTAssertEqual(model.fcLayers, 2)
        XCTAssertEqual(model.activations, 4, "Relu, Relu, Sigmoid, Softmax")
        XCTAssertEqual(model.nbLayers, 19, "every node but the Constant")
        XCTAssertEqual(model.inputSize, 32)
        // Ten tensors of 4096 elements (six layers, two reshapes, a transpose, the split's two halves),
        // then 512 + 512 + 1024 + 16 + 16 + 10 + 10 + 4 + 4.
        XCTAssertEqual(model.neurons, 10 * 4096 + 2108)

        // Every shape agrees with onnx's own shape inference.
        let onnxModel = try ONNXModel.load(path.path)
        let declared = Dictionary((onnxModel.graph.valueInfo + onnxModel.graph.outputs).map { ($0.name, $0.shape ?? []) },
                                  uniquingKeysWith: { first, _ in first })
        var compared = 0
        for layer in features.layers {
            let node = try XCTUnwrap(onnxModel.graph.nodes.first { $0.name == layer.name })
            for (name, shape) in zip(node.outputs, layer.outputShapes) {
                guard let expected = declared[name] else { continue }
                XCTAssertEqual(expected, shape.map { .value($0) }, "\(layer.name) output '\(name)'")
                compared += 1
            }
        }
        XCTAssertEqual(compared, 20, "every output of the 19 layers (the Split has two)")
    }

    func testKernelsFuseConvBatchNormAddAndActivations() throws {
        let path = scratch.appendingPathComponent("block.onnx")
        try MLBenchBinary.makeModel(at: path, Self.blockModel)
        let kernels = try GraphFeatures.extract(path: path.path).kernels
        XCTAssertEqual(kernels.map(\.kind), [
            "Conv+BatchNormalization+Relu", "Conv+Add+Relu", "Reshape", "Transpose", "Reshape", "Split",
            "MaxPool", "AveragePool", "Concat", "GlobalAveragePool", "Flatten", "Gemm+Sigmoid", "MatMul", "Softmax",
        ])
        let first = kernels[0]
        XCTAssertEqual(first.nodes, ["c1", "bn", "r1"])
        XCTAssertEqual(first.inputShape, [1, 3, 32, 32])
        XCTAssertEqual(first.outputShape, [1, 16, 16, 16])
        XCTAssertEqual(first.flops, 225280 + 8192 + 4096)
        XCTAssertEqual(first.params, 448 + 64)
        XCTAssertEqual(first.kernelShape, [3, 3])
        XCTAssertEqual(first.strides, [2, 2])
        XCTAssertEqual(kernels[1].groups, 16, "the depthwise Conv keeps its groups")
        XCTAssertEqual(kernels[7].kernelShape, [3, 3])
    }

    func testDynamicBatchIsAnErrorNamingTheInputAndDimension() throws {
        let path = scratch.appendingPathComponent("dynamic.onnx")
        try MLBenchBinary.makeModel(at: path, """
            import numpy as np, onnx
            from onnx import TensorProto, helper, numpy_helper
            node = helper.make_node("Relu", ["x"], ["y"])
            graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 8, 8])])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), OUTPUT)
            """)
        XCTAssertThrowsError(try GraphFeatures.extract(path: path.path)) { error in
            let error = error as? ONNXError
            XCTAssertEqual(error?.kind, .dynamicShape)
            XCTAssertTrue(error?.message.contains("graph input 'x' has dimension 0 'batch'") == true, "\(String(describing: error))")
        }
    }

    func testReshapeToARunTimeShapeAndAnUnknownOperatorNameTheirNodes() throws {
        let reshape = scratch.appendingPathComponent("reshape.onnx")
        try MLBenchBinary.makeModel(at: reshape, """
            import onnx
            from onnx import TensorProto, helper
            node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="to_runtime_shape")
            graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
                                                    helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), OUTPUT)
            """)
        XCTAssertThrowsError(try GraphFeatures.extract(path: reshape.path)) { error in
            XCTAssertEqual((error as? ONNXError)?.kind, .dynamicShape)
            XCTAssertTrue("\(error)".contains("Reshape node 'to_runtime_shape' takes its target shape from 'shape'"), "\(error)")
        }

        let lrn = scratch.appendingPathComponent("lrn.onnx")
        try MLBenchBinary.makeModel(at: lrn, """
            import onnx
            from onnx import TensorProto, helper
            node = helper.make_node("LRN", ["x"], ["y"], name="norm1", size=5)
            graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])])
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), OUTPUT)
            """)
        XCTAssertThrowsError(try GraphFeatures.extract(path: lrn.path)) { error in
            XCTAssertEqual((error as? ONNXError)?.kind, .unsupportedOperator)
            XCTAssertTrue("\(error)".contains("LRN node 'norm1' is not supported"), "\(error)")
        }
    }

    func testCorruptFilesAreNamedWithWhereTheyBreak() throws {
        let path = scratch.appendingPathComponent("block.onnx")
        try MLBenchBinary.makeModel(at: path, Self.blockModel)
        let bytes = try Data(contentsOf: path)
        let truncated = scratch.appendingPathComponent("truncated.onnx")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        XCTAssertThrowsError(try GraphFeatures.extract(path: truncated.path)) { error in
            XCTAssertEqual((error as? ONNXError)?.kind, .corrupt)
            XCTAssertTrue("\(error)".contains("truncated.onnx: not a valid ONNX protobuf: byte"), "\(error)")
            XCTAssertTrue("\(error)".contains("runs past the end"), "\(error)")
        }
        let text = scratch.appendingPathComponent("notes.onnx")
        try "name: not a model\n".write(to: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GraphFeatures.extract(path: text.path)) { error in
            XCTAssertEqual((error as? ONNXError)?.kind, .corrupt, "\(error)")
        }
    }

    /// `mlbench features`: the table a user reads, the JSON a script reads, and
    /// exit status 2 with the node named for a graph that cannot be read.
    func testFeaturesCommand() throws {
        let path = scratch.appendingPathComponent("block.onnx")
        try MLBenchBinary.makeModel(at: path, Self.blockModel)

        let table = try MLBenchBinary.run(["features", path.path, "--kernels"], home: home)
        XCTAssertEqual(table.status, 0, table.output)
        XCTAssertTrue(table.stdout.contains("conv_params  592"), table.stdout)
        XCTAssertTrue(table.stdout.contains("Conv+BatchNormalization+Relu"), table.stdout)

        let json = try MLBenchBinary.run(["features", path.path, "--json"], home: home)
        XCTAssertEqual(json.status, 0, json.output)
        let decoded = try JSONCoding.decode(GraphFeatures.self, from: json.stdout)
        XCTAssertEqual(decoded.model.fcLayers, 2)
        XCTAssertEqual(decoded.layers.count, 19)

        let lrn = scratch.appendingPathComponent("bad.onnx")
        try Data([0x08, 0x08, 0x3A, 0x7F]).write(to: lrn)
        let bad = try MLBenchBinary.run(["features", lrn.path], home: home)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("bad.onnx: not a valid ONNX protobuf: byte 3"), bad.stderr)
    }
}
