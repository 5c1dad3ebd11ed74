"""Vitis AI's command lines and what its tools print, parsed; the DPU targets and options.

Pure: imports none of Vitis AI (xir, vart, vai_q_onnx), so planning and parsing
are tested anywhere. The formats are those the tools print:
- vai_c_xir logs "[UNILOG][INFO] Target architecture: DPUCZDX8G_ISA1_B4096",
  "Graph name: NAME, with op num: N", "Total device subgraph number N, DPU subgraph
  number M", "The compiled xmodel is saved to \"PATH\"" and "... md5sum is HEX";
  newer compilers print the same sentences after a glog prefix
  ("I20231117 11:22:32.471781 105724 compile_pass_manager.cpp:557] ...").
- meta.json beside the xmodel: {"lib": ..., "filename": ..., "kernel": [...], "target": ...}.
- `xdputil benchmark XMODEL [-i SUBGRAPH] THREADS` runs test_dpu_runner_mt for
  SLEEP_MS (default 60000) ms and logs through glog (Vitis AI's
  performance_test.hpp): "thread-0 processes 75300 frames", then
  "FPS= 1254.9 number_of_frames= 75300 time= 60.0042 seconds.", and the tool
  ends with "Test PASS." or "Test FAIL.".
"""

from __future__ import annotations

import json
import os
import re

ARCH_ROOT = "/opt/vitis_ai/compiler/arch"
QUANTIZERS = ("vai_q_onnx", "quark")
CALIBRATE_METHODS = {"min_mse": "MinMSE", "non_overflow": "NonOverflow"}
KNOWN_OPTIONS = ("quantizer", "calibrate_method", "net_name")
DEFAULT_NET_NAME = "model"

# ONNX op types vai_q_onnx quantizes (its "Supported Quantized Ops" table, Vitis AI 3.5);
# the compiler can map only quantized ops to the DPU.
QUANTIZED_OPS = frozenset({"Add", "Conv", "ConvTranspose", "Gemm", "Concat", "Relu", "Reshape", "Transpose",
                           "Resize", "MaxPool", "GlobalAveragePool", "AveragePool", "MatMul", "Mul",
                           "Sigmoid", "Softmax"})
# Folded into a neighbour or shape-only: they need no DPU instruction of their own.
FOLDED_OPS = frozenset({"BatchNormalization", "Identity", "Dropout", "Flatten", "Constant"})


def option_problems(options: dict, available_quantizers: list[str]) -> tuple[dict, list[str]]:
    """The effective options and, for each bad one, a message naming it.

    quantizer: vai_q_onnx or quark (default: the first installed);
    calibrate_method: min_mse (default) or non_overflow, the power-of-two scale
    search the DPU needs; net_name: the compiled model's name (default "model").
    """
    problems = [f"unknown option '{name}' (known: {', '.join(KNOWN_OPTIONS)})"
                for name in options if name not in KNOWN_OPTIONS]
    quantizer = options.get("quantizer", available_quantizers[0] if available_quantizers else QUANTIZERS[0])
    if quantizer not in QUANTIZERS:
        problems.append(f"option 'quantizer' must be one of {', '.join(QUANTIZERS)}, got {json.dumps(quantizer)}")
    method = options.get("calibrate_method", "min_mse")
    if method not in CALIBRATE_METHODS:
        problems.append(f"option 'calibrate_method' must be one of {', '.join(CALIBRATE_METHODS)}, "
                        f"got {json.dumps(method)}")
    name = options.get("net_name", DEFAULT_NET_NAME)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        problems.append(f"option 'net_name' must be an identifier (letters, digits, _), got {json.dumps(name)}")
    return {"quantizer": quantizer, "calibrate_method": method, "net_name": name}, problems


def resolve_arch(target: str, arch_root: str = ARCH_ROOT) -> tuple[str | None, dict | None, str | None]:
    """(arch.json path, its content, None) or (None, None, the problem).

    The target is an arch.json path, or DPU/BOARD under the Vitis AI image's
    arch folder ("DPUCZDX8G/ZCU104" is ARCH_ROOT/DPUCZDX8G/ZCU104/arch.json).
    """
    text = target.strip()
    if not text:
        return None, None, "target is empty; give a DPU arch.json or DPU/BOARD (e.g. DPUCZDX8G/ZCU104)"
    path = text if text.endswith(".json") else os.path.join(arch_root, text, "arch.json")
    if not os.path.isfile(path):
        boards = ""
        if not text.endswith(".json") and os.path.isdir(arch_root):
            found = sorted(f"{dpu}/{board}" for dpu in os.listdir(arch_root)
                           if os.path.isdir(os.path.join(arch_root, dpu))
                           for board in os.listdir(os.path.join(arch_root, dpu)))
            boards = f" (known: {', '.join(found)})" if found else ""
        return None, None, f"target '{target}': DPU architecture file '{path}' not found{boards}"
    try:
        with open(path, encoding="utf-8") as file:
            arch = json.load(file)
    except (OSError, ValueError) as error:
        return None, None, f"target '{target}': '{path}' is not readable JSON: {error}"
    if not isinstance(arch, dict) or not ({"target", "fingerprint"} & arch.keys()):
        return None, None, f"target '{target}': '{path}' names neither a DPU 'target' nor a 'fingerprint'"
    return path, arch, None


def classify_ops(op_types) -> list[str]:
    """Op types (sorted) that vai_q_onnx leaves in float: they run on the CPU, between DPU subgraphs."""
    return sorted({op for op in op_types if op not in QUANTIZED_OPS and op not in FOLDED_OPS})


def vai_c_xir_command(model: str, arch: str, output_dir: str, net_name: str) -> list[str]:
    return ["vai_c_xir", "-x", model, "-a", arch, "-o", output_dir, "-n", net_name]


_PATTERNS = {
    "target_architecture": re.compile(r"Target architecture: (\S+)"),
    "graph_name": re.compile(r"Graph name: ([^,\n]+), with op num: (\d+)"),
    "subgraphs": re.compile(r"Total device subgraph number (\d+), DPU subgraph number (\d+)"),
    "cpu_subgraphs": re.compile(r"Total device subgraph number \d+, CPU subgraph number (\d+)"),
    "xmodel": re.compile(r"The compiled xmodel is saved to \"([^\"]+)\""),
    "md5": re.compile(r"The compiled xmodel's md5sum is ([0-9a-fA-F]{32})"),
    "meta_json": re.compile(r"The meta json is saved to \"([^\"]+)\""),
}
# "[UNILOG][FATAL][XCOM_DATA_OUTRANGE][Data value is out of range!] The dynamic space is too small ..."
_FATAL = re.compile(r"\[UNILOG\]\[(?:FATAL|ERROR)\]\[([^\]]*)\](?:\[([^\]]*)\])?([^\n]*)")


def parse_vai_c_xir(text: str) -> dict:
    """What vai_c_xir reports: architecture, graph, subgraph counts, the xmodel, its md5, errors."""
    result: dict = {"errors": [f"{code}: " + " ".join(part.strip() for part in (title, rest) if part.strip())
                               for code, title, rest in _FATAL.findall(text)]}
    for key, pattern in _PATTERNS.items():
        match = pattern.search(text)
        if not match:
            continue
        if key == "graph_name":
            result["graph_name"], result["op_count"] = match.group(1).strip(), int(match.group(2))
        elif key == "subgraphs":
            result["device_subgraphs"], result["dpu_subgraphs"] = int(match.group(1)), int(match.group(2))
        elif key == "cpu_subgraphs":
            result["cpu_subgraphs"] = int(match.group(1))
        else:
            result[key] = match.group(1)
    return result


def parse_meta_json(text: str) -> dict:
    """The kernels (DPU subgraph names) and target that meta.json lists."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"meta.json is not JSON: {error}") from error
    if not isinstance(meta, dict) or not isinstance(meta.get("kernel", []), list):
        raise ValueError("meta.json has no 'kernel' list")
    return {"kernels": [str(k) for k in meta.get("kernel", [])], "target": meta.get("target"),
            "filename": meta.get("filename")}


def xdputil_benchmark_command(xmodel: str, threads: int, seconds: int,
                              subgraph_index: int | None = None) -> tuple[list[str], dict]:
    """The command and environment of `xdputil benchmark` (SLEEP_MS sets how long it runs)."""
    command = ["xdputil", "benchmark", xmodel]
    if subgraph_index is not None:
        command += ["-i", str(subgraph_index)]
    command.append(str(threads))
    return command, {"SLEEP_MS": str(seconds * 1000)}


_FPS = re.compile(r"FPS=\s*([0-9.eE+-]+)\s+number_of_frames=\s*([0-9.eE+-]+)\s+time=\s*([0-9.eE+-]+)\s+seconds")
_THREAD = re.compile(r"thread-(\d+) processes (\d+) frames")


def parse_xdputil_benchmark(text: str) -> dict:
    """DPU-only throughput from `xdputil benchmark`: fps, frames, seconds, frames per thread, pass/fail."""
    match = _FPS.search(text)
    if not match:
        raise ValueError("xdputil benchmark printed no 'FPS= ... number_of_frames= ... time= ...' line")
    threads = {int(index): int(frames) for index, frames in _THREAD.findall(text)}
    passed = True if "Test PASS" in text else False if "Test FAIL" in text else None
    return {"fps": float(match.group(1)), "frames": int(float(match.group(2))),
            "seconds": float(match.group(3)), "frames_per_thread": [threads[i] for i in sorted(threads)],
            "passed": passed}
