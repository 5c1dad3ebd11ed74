#!/usr/bin/env python3
"""mlbench toolchain script for NVIDIA TensorRT (a Jetson or a GPU host).

    toolchain.py info
    toolchain.py check --model M --target T [--options JSON]
    toolchain.py build --model M --target T [--options JSON] --output-dir D [--calibration-inputs JSON]

Target: "cuda" (the GPU of the machine that builds: a TensorRT engine is tied to
its GPU and TensorRT version, so build on the board or an identical one).
Options: see trtexec.option_problems (precision fp32/fp16/int8, workspace_mib,
builder_optimization_level, calibration_cache).

The build uses the TensorRT Python API when `import tensorrt` works, else
trtexec when it is on PATH. int8 on a model without Q/DQ nodes calibrates with
IInt8EntropyCalibrator2 over the calibration inputs (Python API only: trtexec
reads a calibration cache but cannot make one). The version and the settings in
effect are recorded in effective_options and in D/model.engine.build.json,
because TensorRT's defaults change between versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from mlbench_runner import (RequestError, check_result, fail, finding, first_line, load_onnx,
                                onnx_footprint, read_npy_inputs, run_toolchain, write_json)
    import trtexec
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"toolchain.py: cannot import mlbench_runner or trtexec ({error}); "
                     f"both must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

TARGETS = ["cuda"]
ARTIFACT_NAME = "model.engine"
BUILD_RECORD_SUFFIX = ".build.json"
TRTEXEC_TIMEOUT_S = 3600


def tensorrt_module():
    """The tensorrt module, or None when it is not installed in this interpreter."""
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt


def trtexec_path() -> str | None:
    return shutil.which("trtexec")


def not_installed() -> str:
    return (f"TensorRT is not installed in {sys.executable}: `import tensorrt` fails and trtexec is "
            f"not on PATH (install the tensorrt wheel for this CUDA in the toolchain's environment, "
            f"or JetPack's TensorRT on a Jetson)")


def run_trtexec(command: list[str]) -> tuple[int, str]:
    """(status, stdout and stderr) of trtexec; it logs to stdout, errors included."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TRTEXEC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        fail(f"trtexec did not finish within {TRTEXEC_TIMEOUT_S} s: {' '.join(command)}")
    return done.returncode, done.stdout + done.stderr


def trtexec_version_and_help(path: str) -> tuple[str | None, str]:
    _, text = run_trtexec([path, "--help"])
    return trtexec.parse_version(text), text


def target_problems(target: str) -> list[str]:
    if target.strip() not in TARGETS:
        return [f"target '{target}' is not supported; tensorrt builds for: {', '.join(TARGETS)} "
                f"(the GPU of the machine that builds)"]
    return []


def has_qdq(model) -> bool:
    """Whether the model is explicitly quantized (Q/DQ nodes): TensorRT then needs no calibration."""
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def precision_problems(trt, help_text: str | None, precision: str, version: str) -> list[str]:
    """Precisions this TensorRT cannot build: recent releases drop weakly-typed precision flags."""
    if precision == "fp32":
        return []
    if trt is not None:
        flag = precision.upper()
        if not hasattr(trt.BuilderFlag, flag):
            return [f"option 'precision' {precision}: TensorRT {version} has no BuilderFlag.{flag} "
                    f"(weakly-typed precision was removed); give a strongly-typed or Q/DQ model at fp32"]
        return []
    if help_text is not None and not trtexec.supports_flag(help_text, f"--{precision}"):
        return [f"option 'precision' {precision}: trtexec of TensorRT {version} has no --{precision} flag"]
    return []


def unsupported_ops(trt, model) -> list[str]:
    """Op types TensorRT's ONNX parser reports it cannot import."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    types = sorted({node.op_type for node in model.graph.node if node.domain in ("", "ai.onnx")})
    return [op for op in types if not parser.supports_operator(op)]


def network_flags(trt) -> int:
    # TensorRT 10 networks are always explicit-batch and the flag is deprecated; 8.x needs it.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    major = int(trt.__version__.split(".")[0])
    return 1 << int(flag) if flag is not None and major < 10 else 0


def info(_args) -> dict:
    trt = tensorrt_module()
    if trt is not None:
        version = trt.__version__
    else:
        path = trtexec_path()
        if path is None:
            fail(not_installed())
        version, _ = trtexec_version_and_help(path)
        if version is None:
            fail(f"{path} printed no TensorRT version")
    return {"name": "tensorrt", "version": version, "formats": ["onnx"], "targets": TARGETS}


def check(args) -> dict:
    findings = [finding("error", "target", problem) for problem in target_problems(args.target)]
    effective, problems = trtexec.option_problems(args.options)
    findings += [finding("error", "option", problem) for problem in problems]
    if not args.model.lower().endswith(".onnx"):
        findings.append(finding("error", "unsupported_format",
                                f"'{os.path.basename(args.model)}' is not an ONNX model; tensorrt builds ONNX models"))
        return check_result(findings)
    model, problem = load_onnx(args.model)
    if problem:
        return check_result(findings + [finding("error", "model", problem)])

    trt, path = tensorrt_module(), trtexec_path()
    quantized = has_qdq(model)
    needs_calibration = (effective["precision"] == "int8" and not quantized
                         and "calibration_cache" not in effective)
    if trt is None and path is None:
        findings.append(finding("error", "target", not_installed()))
    else:
        version, help_text = (trt.__version__, None) if trt is not None else trtexec_version_and_help(path)
        findings += [finding("error", "option", p)
                     for p in precision_problems(trt, help_text, effective["precision"], version or "?")]
        if trt is not None:
            try:
                unsupported = unsupported_ops(trt, model)
            except Exception as error:  # TensorRT raises its own types when no GPU is usable
                findings.append(finding("error", "target", f"TensorRT {version} cannot create a builder here "
                                                           f"(no usable CUDA device?): {first_line(error)}"))
                unsupported = []
            findings += [finding("error", "unsupported_operator",
                                 f"TensorRT {version}'s ONNX parser does not support op type {op}", operator=op)
                         for op in unsupported]
        else:
            findings.append(finding("info", "unsupported_operator",
                                    f"operators not checked: only trtexec is installed (TensorRT {version}); "
                                    f"the build reports any the ONNX parser rejects"))
            if needs_calibration:
                findings.append(finding("error", "option",
                                        "option 'precision' int8: calibrating needs the TensorRT Python API "
                                        "(trtexec only reads a cache); give 'calibration_cache' or a Q/DQ model"))
    if effective["precision"] == "int8" and quantized:
        findings.append(finding("info", "option", "the model has Q/DQ nodes: int8 uses their scales, "
                                                  "no calibration"))
    return check_result(findings, needs_calibration_data=needs_calibration, footprint=onnx_footprint(model))


# -- build --------------------------------------------------------------------


def calibration_arrays(calibration_inputs: dict | None, model) -> tuple[dict, int]:
    """The calibration samples by input name, checked against the model's inputs."""
    if not calibration_inputs:
        fail("option 'precision' int8 on a model without Q/DQ nodes needs calibration data: "
             "pass --calibration-inputs (the lab does when check says needs_calibration_data)")
    parameters = {init.name for init in model.graph.initializer}
    names = [value.name for value in model.graph.input if value.name not in parameters]
    try:
        return read_npy_inputs(calibration_inputs, names)
    except RequestError as error:
        fail(f"calibration inputs: {error}")


def check_calibration_input(name: str, array, shape: list[int], dtype) -> None:
    """Calibration samples are copied to the GPU as raw bytes: their dtype and shape must be the model's."""
    if array.dtype != dtype:
        fail(f"calibration input '{name}' holds {array.dtype}, the model expects {dtype}")
    sample = [1, *array.shape[1:]]
    if len(sample) != len(shape) or any(d >= 0 and d != s for d, s in zip(shape, sample)):
        fail(f"calibration input '{name}': samples of shape {sample[1:]} (stacked on axis 0) do not fit "
             f"the model's input {shape}")


def build_with_api(trt, args, model, effective: dict, engine_path: str, work: dict) -> dict:
    import numpy as np

    import cuda_memory

    class Logger(trt.ILogger):
        """Keeps TensorRT's errors for the failure message; everything goes to stderr."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, message) -> None:
            # Severities count down from INTERNAL_ERROR (0) to VERBOSE (4).
            if int(severity) <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(str(message))
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                sys.stderr.write(f"[TensorRT] {message}\n")

    logger = Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(args.model)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        fail("TensorRT's ONNX parser rejects the model: " + "; ".join(errors or logger.errors))

    config = builder.create_builder_config()
    if effective["workspace_mib"] is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, effective["workspace_mib"] << 20)
    if hasattr(config, "builder_optimization_level"):
        config.builder_optimization_level = effective["builder_optimization_level"]
    else:  # before TensorRT 8.6: no levels; record that none applied
        work["builder_optimization_level"] = None
    timing_cache = config.create_timing_cache(b"")
    config.set_timing_cache(timing_cache, ignore_mismatch=False)

    # A dynamic batch dimension is fixed at 1, the batch the runner feeds.
    profile = None
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if any(d < 0 for d in shape[1:]):
            fail(f"input '{tensor.name}' has dynamic dimensions {shape} beyond the batch: "
                 f"export the model with fixed shapes")
        if shape and shape[0] < 0:
            profile = profile or builder.create_optimization_profile()
            fixed = (1, *shape[1:])
            profile.set_shape(tensor.name, fixed, fixed, fixed)
    if profile is not None:
        config.add_optimization_profile(profile)

    calibrator = None
    if effective["precision"] == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif effective["precision"] == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not has_qdq(model):
            cache = effective.get("calibration_cache") or os.path.join(args.output_dir, "calibration.cache")
            arrays = {} if effective.get("calibration_cache") else calibration_arrays(args.calibration_inputs, model)[0]
            inputs = [network.get_input(i) for i in range(network.num_inputs)]
            for tensor in inputs:
                if tensor.name in arrays:
                    check_calibration_input(tensor.name, arrays[tensor.name], list(tensor.shape),
                                            np.dtype(trt.nptype(tensor.dtype)))
            calibrator = cuda_memory.entropy_calibrator(trt, arrays, [t.name for t in inputs], cache)
            config.int8_calibrator = calibrator
            if profile is not None:
                config.set_calibration_profile(profile)
            work["calibration"] = {"method": "IInt8EntropyCalibrator2", "cache": cache,
                                   "samples": calibrator.samples}
        else:
            work["calibration"] = {"method": "explicit (Q/DQ nodes)"}

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        fail("TensorRT could not build an engine: " + ("; ".join(logger.errors) or "no error logged"))
    with open(engine_path, "wb") as file:
        file.write(serialized)
    with open(os.path.join(args.output_dir, "timing.cache"), "wb") as file:
        file.write(timing_cache.serialize())
    work["builder"] = "python-api"
    work["tensorrt_version"] = trt.__version__
    return work


def build_with_trtexec(path: str, args, model, effective: dict, engine_path: str, work: dict) -> dict:
    version, help_text = trtexec_version_and_help(path)
    problems = precision_problems(None, help_text, effective["precision"], version or "?")
    if problems:
        fail("; ".join(problems))
    if effective["precision"] == "int8" and not has_qdq(model) and "calibration_cache" not in effective:
        fail("option 'precision' int8: TensorRT's Python API is not installed and trtexec cannot calibrate "
             "(it only reads a cache): give 'calibration_cache', a Q/DQ model, or install tensorrt")
    if not trtexec.supports_flag(help_text, "--builderOptimizationLevel"):
        # Before TensorRT 8.6: no levels; record that none applied.
        effective = {**effective, "builder_optimization_level": None}
        work["builder_optimization_level"] = None
    command = trtexec.build_command(path, os.path.abspath(args.model), engine_path, effective,
                                    calibration_cache=effective.get("calibration_cache"),
                                    timing_cache=os.path.join(args.output_dir, "timing.cache"),
                                    build_only_flag=("--skipInference" if trtexec.supports_flag(help_text, "--skipInference")
                                                     else "--buildOnly"))
    sys.stderr.write("running " + " ".join(command) + "\n")
    status, log = run_trtexec(command)
    sys.stderr.write(log)
    if status != 0 or not os.path.isfile(engine_path):
        reasons = trtexec.error_lines(log)
        fail(f"trtexec failed (status {status}): " + ("; ".join(reasons[-3:]) or "no [E] line in its log"))
    work["builder"] = "trtexec"
    work["tensorrt_version"] = trtexec.parse_version(log) or version
    # What TensorRT says it used: the defaults of this version made explicit.
    work["trtexec_build_options"] = trtexec.parse_build_options(log)
    if effective["precision"] == "int8":
        work["calibration"] = ({"method": "cache", "cache": effective["calibration_cache"]}
                               if "calibration_cache" in effective else {"method": "explicit (Q/DQ nodes)"})
    return work


def build(args) -> dict:
    problems = target_problems(args.target)
    effective, option_errors = trtexec.option_problems(args.options)
    problems += option_errors
    if problems:
        fail("; ".join(problems))
    model, problem = load_onnx(args.model)
    if problem:
        fail(problem)
    cache = effective.get("calibration_cache")
    if cache is not None and not os.path.isfile(cache):
        fail(f"option 'calibration_cache': file '{cache}' not found")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory '{args.output_dir}': {error.strerror}")

    engine_path = os.path.join(args.output_dir, ARTIFACT_NAME)
    trt, path = tensorrt_module(), trtexec_path()
    work = dict(effective)
    if trt is not None:
        problems = precision_problems(trt, None, effective["precision"], trt.__version__)
        if problems:
            fail("; ".join(problems))
        work = build_with_api(trt, args, model, effective, engine_path, work)
    elif path is not None:
        work = build_with_trtexec(path, args, model, effective, engine_path, work)
    else:
        fail(not_installed())
    write_json(engine_path + BUILD_RECORD_SUFFIX, work)
    sys.stderr.write(f"built {engine_path} with TensorRT {work['tensorrt_version']} ({work['builder']}), "
                     f"precision {effective['precision']}\n")
    return {"artifact": engine_path, "effective_options": work}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for NVIDIA TensorRT",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
