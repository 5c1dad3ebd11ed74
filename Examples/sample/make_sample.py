#!/usr/bin/env python3
"""Generate the mlbench sample: a tiny CNN as ONNX, a perturbed copy, and inputs.

    make_sample.py --output DIR [--samples 16] [--seed 0]

writes
    DIR/model.onnx            image float32 [1,3,16,16] -> logits [1,10], probabilities [1,10]
    DIR/model-perturbed.onnx  the same graph with noisy Conv and Gemm weights
    DIR/inputs/image.npy      float32 [samples,3,16,16]; a runner feeds image[k:k+1]

Everything is built from a seeded generator with the onnx helper API, so the
files are identical on every machine and nothing is downloaded. The model has
two outputs so that comparisons between runs are exercised per output; the
perturbed copy gives a comparison that must report clear differences.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# IR version 8 is what onnx 1.12+ writes for opset 17; older runtimes still load it.
IR_VERSION = 8
IMAGE_SHAPE = (3, 16, 16)
FILTERS = 8
CLASSES = 10
# Conv keeps 16x16 (pads 1); MaxPool 2x2 halves it; Flatten feeds Gemm.
FLAT_FEATURES = FILTERS * (IMAGE_SHAPE[1] // 2) * (IMAGE_SHAPE[2] // 2)


def make_weights(seed: int) -> dict[str, np.ndarray]:
    """He-initialised weights, so logits stay in a range where softmax is not saturated."""
    rng = np.random.default_rng(seed)
    fan_in_conv = IMAGE_SHAPE[0] * 3 * 3
    return {
        "conv.weight": (rng.standard_normal((FILTERS, IMAGE_SHAPE[0], 3, 3))
                        * np.sqrt(2.0 / fan_in_conv)).astype(np.float32),
        "conv.bias": (0.1 * rng.standard_normal(FILTERS)).astype(np.float32),
        "fc.weight": (rng.standard_normal((CLASSES, FLAT_FEATURES))
                      * np.sqrt(2.0 / FLAT_FEATURES)).astype(np.float32),
        "fc.bias": (0.1 * rng.standard_normal(CLASSES)).astype(np.float32),
    }


def perturb(weights: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Add noise with half the weight's own std to the Conv and Gemm weights.

    Large enough that nearly every output value moves well beyond any
    numerical tolerance, small enough that the model stays a plausible CNN.
    """
    # A distinct stream, so the noise does not correlate with the weights.
    rng = np.random.default_rng([seed, 1])
    noisy = dict(weights)
    for name in ("conv.weight", "fc.weight"):
        w = weights[name]
        noisy[name] = (w + rng.standard_normal(w.shape) * 0.5 * w.std()).astype(np.float32)
    return noisy


def make_model(weights: dict[str, np.ndarray], name: str) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["conv"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1,
                         name="fc"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        inputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, *IMAGE_SHAPE])],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, CLASSES]),
        ],
        initializer=[numpy_helper.from_array(array, key) for key, array in weights.items()],
    )
    model = helper.make_model(graph, producer_name="mlbench-sample",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def make_inputs(samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 2])
    return rng.standard_normal((samples, *IMAGE_SHAPE)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="directory to write the sample into")
    parser.add_argument("--samples", type=int, default=16, help="number of input samples (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    if args.seed < 0:
        parser.error(f"--seed must not be negative, got {args.seed}")

    os.makedirs(os.path.join(args.output, "inputs"), exist_ok=True)
    weights = make_weights(args.seed)
    written = []

    path = os.path.join(args.output, "model.onnx")
    onnx.save(make_model(weights, "mlbench_sample"), path)
    written.append(path)

    path = os.path.join(args.output, "model-perturbed.onnx")
    onnx.save(make_model(perturb(weights, args.seed), "mlbench_sample_perturbed"), path)
    written.append(path)

    path = os.path.join(args.output, "inputs", "image.npy")
    images = make_inputs(args.samples, args.seed)
    np.save(path, images)
    written.append(path)

    for path in written:
        print(f"wrote {path}")
    print(f"inputs: image float32 {list(images.shape)} (feed image[k:k+1]); "
          f"outputs: logits, probabilities float32 [1,{CLASSES}] per sample")
    return 0


if __name__ == "__main__":
    sys.exit(main())
