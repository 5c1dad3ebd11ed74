#!/usr/bin/env python3
"""mlbench toolchain script for AMD Vitis AI (DPU on Zynq UltraScale+, Versal, Kria).

    toolchain.py info
    toolchain.py check --model M --target T [--options JSON]
    toolchain.py build --model M --target T [--options JSON] --output-dir D [--calibration-inputs JSON]

Vitis AI is not on PyPI: this script runs with the Python of the Vitis AI docker
image (quantizers and vai_c_xir) and the runner with that of a Vitis AI board
image (VART, xdputil). Where they are absent, every command says so.

Models: ONNX, quantized to int8 with power-of-two scales by vai_q_onnx (or
Quark) over the calibration inputs, then compiled; or an already quantized
XIR model (ModelName_int.xmodel from vai_q_pytorch or vai_q_tensorflow2),
compiled as is. Target: the DPU's arch.json, or DPU/BOARD under the image's
/opt/vitis_ai/compiler/arch (e.g. DPUCZDX8G/ZCU104).
Options: see vitis_tools.option_problems (quantizer, calibrate_method, net_name).

build writes D/NET_NAME.xmodel (with the compiler's meta.json and md5sum.txt)
and, for ONNX models, D/NET_NAME.xmodel.io.json naming the ONNX inputs and
outputs in order, which the DPU knows by its own tensor names.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from mlbench_runner import (IO_SIDECAR_SUFFIX, RequestError, check_result, fail, finding, load_onnx,
                                onnx_footprint, onnx_io_description, read_npy_inputs, run_toolchain,
                                write_json)
    import vitis_tools
    from runner import IO_FORMAT, IO_VERSION
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"toolchain.py: cannot import its modules ({error}); mlbench_runner.py, runner.py and "
                     f"vitis_tools.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

FORMATS = ["onnx", "xmodel"]
COMPILE_TIMEOUT_S = 3600
# Distributions whose versions name this Vitis AI installation.
COMPONENTS = ("vai_q_onnx", "amd-quark", "xir", "vart", "xcompiler")


def image_hint() -> str:
    return (f"Vitis AI is not installed in {sys.executable}: it is not on PyPI, so this toolchain runs in "
            f"the Vitis AI docker image (quantize, compile) or a Vitis AI board image (run); set the "
            f"toolchain's 'python' setting to that image's interpreter")


def components() -> dict:
    """Installed Vitis AI components and their versions."""
    found = {}
    for name in COMPONENTS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def available_quantizers() -> list[str]:
    # find_spec, not import: the quantizers pull in onnxruntime and torch, seconds to load.
    modules = {"vai_q_onnx": "vai_q_onnx", "quark": "quark"}
    return [name for name in vitis_tools.QUANTIZERS if importlib.util.find_spec(modules[name]) is not None]


def model_format(path: str) -> str | None:
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    return extension if extension in FORMATS else None


def info(_args) -> dict:
    found = components()
    compiler = shutil.which("vai_c_xir")
    if not found and compiler is None:
        fail(image_hint())
    version = ", ".join(f"{name} {v}" for name, v in sorted(found.items())) or "unknown"
    if compiler:
        version += f" (vai_c_xir {compiler})"
    return {"name": "vitis-ai", "version": version, "formats": FORMATS,
            "targets": ["DPU arch.json", "DPU/BOARD under " + vitis_tools.ARCH_ROOT]}


def check(args) -> dict:
    quantizers = available_quantizers()
    findings = []
    _, _, problem = vitis_tools.resolve_arch(args.target)
    if problem:
        findings.append(finding("error", "target", problem))
    effective, problems = vitis_tools.option_problems(args.options, quantizers)
    findings += [finding("error", "option", p) for p in problems]
    if shutil.which("vai_c_xir") is None:
        findings.append(finding("error", "target", "vai_c_xir is not on PATH. " + image_hint()))

    kind = model_format(args.model)
    if kind is None:
        findings.append(finding("error", "unsupported_format",
                                f"'{os.path.basename(args.model)}': vitis-ai builds ONNX models (.onnx) and "
                                f"quantized XIR models (.xmodel)"))
        return check_result(findings)
    if kind == "xmodel":
        if not os.path.isfile(args.model):
            findings.append(finding("error", "model", f"model file '{args.model}' not found"))
        findings.append(finding("info", "model", "an xmodel is taken as quantized already (vai_q_pytorch or "
                                                 "vai_q_tensorflow2 output): compiled as is, no calibration"))
        return check_result(findings)

    model, problem = load_onnx(args.model)
    if problem:
        return check_result(findings + [finding("error", "model", problem)])
    if effective["quantizer"] not in quantizers:
        findings.append(finding("error", "option", f"option 'quantizer': {effective['quantizer']} is not "
                                                   f"installed (installed: {', '.join(quantizers) or 'none'})"))
    for op in vitis_tools.classify_ops(node.op_type for node in model.graph.node):
        findings.append(finding("warning", "unsupported_operator",
                                f"{op} is not quantized by vai_q_onnx: it stays float and runs on the CPU, "
                                f"splitting the model into several DPU subgraphs", operator=op))
    parameters = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in parameters and len(dims) == 4:
            findings.append(finding("info", "layout_conversion",
                                    f"input '{value.name}' is 4-D (NCHW in ONNX); the DPU works in NHWC: "
                                    f"the runner transposes inputs and outputs on the CPU"))
    findings.append(finding("warning", "unsupported_format",
                            "vai_c_xir is documented for quantized xmodels (vai_q_pytorch, vai_q_tensorflow2); "
                            "compiling a vai_q_onnx/Quark ONNX model needs a Vitis AI release whose compiler "
                            "reads ONNX, else the build fails with the compiler's message"))
    return check_result(findings, needs_calibration_data=True, footprint=onnx_footprint(model))


# -- build --------------------------------------------------------------------


class NpyDataReader:
    """The calibration samples, one at a time, as the quantizers' data readers give them."""

    def __init__(self, arrays: dict) -> None:
        self.arrays = arrays
        self.samples = next(iter(arrays.values())).shape[0]
        self.next = 0

    def get_next(self):
        if self.next >= self.samples:
            return None
        sample = {name: array[self.next:self.next + 1] for name, array in self.arrays.items()}
        self.next += 1
        return sample

    def rewind(self) -> None:
        self.next = 0


def quantize(model_path: str, output: str, reader: NpyDataReader, effective: dict) -> None:
    method = vitis_tools.CALIBRATE_METHODS[effective["calibrate_method"]]
    if effective["quantizer"] == "vai_q_onnx":
        import vai_q_onnx

        # FixNeuron with power-of-two scales: the DPU's fixed-point format.
        vai_q_onnx.quantize_static(model_path, output, reader,
                                   quant_format=vai_q_onnx.VitisQuantFormat.FixNeuron,
                                   calibrate_method=getattr(vai_q_onnx.PowerOfTwoMethod, method))
    else:
        from quark.onnx import ModelQuantizer, PowerOfTwoMethod
        from quark.onnx.quantization.config import Config, get_default_config

        config = get_default_config("XINT8")  # int8, power-of-two scales
        config.calibrate_method = getattr(PowerOfTwoMethod, method)
        ModelQuantizer(Config(global_quant_config=config)).quantize_model(model_path, output, reader)


def compile_xmodel(model_path: str, arch: str, output_dir: str, net_name: str) -> dict:
    command = vitis_tools.vai_c_xir_command(model_path, arch, output_dir, net_name)
    sys.stderr.write("running " + " ".join(command) + "\n")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except FileNotFoundError:
        fail("vai_c_xir is not on PATH. " + image_hint())
    except subprocess.TimeoutExpired:
        fail(f"vai_c_xir did not finish within {COMPILE_TIMEOUT_S} s")
    log = done.stdout + done.stderr
    sys.stderr.write(log)
    report = vitis_tools.parse_vai_c_xir(log)
    xmodel = report.get("xmodel") or os.path.join(output_dir, f"{net_name}.xmodel")
    if done.returncode != 0 or report["errors"] or not os.path.isfile(xmodel):
        reason = "; ".join(report["errors"][-3:]) or (log.strip().splitlines() or ["no output"])[-1]
        fail(f"vai_c_xir failed (status {done.returncode}): {reason}")
    if report.get("dpu_subgraphs") == 0:
        fail("vai_c_xir mapped no operator to the DPU (DPU subgraph number 0): the model would run on the CPU")
    meta = os.path.join(output_dir, "meta.json")
    if os.path.isfile(meta):
        with open(meta, encoding="utf-8") as file:
            report["kernels"] = vitis_tools.parse_meta_json(file.read())["kernels"]
    report["xmodel"] = xmodel
    return report


def build(args) -> dict:
    quantizers = available_quantizers()
    arch, arch_content, problem = vitis_tools.resolve_arch(args.target)
    effective, problems = vitis_tools.option_problems(args.options, quantizers)
    problems = ([problem] if problem else []) + problems
    kind = model_format(args.model)
    if kind is None:
        problems.append(f"'{os.path.basename(args.model)}' is neither an ONNX model nor an xmodel")
    if problems:
        fail("; ".join(problems))
    if shutil.which("vai_c_xir") is None:
        fail("vai_c_xir is not on PATH. " + image_hint())
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory '{args.output_dir}': {error.strerror}")

    work = {**effective, "arch": arch, "dpu": arch_content.get("target") or arch_content.get("fingerprint"),
            "components": components(), "format": kind}
    model_to_compile, io = args.model, None
    if kind == "onnx":
        model, problem = load_onnx(args.model)
        if problem:
            fail(problem)
        if effective["quantizer"] not in quantizers:
            fail(f"option 'quantizer': {effective['quantizer']} is not installed in {sys.executable} "
                 f"(installed: {', '.join(quantizers) or 'none'}). " + image_hint())
        if not args.calibration_inputs:
            fail("quantizing for the DPU needs calibration data: pass --calibration-inputs "
                 "(the lab does when check says needs_calibration_data)")
        parameters = {init.name for init in model.graph.initializer}
        names = [v.name for v in model.graph.input if v.name not in parameters]
        try:
            arrays, samples = read_npy_inputs(args.calibration_inputs, names)
        except RequestError as error:
            fail(f"calibration inputs: {error}")
        model_to_compile = os.path.join(args.output_dir, "quantized.onnx")
        quantize(os.path.abspath(args.model), model_to_compile, NpyDataReader(arrays), effective)
        work["calibration_samples"] = samples
        io = onnx_io_description(model, IO_FORMAT, IO_VERSION)
    elif not os.path.isfile(args.model):
        fail(f"model file '{args.model}' not found")

    report = compile_xmodel(model_to_compile, arch, args.output_dir, effective["net_name"])
    work["compiler"] = {key: value for key, value in report.items() if key != "errors"}
    if io is not None:
        write_json(report["xmodel"] + IO_SIDECAR_SUFFIX, io)
    sys.stderr.write(f"built {report['xmodel']} for {work['dpu']}: "
                     f"{report.get('dpu_subgraphs', '?')} DPU subgraph(s)\n")
    return {"artifact": report["xmodel"], "effective_options": work}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for AMD Vitis AI (DPU)",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
