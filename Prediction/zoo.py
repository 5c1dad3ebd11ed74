#!/usr/bin/env python3
"""Generate the performance-prediction model zoo: CNNs as ONNX with random weights.

    zoo.py --output DIR [--seed 0] [--synthetic 40] [--sizes 32,64,96,128]
           [--families resnet,mobilenet,efficientnet,shufflenet,densenet] [--width 0.25,0.5]

writes
    DIR/<model>_<size>.onnx      one file per architecture and input size (batch 1, NCHW, float32)
    DIR/inputs/image_<size>.npy  float32 [2,3,size,size] inputs, shared by the models of that size
    DIR/manifest.json            one entry per file: model, family, synthetic, input_size, path,
                                 input, config

Two kinds of models (the specification's §E.1):
- synthetic "basic_model_<conv layers>_<filter size>_<filters>_<stride>": a stack
  of Conv+Relu layers with those four parameters, then global pooling and a
  fully-connected classifier; combinations are drawn at random without
  repetition, and impossible ones (the feature map would vanish) are discarded;
- standard architectures in the shapes of ResNet (basic blocks), MobileNetV2
  (inverted residuals, ReLU6), EfficientNet (MBConv with squeeze-and-excitation
  and swish), ShuffleNetV2 (channel split and shuffle) and DenseNet (dense
  blocks and transitions), at several widths and depths.

Everything comes from one seeded generator with the onnx helper API: the files
are identical on every machine and nothing is downloaded. The architecture name
("model") leaves the input size out, so a split by architecture keeps every
size of one architecture on the same side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
CLASSES = 10


class Graph:
    """Builds an ONNX graph node by node, with He-initialised random weights."""

    def __init__(self, name: str, rng: np.random.Generator, channels: int, size: int):
        self.name = name
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.size = size
        self.count = 0
        self.input = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, size, size])

    def fresh(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        value = self.rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attributes) -> list[str]:
        name = self.fresh(op.lower())
        names = [name] if outputs == 1 else [f"{name}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=name, **attributes))
        return names

    def conv(self, x: str, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
             bias: bool = False) -> str:
        name = self.fresh("conv")
        inputs = [x, self.weight(f"{name}.w", (cout, cin // groups, kernel, kernel), cin // groups * kernel * kernel)]
        if bias:
            inputs.append(self.constant(f"{name}.b", (0.1 * self.rng.standard_normal(cout)).astype(np.float32)))
        pad = kernel // 2
        self.nodes.append(helper.make_node("Conv", inputs, [name], name=name, kernel_shape=[kernel, kernel],
                                           strides=[stride, stride], pads=[pad] * 4, group=groups))
        return name

    def bn(self, x: str, channels: int) -> str:
        name = self.fresh("bn")
        ones = np.ones(channels, np.float32)
        inputs = [x, self.constant(f"{name}.scale", ones + 0.1 * self.rng.standard_normal(channels).astype(np.float32)),
                  self.constant(f"{name}.bias", (0.1 * self.rng.standard_normal(channels)).astype(np.float32)),
                  self.constant(f"{name}.mean", (0.1 * self.rng.standard_normal(channels)).astype(np.float32)),
                  self.constant(f"{name}.var", ones)]
        self.nodes.append(helper.make_node("BatchNormalization", inputs, [name], name=name))
        return name

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])[0]

    def relu6(self, x: str) -> str:
        low = self.constant(self.fresh("zero"), np.array(0, np.float32))
        high = self.constant(self.fresh("six"), np.array(6, np.float32))
        return self.node("Clip", [x, low, high])[0]

    def swish(self, x: str) -> str:
        return self.node("Mul", [x, self.node("Sigmoid", [x])[0]])[0]

    def conv_bn(self, x: str, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                activation=None) -> str:
        y = self.bn(self.conv(x, cin, cout, kernel, stride, groups), cout)
        return activation(y) if activation else y

    def classifier(self, x: str, channels: int) -> str:
        flat = self.node("Flatten", self.node("GlobalAveragePool", [x]), axis=1)[0]
        name = self.fresh("fc")
        w = self.weight(f"{name}.w", (CLASSES, channels), channels)
        b = self.constant(f"{name}.b", np.zeros(CLASSES, np.float32))
        self.nodes.append(helper.make_node("Gemm", [flat, w, b], ["logits"], name=name, transB=1))
        return "logits"

    def model(self) -> onnx.ModelProto:
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])
        graph = helper.make_graph(self.nodes, self.name, [self.input], [output], initializer=self.initializers)
        model = helper.make_model(graph, producer_name="mlbench-zoo", opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        return model


def scaled(channels: float, width: float, divisor: int = 8) -> int:
    return max(divisor, int(channels * width + divisor / 2) // divisor * divisor)


# --- synthetic models ------------------------------------------------------

SYNTHETIC_LAYERS = range(1, 9)
SYNTHETIC_FILTER_SIZES = (1, 3, 5, 7)
SYNTHETIC_FILTERS = (8, 16, 32, 64)
SYNTHETIC_STRIDES = (1, 2)


def synthetic_valid(layers: int, kernel: int, stride: int, size: int) -> bool:
    """A stack is impossible when the feature map shrinks below the filter."""
    for _ in range(layers):
        if size < kernel:
            return False
        size = (size + stride - 1) // stride
    return size >= 1


def synthetic(g: Graph, layers: int, kernel: int, filters: int, stride: int) -> str:
    x, channels = "image", 3
    for _ in range(layers):
        x = g.relu(g.conv(x, channels, filters, kernel, stride, bias=True))
        channels = filters
    return g.classifier(x, channels)


# --- standard architectures -----------------------------------------------

def resnet(g: Graph, depths: list[int], width: float) -> str:
    channels = scaled(64, width)
    x = g.conv_bn("image", 3, channels, 3, 1, activation=g.relu)
    for stage, depth in enumerate(depths):
        out = scaled(64 * 2 ** stage, width)
        for block in range(depth):
            stride = 2 if stage > 0 and block == 0 else 1
            y = g.conv_bn(x, channels, out, 3, stride, activation=g.relu)
            y = g.conv_bn(y, out, out, 3)
            shortcut = x if stride == 1 and channels == out else g.conv_bn(x, channels, out, 1, stride)
            x = g.relu(g.node("Add", [y, shortcut])[0])
            channels = out
    return g.classifier(x, channels)


MOBILENET_V2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet(g: Graph, width: float, depth: float) -> str:
    channels = scaled(32, width)
    x = g.conv_bn("image", 3, channels, 3, 2, activation=g.relu6)
    for expand, out, repeats, stride in MOBILENET_V2:
        out = scaled(out, width)
        for k in range(max(1, round(repeats * depth))):
            s = stride if k == 0 else 1
            hidden = channels * expand
            y = x if expand == 1 else g.conv_bn(x, channels, hidden, 1, activation=g.relu6)
            y = g.conv_bn(y, hidden, hidden, 3, s, groups=hidden, activation=g.relu6)
            y = g.conv_bn(y, hidden, out, 1)
            x = g.node("Add", [y, x])[0] if s == 1 and channels == out else y
            channels = out
    last = scaled(1280, max(width, 0.25))
    return g.classifier(g.conv_bn(x, channels, last, 1, activation=g.relu6), last)


EFFICIENTNET_B0 = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
                   (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)]


def squeeze_excite(g: Graph, x: str, channels: int, reduced: int) -> str:
    s = g.node("GlobalAveragePool", [x])[0]
    s = g.swish(g.conv(s, channels, reduced, 1, bias=True))
    s = g.node("Sigmoid", [g.conv(s, reduced, channels, 1, bias=True)])[0]
    return g.node("Mul", [x, s])[0]


def efficientnet(g: Graph, width: float, depth: float) -> str:
    channels = scaled(32, width)
    x = g.conv_bn("image", 3, channels, 3, 2, activation=g.swish)
    for expand, out, repeats, stride, kernel in EFFICIENTNET_B0:
        out = scaled(out, width)
        for k in range(max(1, round(repeats * depth))):
            s = stride if k == 0 else 1
            hidden = channels * expand
            y = x if expand == 1 else g.conv_bn(x, channels, hidden, 1, activation=g.swish)
            y = g.conv_bn(y, hidden, hidden, kernel, s, groups=hidden, activation=g.swish)
            y = squeeze_excite(g, y, hidden, max(1, channels // 4))
            y = g.conv_bn(y, hidden, out, 1)
            x = g.node("Add", [y, x])[0] if s == 1 and channels == out else y
            channels = out
    last = scaled(1280, max(width, 0.25))
    return g.classifier(g.conv_bn(x, channels, last, 1, activation=g.swish), last)


def channel_shuffle(g: Graph, x: str, channels: int, size: int) -> str:
    shape = g.constant(g.fresh("shape"), np.array([1, 2, channels // 2, size, size], np.int64))
    y = g.node("Transpose", g.node("Reshape", [x, shape]), perm=[0, 2, 1, 3, 4])[0]
    back = g.constant(g.fresh("shape"), np.array([1, channels, size, size], np.int64))
    return g.node("Reshape", [y, back])[0]


def shufflenet(g: Graph, width: float, repeats: list[int]) -> str:
    outs = [scaled(c, width, 16) for c in (116, 232, 464)]
    channels, size = 24, g.size
    x = g.conv_bn("image", 3, channels, 3, 2, activation=g.relu)
    size = (size + 1) // 2
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])[0]
    size = (size + 1) // 2
    for out, repeat in zip(outs, repeats):
        half = out // 2
        for k in range(repeat):
            if k == 0:
                left = g.conv_bn(g.conv_bn(x, channels, channels, 3, 2, groups=channels), channels, half, 1, activation=g.relu)
                right = g.conv_bn(x, channels, half, 1, activation=g.relu)
                size = (size + 1) // 2
                right = g.conv_bn(right, half, half, 3, 2, groups=half)
            else:
                sizes = g.constant(g.fresh("split"), np.array([half, half], np.int64))
                left, right = g.node("Split", [x, sizes], outputs=2, axis=1)
                right = g.conv_bn(right, half, half, 1, activation=g.relu)
                right = g.conv_bn(right, half, half, 3, 1, groups=half)
            right = g.conv_bn(right, half, half, 1, activation=g.relu)
            x = channel_shuffle(g, g.node("Concat", [left, right], axis=1)[0], out, size)
            channels = out
    last = scaled(1024, max(width, 0.25))
    return g.classifier(g.conv_bn(x, channels, last, 1, activation=g.relu), last)


def densenet(g: Graph, growth: int, blocks: list[int]) -> str:
    channels = 2 * growth
    x = g.conv_bn("image", 3, channels, 3, 1, activation=g.relu)
    for index, layers in enumerate(blocks):
        for _ in range(layers):
            y = g.conv(g.relu(g.bn(x, channels)), channels, 4 * growth, 1)
            y = g.conv(g.relu(g.bn(y, 4 * growth)), 4 * growth, growth, 3)
            x = g.node("Concat", [x, y], axis=1)[0]
            channels += growth
        if index < len(blocks) - 1:
            out = channels // 2
            x = g.conv(g.relu(g.bn(x, channels)), channels, out, 1)
            x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])[0]
            channels = out
    return g.classifier(g.relu(g.bn(x, channels)), channels)


def standard_architectures(widths: list[float]) -> list[tuple[str, str, dict]]:
    """(name, family, config) of every standard architecture at the given widths."""
    table = []
    for width in widths:
        w = f"{width:g}".replace(".", "p")
        for depths in ([1, 1, 1, 1], [2, 2, 2, 2]):
            table.append((f"resnet{2 + 2 * sum(depths)}_w{w}", "resnet", {"depths": depths, "width": width}))
        for depth in (0.5, 1.0):
            table.append((f"mobilenetv2_w{w}_d{depth:g}".replace(".", "p"), "mobilenet", {"width": width, "depth": depth}))
            table.append((f"efficientnet_w{w}_d{depth:g}".replace(".", "p"), "efficientnet", {"width": width, "depth": depth}))
        for repeats in ([2, 4, 2], [4, 8, 4]):
            table.append((f"shufflenetv2_w{w}_r{sum(repeats)}", "shufflenet", {"width": width, "repeats": repeats}))
        growth = max(4, int(32 * width))
        for blocks in ([2, 2, 2], [4, 4, 4]):
            table.append((f"densenet_g{growth}_b{sum(blocks)}", "densenet", {"growth": growth, "blocks": blocks}))
    return table


BUILDERS = {
    "resnet": lambda g, c: resnet(g, c["depths"], c["width"]),
    "mobilenet": lambda g, c: mobilenet(g, c["width"], c["depth"]),
    "efficientnet": lambda g, c: efficientnet(g, c["width"], c["depth"]),
    "shufflenet": lambda g, c: shufflenet(g, c["width"], c["repeats"]),
    "densenet": lambda g, c: densenet(g, c["growth"], c["blocks"]),
    "synthetic": lambda g, c: synthetic(g, c["conv_layers"], c["filter_size"], c["filters"], c["stride"]),
}


def synthetic_architectures(count: int, rng: np.random.Generator, sizes: list[int]) -> list[tuple[str, str, dict]]:
    """Distinct random (layers, filter size, filters, stride) combinations possible at every size."""
    space = [(l, k, f, s) for l in SYNTHETIC_LAYERS for k in SYNTHETIC_FILTER_SIZES for f in SYNTHETIC_FILTERS
             for s in SYNTHETIC_STRIDES if all(synthetic_valid(l, k, s, size) for size in sizes)]
    chosen = rng.permutation(len(space))[:count]
    return [(f"basic_model_{l}_{k}_{f}_{s}", "synthetic",
             {"conv_layers": l, "filter_size": k, "filters": f, "stride": s})
            for l, k, f, s in (space[i] for i in sorted(chosen))]


# --- kernel samples ----------------------------------------------------------
# A kernel sample is a short chain of random fused kernels, each fed by the one
# before, so that its kernels run where a network's do: between other kernels,
# in ONNX Runtime's blocked layout where their neighbours are, not only at the
# graph's ends, whose layout conversions a lone kernel pays. The building
# blocks are those CNNs are made of (nn-Meter's kernel types); the shapes come
# from a prior of their own, drawn without looking at the zoo's architectures.

SAMPLE_SIZES = (4, 7, 8, 14, 16, 24, 28, 32, 48, 56, 64, 96, 112, 128)
SAMPLE_BLOCKS = ("conv_bn_relu", "conv_bn", "conv_bn_relu6", "conv_bn_swish", "conv_relu", "conv",
                 "depthwise_bn_relu", "depthwise_bn_relu6", "depthwise_bn_swish", "depthwise_bn",
                 "bn_relu_conv", "maxpool", "averagepool", "concat", "residual", "squeeze_excite", "shuffle")
MAX_CHAIN = 6
MAX_SAMPLE_FLOPS = 1.5e9  # about 50 ms a run on one CPU core


def output_side(side: int, kernel: int, stride: int) -> int:
    """A block's output height: odd windows are padded to keep the size ("same"),
    the pools' window of 2 is not padded."""
    return (side - kernel) // stride + 1 if kernel % 2 == 0 else (side + stride - 1) // stride


def sample_channels(rng: np.random.Generator) -> int:
    """Channel counts as networks use them: a power of two from 8 to 512 (about
    a third), a multiple of 8 up to 504 (log-uniform, a third), or any count
    from 3 to 64."""
    draw = rng.random()
    if draw < 0.35:
        return 2 ** int(rng.integers(3, 10))
    if draw < 0.7:
        return 8 * int(np.exp(rng.uniform(0, np.log(64))))
    return int(np.exp(rng.uniform(np.log(3), np.log(65))))


def kernel_sample(rng: np.random.Generator, number: int) -> tuple[str, dict]:
    """One kernel sample: input channels (an image's 3 in a third of them) and
    size, then 1 to 6 blocks with their output channels, windows and strides
    drawn at random, and a classifier (global pooling, fully connected) at the
    end of some; chains whose work exceeds about 50 ms a run on a CPU core are
    drawn again."""
    while True:
        # A third start from an image (3 channels), as every network's first layer does.
        cin = 3 if rng.random() < 1 / 3 else sample_channels(rng)
        size = int(SAMPLE_SIZES[rng.integers(len(SAMPLE_SIZES))])
        channels, side, flops, blocks = cin, size, 0.0, []
        for _ in range(int(rng.integers(1, MAX_CHAIN + 1))):
            kind = SAMPLE_BLOCKS[rng.integers(len(SAMPLE_BLOCKS))]
            if kind == "bn_relu_conv" and blocks and blocks[-1]["kind"] in ("conv_bn", "depthwise_bn"):
                # No network normalises twice in a row (ONNX Runtime would fold both into the Conv).
                continue
            kernel = int((1, 3, 5, 7)[rng.integers(4)])
            if kind in ("maxpool", "averagepool"):
                kernel = int((2, 3)[rng.integers(2)])
            if kind in ("concat", "squeeze_excite", "shuffle"):
                kernel = 1
            stride = int((1, 2)[rng.integers(2)]) if kind not in ("concat", "residual", "squeeze_excite", "shuffle") else 1
            # A third of the convolutions keep the width, as layers within a network's stage do.
            keeps = kind.startswith("depthwise") or kind in ("maxpool", "averagepool", "residual", "shuffle")
            out = channels if keeps or (kind != "concat" and rng.random() < 1 / 3) else sample_channels(rng)
            if kind == "squeeze_excite":
                out = max(1, channels // 4)  # the reduced width; the block keeps its channels
            if kind == "shuffle" and channels % 2:
                continue
            if side < kernel or (kind == "residual" and side < 3):
                break
            new_side = output_side(side, kernel, stride)
            per_output = {"concat": channels, "squeeze_excite": 0, "shuffle": 0, "maxpool": 0, "averagepool": 0}
            window = kernel * kernel * (1 if kind.startswith("depthwise") else channels)
            flops += 2.0 * out * new_side * new_side * per_output.get(kind, window)
            if kind == "residual":
                flops += 2.0 * channels * channels * 9 * side * side
            blocks.append({"kind": kind, "cout": out, "kernel": kernel, "stride": stride})
            side = new_side
            channels = channels + out if kind == "concat" else (channels if kind == "squeeze_excite" else out)
        if blocks and rng.random() < 0.3:
            blocks.append({"kind": "classifier", "cout": CLASSES, "kernel": 1, "stride": 1})
        if blocks and flops <= MAX_SAMPLE_FLOPS:
            kinds = "_".join(b["kind"] for b in blocks[:2]) + ("_etc" if len(blocks) > 2 else "")
            return f"kernel_{number:04d}_{cin}_{size}_{len(blocks)}_{kinds}", {"cin": cin, "size": size, "blocks": blocks}


# A block's name ends in its activation, the Graph method that applies it.
ACTIVATIONS = ("relu", "relu6", "swish")


def kernel_model(name: str, config: dict, rng: np.random.Generator) -> onnx.ModelProto:
    g = Graph(name, rng, config["cin"], config["size"])
    x, channels, side = "image", config["cin"], config["size"]
    for block in config["blocks"]:
        kind, out, kernel, stride = block["kind"], block["cout"], block["kernel"], block["stride"]
        suffix = kind.rsplit("_", 1)[-1]
        activation = getattr(g, suffix) if suffix in ACTIVATIONS else None
        if kind.startswith("conv_bn"):
            x = g.conv_bn(x, channels, out, kernel, stride, activation=activation)
        elif kind == "conv_relu":
            x = g.relu(g.conv(x, channels, out, kernel, stride, bias=True))
        elif kind == "conv":
            x = g.conv(x, channels, out, kernel, stride, bias=True)
        elif kind.startswith("depthwise"):
            x = g.conv_bn(x, channels, channels, kernel, stride, groups=channels, activation=activation)
        elif kind == "bn_relu_conv":
            x = g.conv(g.relu(g.bn(x, channels)), channels, out, kernel, stride)
        elif kind in ("maxpool", "averagepool"):
            pad = kernel // 2 if kernel % 2 else 0
            x = g.node("MaxPool" if kind == "maxpool" else "AveragePool", [x], kernel_shape=[kernel, kernel],
                       strides=[stride, stride], pads=[pad] * 4)[0]
        elif kind == "concat":
            x = g.node("Concat", [x, g.conv(x, channels, out, 1)], axis=1)[0]
            out = channels + out
        elif kind == "residual":
            x = g.relu(g.node("Add", [g.conv_bn(x, channels, channels, 3), x])[0])
        elif kind == "squeeze_excite":
            x = squeeze_excite(g, x, channels, out)
            out = channels
        elif kind == "shuffle":
            x = channel_shuffle(g, x, channels, side)
        else:  # the classifier, always last
            x = g.classifier(x, channels)
        channels, side = out, output_side(side, kernel, stride)
    output = helper.make_tensor_value_info(x, TensorProto.FLOAT, None)
    graph = helper.make_graph(g.nodes, name, [g.input], [output], initializer=g.initializers)
    model = helper.make_model(graph, producer_name="mlbench-zoo", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    # The output's shape is onnx's own inference.
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model


def parse_list(text: str, kind, what: str) -> list:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"zoo.py: --{what} must be a comma-separated list, got '{text}'")
    if not values:
        raise SystemExit(f"zoo.py: --{what} is empty")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="folder to write the zoo into")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice and weight (default 0)")
    parser.add_argument("--synthetic", type=int, default=40, help="number of synthetic architectures (default 40)")
    parser.add_argument("--sizes", default="32,64,96,128", help="input sizes (default 32,64,96,128)")
    parser.add_argument("--families", default="resnet,mobilenet,efficientnet,shufflenet,densenet",
                        help="standard families to include; empty for none")
    parser.add_argument("--width", default="0.25,0.5", help="width multipliers of the standard families (default 0.25,0.5)")
    parser.add_argument("--limit", type=int, default=0, help="keep only the first N architectures of each family (0: all)")
    parser.add_argument("--kernel-samples", type=int, default=0,
                        help="also N kernel samples (family 'kernel'): chains of random fused kernels for the kernel-level "
                             "predictor's training, never evaluated as architectures (default 0)")
    args = parser.parse_args(argv)
    sizes = parse_list(args.sizes, int, "sizes")
    widths = parse_list(args.width, float, "width")
    families = [f for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in BUILDERS or f == "synthetic"]
    if unknown:
        parser.error(f"unknown families {unknown} (known: {', '.join(k for k in BUILDERS if k != 'synthetic')})")
    if min(sizes) < 16:
        parser.error(f"input sizes must be at least 16, got {min(sizes)}")
    if args.seed < 0 or args.synthetic < 0 or args.kernel_samples < 0:
        parser.error("--seed, --synthetic and --kernel-samples must not be negative")

    rng = np.random.default_rng(args.seed)
    architectures = [a for a in standard_architectures(widths) if a[1] in families]
    architectures += synthetic_architectures(args.synthetic, rng, sizes)
    if args.limit > 0:
        kept, seen = [], {}
        for entry in architectures:
            seen[entry[1]] = seen.get(entry[1], 0) + 1
            if seen[entry[1]] <= args.limit:
                kept.append(entry)
        architectures = kept

    os.makedirs(os.path.join(args.output, "inputs"), exist_ok=True)
    manifest = []
    for size in sizes:
        inputs = os.path.join("inputs", f"image_{size}.npy")
        data = np.random.default_rng([args.seed, size]).standard_normal((2, 3, size, size)).astype(np.float32)
        np.save(os.path.join(args.output, inputs), data)
        for name, family, config in architectures:
            # Weights depend on the seed, the architecture and the size only: adding a family
            # or a size leaves every other file unchanged.
            g = Graph(name, np.random.default_rng([args.seed, zlib.crc32(name.encode()), size]), 3, size)
            BUILDERS[family](g, config)
            path = f"{name}_{size}.onnx"
            onnx.save(g.model(), os.path.join(args.output, path))
            manifest.append({"model": name, "family": family, "synthetic": family == "synthetic",
                             "input_size": size, "path": path, "input": {"image": inputs}, "config": config})
    # Kernel samples last, from a generator of their own: the architectures' files stay as they were.
    samples = np.random.default_rng([args.seed, 7])
    for number in range(args.kernel_samples):
        name, config = kernel_sample(samples, number)
        inputs = os.path.join("inputs", f"kernel_{config['cin']}_{config['size']}.npy")
        if not os.path.exists(os.path.join(args.output, inputs)):
            data = np.random.default_rng([args.seed, config["cin"], config["size"]]).standard_normal(
                (2, config["cin"], config["size"], config["size"])).astype(np.float32)
            np.save(os.path.join(args.output, inputs), data)
        path = f"{name}.onnx"
        onnx.save(kernel_model(name, config, np.random.default_rng([args.seed, zlib.crc32(name.encode())])),
                  os.path.join(args.output, path))
        manifest.append({"model": name, "family": "kernel", "synthetic": False, "input_size": config["size"],
                         "path": path, "input": {"image": inputs}, "config": config})
    with open(os.path.join(args.output, "manifest.json"), "w") as file:
        json.dump({"seed": args.seed, "sizes": sizes, "models": manifest}, file, indent=1)
    print(f"wrote {len(manifest)} models ({len(architectures)} architectures x {len(sizes)} sizes"
          f"{f', {args.kernel_samples} kernel samples' if args.kernel_samples else ''}) "
          f"and {os.path.join(args.output, 'manifest.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
