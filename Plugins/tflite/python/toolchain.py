#!/usr/bin/env python3
"""mlbench toolchain script for TFLite/LiteRT (CPU, XNNPACK).

    toolchain.py info
    toolchain.py check --model M --target cpu [--options JSON]
    toolchain.py build --model M --target cpu [--options JSON] --output-dir D [--calibration-inputs JSON]

Each command prints one JSON line on stdout; diagnostics go to stderr. Exit 0 on
success, 2 when the model or input is rejected (reason on the last stderr
line), 1 on an internal error. A `check` that finds the model incompatible
still succeeds: the findings are its result.

Models: ONNX (converted to a TensorFlow SavedModel by onnx2tf), a TensorFlow
SavedModel folder, or a Keras model (.keras, or legacy .h5). The SavedModel is
then converted by TensorFlow's TFLiteConverter.

Options:
  precision = float32 (default) | float16 | int8
      float16: weights stored as float16, computed in float32;
      int8: full-integer post-training quantization of weights and activations,
      calibrated on the experiment's inputs (float inputs and outputs are kept,
      quantized and dequantized at the model's edges);
  threads = a positive integer: the interpreter's thread count on the board.

ONNX models are channel-first (NCHW) where TFLite computes channel-last (NHWC):
onnx2tf transposes the weights and keeps the inputs as the ONNX model has them,
with a Transpose at each such input; `check` reports it as a layout conversion.

build writes D/model.tflite and D/model.tflite.io.json (the inputs and outputs
under the source model's names, the signature and the thread count).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from mlbench_runner import (calibration_samples, check_result, fail, finding, first_line, load_onnx,
                                onnx_footprint, run_toolchain, write_json)
    from runner import IO_FORMAT, IO_SIDECAR_SUFFIX, IO_VERSION
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"toolchain.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

TARGETS = ["cpu"]
FORMATS = ["onnx", "savedmodel", "keras"]
PRECISIONS = ["float32", "float16", "int8"]
KNOWN_OPTIONS = ("precision", "threads")
ARTIFACT_NAME = "model.tflite"
SIGNATURE = "serving_default"
# ONNX operators that work on channel-first tensors: their presence means the
# NCHW -> NHWC conversion matters for time.
CHANNEL_FIRST_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                     "BatchNormalization", "InstanceNormalization", "LpPool", "DepthToSpace", "SpaceToDepth",
                     "Resize", "Upsample", "LRN"}


def package_version(name: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # not installed
        return None


def model_format(path: str) -> str | None:
    if os.path.isdir(path):
        return "savedmodel" if os.path.isfile(os.path.join(path, "saved_model.pb")) else None
    extension = os.path.splitext(path)[1].lower()
    return {".onnx": "onnx", ".keras": "keras", ".h5": "keras"}.get(extension)


def option_problems(options: dict) -> tuple[dict, list[str]]:
    """The effective options and what is wrong with the given ones."""
    problems = [f"unknown option '{name}' (known: {', '.join(KNOWN_OPTIONS)})"
                for name in options if name not in KNOWN_OPTIONS]
    precision = options.get("precision", "float32")
    if precision not in PRECISIONS:
        problems.append(f"option 'precision' must be one of {', '.join(PRECISIONS)}, got {json.dumps(precision)}")
    threads = options.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        problems.append(f"option 'threads' must be a positive integer, got {json.dumps(threads)}")
    effective = {"precision": precision}
    if threads is not None:
        effective["threads"] = threads
    return effective, problems


def target_problems(target: str) -> list[str]:
    if target in TARGETS:
        return []
    return [f"target '{target}' is not supported; tflite builds for: {', '.join(TARGETS)}"]


def onnx2tf_operators() -> set[str] | None:
    """The ONNX op types onnx2tf converts: one module per op in onnx2tf/ops.

    Found without importing onnx2tf (which imports TensorFlow, seconds of start-up).
    """
    spec = importlib.util.find_spec("onnx2tf")
    if spec is None or not spec.submodule_search_locations:
        return None
    ops = os.path.join(list(spec.submodule_search_locations)[0], "ops")
    if not os.path.isdir(ops):
        return None
    return {name[:-3] for name in os.listdir(ops) if name.endswith(".py") and not name.startswith("_")}


def channel_first_inputs(model) -> list:
    """Graph inputs of rank 3 to 5, the ones onnx2tf keeps channel-first."""
    parameters = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input
            if value.name not in parameters and 3 <= len(value.type.tensor_type.shape.dim) <= 5]


def onnx_findings(model) -> list[dict]:
    findings = []
    supported = onnx2tf_operators()
    if supported is None:
        findings.append(finding("error", "model", "onnx2tf is not installed in this environment: "
                                                  "ONNX models cannot be converted"))
        return findings
    unsupported = sorted({node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
                          for node in model.graph.node
                          if node.domain not in ("", "ai.onnx") or node.op_type not in supported})
    for op_type in unsupported:
        findings.append(finding("error", "unsupported_operator",
                                f"onnx2tf {package_version('onnx2tf')} cannot convert operator {op_type}", op_type))
    layout_ops = sorted({node.op_type for node in model.graph.node if node.op_type in CHANNEL_FIRST_OPS})
    inputs = channel_first_inputs(model)
    if layout_ops and inputs:
        def shape(value):
            return "[" + ",".join(str(d.dim_value) if d.HasField("dim_value") else "?"
                                  for d in value.type.tensor_type.shape.dim) + "]"
        names = ", ".join(f"'{v.name}' {shape(v)}" for v in inputs)
        findings.append(finding(
            "warning", "layout_conversion",
            f"channel-first (NCHW) model, LiteRT computes channel-last (NHWC): a Transpose is added at input(s) "
            f"{names}, every inference pays for it; operators concerned: {', '.join(layout_ops)}"))
    return findings


def info(_args) -> dict:
    version = package_version("ai-edge-litert")
    if version is None:
        fail(f"ai-edge-litert is not installed for {sys.executable}", code=1)
    return {"name": "tflite", "version": version, "formats": FORMATS, "targets": TARGETS}


def check(args) -> dict:
    findings = [finding("error", "target", problem) for problem in target_problems(args.target)]
    effective, problems = option_problems(args.options)
    findings += [finding("error", "option", problem) for problem in problems]
    needs_calibration = effective["precision"] == "int8"
    if not os.path.exists(args.model):
        return check_result(findings + [finding("error", "model", f"model '{args.model}' not found")])
    kind = model_format(args.model)
    if kind is None:
        return check_result(findings + [finding(
            "error", "unsupported_format",
            f"'{args.model}' is not a model tflite converts (it takes: ONNX .onnx, a SavedModel folder, "
            f"Keras .keras/.h5)")])
    footprint = None
    if kind == "onnx":
        model, problem = load_onnx(args.model)
        if problem:
            return check_result(findings + [finding("error", "model", problem)])
        findings += onnx_findings(model)
        footprint = onnx_footprint(model)
    if needs_calibration:
        findings.append(finding("info", "calibration",
                                "int8 post-training quantization calibrates on the experiment's inputs"))
    return check_result(findings, needs_calibration_data=needs_calibration, footprint=footprint)


def saved_model_from_onnx(model_path: str, model, folder: str) -> tuple[list[dict], list[str]]:
    """Converts with onnx2tf; returns the input entries and the ONNX output names in order."""
    import onnx2tf

    keep = [value.name for value in channel_first_inputs(model)]
    onnx2tf.convert(input_onnx_file_path=model_path, output_folder_path=folder,
                    keep_ncw_or_nchw_or_ncdhw_input_names=keep or None,
                    not_use_onnxsim=True, non_verbose=True)
    parameters = {init.name for init in model.graph.initializer}
    inputs = [{"name": v.name, "key": v.name} for v in model.graph.input if v.name not in parameters]
    return inputs, [v.name for v in model.graph.output]


def saved_model_from_keras(path: str, folder: str) -> None:
    if path.lower().endswith(".h5"):
        import tensorflow as tf
        import tf_keras

        tf.saved_model.save(tf_keras.models.load_model(path), folder)
    else:
        import keras

        keras.models.load_model(path).export(folder, format="tf_saved_model")


def convert(saved_model: str, precision: str, calibration: dict | None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=[SIGNATURE])
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: calibration_samples(calibration)
        # Every operator in int8, or the conversion fails: no silent float fallback.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def build(args) -> dict:
    effective, problems = option_problems(args.options)
    problems = target_problems(args.target) + problems
    if problems:
        fail("; ".join(problems))
    if not os.path.exists(args.model):
        fail(f"model '{args.model}' not found")
    kind = model_format(args.model)
    if kind is None:
        fail(f"'{args.model}' is not a model tflite converts (it takes: ONNX .onnx, a SavedModel folder, "
             f"Keras .keras/.h5)")
    calibration = args.calibration_inputs
    if effective["precision"] == "int8" and not calibration:
        fail("precision int8 needs calibration data: the experiment's inputs (--calibration-inputs)")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory '{args.output_dir}': {error.strerror}")

    # The SavedModel is an intermediate: only the .tflite and its sidecar are the artifact.
    saved_model = os.path.join(args.output_dir, ".saved_model")
    inputs, output_names = None, None
    try:
        if kind == "onnx":
            model, problem = load_onnx(args.model)
            if problem:
                fail(problem)
            unsupported = [f for f in onnx_findings(model) if f["severity"] == "error"]
            if unsupported:
                fail("; ".join(f["message"] for f in unsupported))
            try:
                inputs, output_names = saved_model_from_onnx(args.model, model, saved_model)
            except SystemExit:
                raise
            except Exception as error:
                fail(f"onnx2tf cannot convert '{args.model}': {type(error).__name__}: {first_line(error)}")
        elif kind == "keras":
            try:
                saved_model_from_keras(args.model, saved_model)
            except Exception as error:
                fail(f"cannot load the Keras model '{args.model}': {type(error).__name__}: {first_line(error)}")
        else:
            saved_model = args.model
        try:
            flatbuffer = convert(saved_model, effective["precision"], calibration)
        except SystemExit:
            raise
        except Exception as error:
            fail(f"TFLiteConverter cannot convert to {effective['precision']}: "
                 f"{type(error).__name__}: {first_line(error)}")
    finally:
        if saved_model != args.model:
            shutil.rmtree(saved_model, ignore_errors=True)

    artifact = os.path.join(args.output_dir, ARTIFACT_NAME)
    with open(artifact, "wb") as file:
        file.write(flatbuffer)
    io = signature_io(artifact, inputs, output_names)
    if "threads" in effective:
        io["threads"] = effective["threads"]
    write_json(artifact + IO_SIDECAR_SUFFIX, io)
    versions = {name: package_version(name) for name in ("tensorflow", "onnx2tf", "ai-edge-litert")}
    sys.stderr.write(f"built {artifact} ({len(flatbuffer)} bytes, {effective['precision']}) with "
                     + ", ".join(f"{k} {v}" for k, v in versions.items() if v) + "\n")
    return {"artifact": artifact, "effective_options": {**effective, "converter": versions}}


def signature_io(artifact: str, inputs: list[dict] | None, output_names: list[str] | None) -> dict:
    """The sidecar: signature keys under the source model's names.

    The converter names a SavedModel's outputs output_0, output_1, ... in the
    order the model returns them, which for onnx2tf is the ONNX output order.
    """
    from ai_edge_litert.interpreter import Interpreter

    signature = Interpreter(model_path=artifact)._get_full_signature_list().get(SIGNATURE)
    if signature is None:
        fail(f"the converted model has no '{SIGNATURE}' signature")
    keys = list(signature["outputs"])
    if output_names is not None:
        ordered = sorted(keys, key=lambda key: int(key.rsplit("_", 1)[-1]) if key.rsplit("_", 1)[-1].isdigit() else key)
        if len(ordered) != len(output_names):
            fail(f"the converted model has {len(ordered)} outputs, the ONNX model {len(output_names)}")
        outputs = [{"name": name, "key": key} for name, key in zip(output_names, ordered)]
    else:
        outputs = [{"name": key, "key": key} for key in keys]
    if inputs is None:
        inputs = [{"name": key, "key": key} for key in signature["inputs"]]
    return {"format": IO_FORMAT, "version": IO_VERSION, "signature": SIGNATURE, "inputs": inputs, "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for TFLite/LiteRT (CPU)",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
