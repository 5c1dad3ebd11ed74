"""The runner wire protocol, shared by every Python runner of mlbench.

A runner is a process on the board that loads an artifact and answers requests,
one JSON object per line (see Sources/MLBenchCore/RunnerProtocol.swift):

    greeting  {"protocol_version":1,"runtime":NAME,"runtime_version":VER}
    load      {"op":"load","artifact":FILE,"inputs":{NAME:FILE.npy}}
              -> {"ok":true,"samples":N,"load_ns":NS}
    server    {"op":"server","arrivals_ns":[...],"sample":K,"placement":P}
              -> {"ok":true,"latencies_ns":[...],"durations_ns":[...],"waits_ns":[...],
                  "peak_memory_bytes":B,"input_placement":P,...}
                  (the server scenario: queries at arrival times)
    offline   {"op":"offline","queries":N}
              -> {"ok":true,"total_ns":NS,"durations_ns":[...],"peak_memory_bytes":B}
    run       {"op":"run","iterations":N,"sample":K,"canary":BOOL,"placement":"device"|"host"}
              -> {"ok":true,"starts_ns":[...],"durations_ns":[...],"peak_memory_bytes":B,
                  "input_placement":"device"|"host","input_placement_detail":TEXT,
                  "canary_ns":[...],    (canary_ns only when asked for)
                  "phases_ns":{PHASE:[...]}}   (phases_ns only from backends that split)
    native_benchmark {"op":"native_benchmark","seconds":S,"threads":T}
              -> {"ok":true,"tool":..., ...the tool's own figures}   (backends that have one)
    outputs   {"op":"outputs","directory":DIR}
              -> {"ok":true,"outputs":{NAME:FILE.npy},"order":[NAME,...]}
    clock     {"op":"clock"} -> {"ok":true,"now_ns":NS}   (CLOCK_MONOTONIC, the clock of starts_ns)
    quit      {"op":"quit"} -> {"ok":true}, then exit 0

Any failure answers {"ok":false,"error":"..."} and the runner keeps serving.

A runtime plugs in a backend object:

    name, version                       runtime name and version for the greeting
    load(artifact_path) -> None         load (or replace) the artifact
    input_names() -> list[str]          in the model's order
    output_names() -> list[str]         in the model's order
    infer(feeds) -> list[np.ndarray]    one inference; results in output order

and optionally

    input_specs() -> {name: (shape, dtype)}
        shape is a list whose dynamic dimensions are None, dtype a numpy dtype
        name or None; lets load reject mismatched input files with a clear
        message instead of a runtime-specific one at the first run.
    place_inputs(feeds) -> callable()
        device placement: puts the feeds once in the memory the runtime
        computes from (its own tensors, GPU buffers) and returns a call that
        runs one inference on them, moving no input or output data; with
        `device_memory`, a short text naming that memory. `run` and `server`
        time that call when asked for "device" (the default). A backend
        without it, or whose place_inputs returns None, answers "device"
        requests with host placement, and says so.
    prepare(feeds) -> callable()
        host placement with the conversions done once: the returned call still
        moves the inputs from host memory to the runtime and the outputs back
        on every call (TensorRT's copies). Without it, host placement times
        infer(feeds), numpy in and numpy out.
    last_phases_ns() -> {phase: ns}
        the runtime's own split of the inference just run (host-to-device copy,
        device compute, device-to-host copy, ...); `run` then reports each phase
        per iteration as phases_ns, beside the wall-clock durations.
    native_benchmark(artifact_path, seconds, threads) -> dict
        runs the vendor's own benchmark tool on the loaded artifact (trtexec,
        xdputil benchmark) and returns its figures, parsed.

The toolchain scripts share their command line from here too (run_toolchain,
emit_json_result, fail), so the rules for stdout (protocol or result lines
only) and exit codes live in one place.

Only the standard library and numpy are used: this file is copied beside each
runner, on boards that have nothing but the runtime installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import time
import traceback
from typing import Any, Callable, NoReturn, TextIO

import numpy as np

PROTOCOL_VERSION = 1

__all__ = [
    "PROTOCOL_VERSION",
    "RequestError",
    "emit_json_result",
    "fail",
    "reserve_stdout",
    "run_backend",
    "run_toolchain",
    "safe_file_name",
    "serve",
    "first_line",
    "load_onnx",
    "onnx_io_description",
    "read_io_sidecar",
    "read_npy_inputs",
    "write_json",
    "threads_from_env",
]

_reserved_stdout: TextIO | None = None


def reserve_stdout() -> TextIO:
    """Keep the process's stdout for protocol lines; send everything else to stderr.

    Runtimes print banners and warnings, some from C++ straight to file
    descriptor 1, and one stray line would corrupt the protocol. So descriptor 1
    is duplicated into a private stream and then pointed at stderr, and
    sys.stdout follows. Idempotent; call it before importing the runtime.
    """
    global _reserved_stdout
    if _reserved_stdout is None:
        sys.stdout.flush()
        private_fd = os.dup(1)
        os.dup2(2, 1)
        _reserved_stdout = os.fdopen(private_fd, "w", encoding="utf-8", newline="\n")
        sys.stdout = sys.stderr
    return _reserved_stdout


def _write_line(stream: TextIO, obj: Any) -> None:
    # Compact and ASCII-only: one object per line, whatever the names contain.
    stream.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    stream.flush()


def emit_json_result(obj: Any) -> None:
    """Print obj as one JSON line on the real stdout (the result of a toolchain command)."""
    _write_line(reserve_stdout(), obj)


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def fail(message: str, code: int = 2) -> NoReturn:
    """Write message to stderr as one line and exit with code (2: rejected model or bad input)."""
    sys.stderr.write(_one_line(message) + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


class _ToolchainArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, exit 2: the caller reports the last stderr line as the reason.
        fail(f"{self.prog}: {message}")


def _options_object(text: str) -> dict:
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--options is not valid JSON: {error}")
    if not isinstance(options, dict):
        fail(f"--options must be a JSON object, got {text}")
    return options


def _calibration_inputs(text: str) -> dict:
    try:
        inputs = json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--calibration-inputs is not valid JSON: {error}")
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        fail(f"--calibration-inputs must be a JSON object of input name to .npy file, got {text}")
    return inputs


def finding(severity: str, code: str, message: str, operator: str | None = None) -> dict:
    """One compatibility finding as `check` reports it (severity: error, warning or info)."""
    found = {"severity": severity, "code": code, "message": message}
    if operator is not None:
        found["operator"] = operator
    return found


def check_result(findings: list, needs_calibration_data: bool = False, footprint: dict | None = None) -> dict:
    """The reply of `check`: compatible unless a finding is an error (plain strings are errors)."""
    compatible = not any(isinstance(f, str) or f.get("severity") == "error" for f in findings)
    result = {"compatible": compatible, "issues": findings, "needs_calibration_data": needs_calibration_data}
    if footprint is not None:
        result["footprint"] = footprint
    return result


def onnx_footprint(model) -> dict:
    """Weights and peak live activations of an ONNX ModelProto, in bytes.

    Weights are the initializers (and Constant nodes). Activations follow the
    graph's node order (ONNX requires it topological): a tensor lives from the
    node that makes it to the last node that reads it, and the peak of the live
    bytes is reported. Tensors of unknown shape count as zero, so this is a lower
    bound when shape inference cannot resolve every shape.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    def tensor_bytes(tensor) -> int:
        if tensor.HasField("raw_data") or tensor.data_location == onnx.TensorProto.EXTERNAL:
            count = int(np.prod(tensor.dims)) if tensor.dims else 1
            return count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        return numpy_helper.to_array(tensor).nbytes

    weights = sum(tensor_bytes(t) for t in model.graph.initializer)
    weights += sum(tensor_bytes(a.t) for n in model.graph.node if n.op_type == "Constant"
                   for a in n.attribute if a.name == "value")
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # a model shape inference cannot follow still has weights
        inferred = model.graph

    sizes: dict[str, int] = {}
    for value in list(inferred.value_info) + list(inferred.output) + list(inferred.input):
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim]
        try:
            itemsize = helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
        except (KeyError, ValueError, TypeError):
            itemsize = 0
        sizes[value.name] = int(np.prod(dims)) * itemsize if dims else itemsize

    parameters = {t.name for t in model.graph.initializer}
    last_use: dict[str, int] = {}
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            last_use[name] = index
    for value in model.graph.output:
        last_use[value.name] = len(model.graph.node)
    live = {v.name for v in model.graph.input if v.name not in parameters}
    peak = current = sum(sizes.get(name, 0) for name in live)
    for index, node in enumerate(model.graph.node):
        for name in node.output:
            if name and name not in live:
                live.add(name)
                current += sizes.get(name, 0)
        peak = max(peak, current)
        for name in [n for n in live if last_use.get(n, -1) <= index]:
            live.discard(name)
            current -= sizes.get(name, 0)
    return {"weights_bytes": int(weights), "activations_bytes": int(peak)}


def first_line(error: Exception) -> str:
    """The first line of an error's message (tools raise multi-line errors), or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_onnx(path: str):
    """(ModelProto, None) or (None, the problem) for an ONNX file, checked by onnx.checker."""
    import onnx

    if not os.path.isfile(path):
        return None, f"model file '{path}' not found"
    try:
        model = onnx.load(path)
        # The path, not the proto: the checker refuses protos over 2 GiB.
        onnx.checker.check_model(path)
    except Exception as error:  # protobuf and checker raise several types
        return None, f"not a valid ONNX model: {first_line(error)}"
    return model, None


IO_SIDECAR_SUFFIX = ".io.json"


def write_json(path: str, obj: Any) -> None:
    """obj as a JSON file ending with a newline: the sidecars and records build writes."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(obj, file, indent=1)
        file.write("\n")


def onnx_io_description(model, format_name: str, version: int) -> dict:
    """Inputs (without initializers) and outputs of an ONNX model in model order.

    Written beside artifacts whose runtime knows the model's tensors only by
    position or by its own names (a TVM VM, a DPU xmodel), so that the runner
    can speak the ONNX names the experiment uses.
    """
    from onnx import helper

    def describe(value) -> dict:
        tensor = value.type.tensor_type
        dtype = None
        if tensor.elem_type:
            try:
                dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
            except (KeyError, ValueError, TypeError):
                dtype = None
        shape = None
        if tensor.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        return {"name": value.name, "shape": shape, "dtype": dtype}

    parameters = {init.name for init in model.graph.initializer}
    return {
        "format": format_name,
        "version": version,
        "inputs": [describe(v) for v in model.graph.input if v.name not in parameters],
        "outputs": [describe(v) for v in model.graph.output],
    }


def read_io_sidecar(artifact_path: str, format_name: str, version: int,
                    entry_fields: tuple[str, ...] = ("name",)) -> dict:
    """The sidecar ARTIFACT.io.json, checked: {"inputs":[{name,...}],"outputs":[{name,...}],"threads"?}.

    Each input and output entry must hold the string fields entry_fields; a
    thread pool size chosen at build ("threads") must be a positive integer.
    """
    path = artifact_path + IO_SIDECAR_SUFFIX
    if not os.path.isfile(path):
        raise RequestError(f"'{path}' not found: deploy the sidecar that build writes "
                           f"beside the artifact (it names the model's inputs and outputs)")
    try:
        with open(path, encoding="utf-8") as file:
            io = json.load(file)
    except (OSError, ValueError) as error:
        raise RequestError(f"cannot read '{path}': {error}") from error
    if not isinstance(io, dict) or io.get("format") != format_name or io.get("version") != version:
        raise RequestError(f"'{path}' is not an {format_name} version {version} file")
    for key in ("inputs", "outputs"):
        entries = io.get(key)
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and all(isinstance(e.get(f), str) for f in entry_fields) for e in entries):
            fields = " and ".join(f"'{f}'" for f in entry_fields)
            raise RequestError(f"'{path}': '{key}' must be a list of objects with {fields}")
    threads = io.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise RequestError(f"'{path}': threads must be a positive integer, got {json.dumps(threads)}")
    return io


def calibration_samples(inputs: dict[str, str]):
    """The samples of calibration input files, one {name: array[k:k+1]} at a time.

    The files are the experiment's inputs: samples stacked on a leading axis, fed
    one at a time as a batch of one, exactly as the runner feeds them. Fails with
    the file named when one is unreadable or the counts differ.
    """
    try:
        arrays, samples = read_npy_inputs(inputs, list(inputs))
    except RequestError as error:
        fail(f"calibration inputs: {error}")
    for k in range(samples):
        yield {name: np.ascontiguousarray(array[k:k + 1]) for name, array in arrays.items()}


def run_toolchain(description: str, handlers: dict[str, Callable[[argparse.Namespace], Any]],
                  argv: list[str] | None = None) -> int:
    """The command line shared by toolchain scripts; returns the exit status.

        info
        check --model M --target T [--options JSON]
        build --model M --target T [--options JSON] --output-dir D [--calibration-inputs JSON]

    handlers maps each command to a function of the parsed arguments (options
    already decoded to a dict) returning the result object, printed as the one
    JSON line on stdout. A handler rejects a model or input with fail() (exit
    2, reason on stderr); any other exception is an internal error (exit 1).
    """
    reserve_stdout()
    parser = _ToolchainArgumentParser(description=description)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("info", help="name, version, formats and targets as JSON")
    for command, help_text in (("check", "whether the model can be built for the target"),
                               ("build", "build the model into an artifact")):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--model", required=True, help="model file")
        sub.add_argument("--target", required=True, help="target to build for")
        sub.add_argument("--options", default="{}", type=_options_object,
                         help="toolchain options as a JSON object (default {})")
        if command == "build":
            sub.add_argument("--output-dir", required=True, help="directory for the artifact")
            sub.add_argument("--calibration-inputs", default=None, type=_calibration_inputs,
                             help="sample inputs for calibration, as a JSON object of input name to .npy "
                                  "file (given when check said needs_calibration_data)")
    args = parser.parse_args(argv)
    try:
        result = handlers[args.command](args)
    except Exception as error:  # fail() raises SystemExit, which passes
        traceback.print_exc(file=sys.stderr)
        fail(f"internal error in {args.command}: {type(error).__name__}: {error}", code=1)
    emit_json_result(result)
    return 0


class RequestError(Exception):
    """A request that cannot be served; its message goes back to the client as is."""


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str, taken: set[str]) -> str:
    """A file name for a tensor name: portable characters only, unique within taken.

    Tensor names may contain '/', ':' or start with '.', so they cannot be used
    as file names directly. Uniqueness is checked case-insensitively, since the
    directory may live on a case-insensitive file system. Adds the result to taken.
    """
    stem = _UNSAFE_CHARS.sub("_", name).lstrip(".") or "output"
    candidate, suffix = stem, 2
    while f"{candidate}.npy".lower() in taken:
        candidate = f"{stem}_{suffix}"
        suffix += 1
    file_name = f"{candidate}.npy"
    taken.add(file_name.lower())
    return file_name


def threads_from_env() -> int | None:
    """MLBENCH_THREADS as a positive int, None when unset."""
    value = os.environ.get("MLBENCH_THREADS", "").strip()
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise RequestError(f"MLBENCH_THREADS must be a positive integer, got '{value}'")
    return threads


def canary_workload() -> int:
    """The reference workload interleaved with the model's iterations: a fixed amount
    of interpreter and integer work (tens of microseconds) that touches no model data,
    so its duration moves only when the machine does (clock changes, a competing
    process, an interrupt storm)."""
    total = 0
    for i in range(600):
        total = (total + i * i) & 0xFFFF
    return total


def _peak_memory_bytes() -> int:
    # On Linux, ru_maxrss survives exec: a runner started by a large parent
    # reports at least the parent's size. VmHWM is the peak of this process's
    # own address space only.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux but in bytes on macOS.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


_JSON_KINDS = {int: "an integer", str: "a string", dict: "an object"}


def _field(request: dict, key: str, kind: type, *, default: Any = None, required: bool = True) -> Any:
    """The value of request[key], checked to be of kind (bool is not accepted as an int)."""
    if key not in request or request[key] is None:
        if required:
            raise RequestError(f"missing field '{key}'")
        return default
    value = request[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RequestError(f"field '{key}' must be {_JSON_KINDS.get(kind, kind.__name__)}, "
                           f"got {json.dumps(value)}")
    return value


def _format_shape(shape: Any) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def read_npy_inputs(files: dict, expected: list) -> tuple[dict, int]:
    """The arrays of the input files by name, and how many samples each holds.

    files maps input names to .npy files (samples stacked on axis 0); expected
    lists the model's input names. Missing or unknown names, unreadable files
    and disagreeing sample counts raise RequestError naming the input and file.
    Shared by the runner's load and by toolchains that calibrate on these inputs.
    """
    missing = [name for name in expected if name not in files]
    unknown = sorted(name for name in files if name not in expected)
    if missing or unknown:
        problems = []
        if missing:
            problems.append("missing input(s) " + ", ".join(f"'{n}'" for n in missing))
        if unknown:
            problems.append("unknown input(s) " + ", ".join(f"'{n}'" for n in unknown))
        wanted = ", ".join(f"'{n}'" for n in expected) or "no inputs"
        raise RequestError("; ".join(problems) + f" (the model expects {wanted})")
    arrays = {name: _read_npy_input(name, files[name]) for name in expected}
    counts = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(counts.values())) > 1:
        raise RequestError("input files hold different numbers of samples: "
                           + ", ".join(f"'{n}' ({files[n]}) {c}" for n, c in counts.items()))
    samples = next(iter(counts.values()), 0)
    if samples == 0 and expected:
        raise RequestError("input files hold no samples (leading axis has length 0)")
    return arrays, samples


def _read_npy_input(name: str, file_name: str) -> np.ndarray:
    if not os.path.isfile(file_name):
        raise RequestError(f"input '{name}': file '{file_name}' not found "
                           f"(relative to {os.getcwd()})")
    try:
        array = np.load(file_name, allow_pickle=False)
    except Exception as error:  # numpy raises several types for a bad file
        raise RequestError(f"input '{name}': '{file_name}' is not a readable .npy "
                           f"file: {error}") from error
    if not isinstance(array, np.ndarray):
        raise RequestError(f"input '{name}': '{file_name}' holds an archive, not one array")
    if array.ndim == 0:
        raise RequestError(f"input '{name}': '{file_name}' holds a scalar; samples must be "
                           f"stacked on a leading axis")
    return array


class _Session:
    """What the runner holds between requests: the backend and the loaded inputs."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.inputs: dict[str, np.ndarray] | None = None
        self.samples = 0
        self.artifact: str | None = None

    # -- requests ---------------------------------------------------------

    def load(self, request: dict) -> dict:
        artifact = _field(request, "artifact", str)
        inputs = _field(request, "inputs", dict)
        if not artifact:
            raise RequestError("field 'artifact' is empty")
        for name, file_name in inputs.items():
            if not isinstance(file_name, str) or not file_name:
                raise RequestError(f"input '{name}': file name must be a non-empty string")
        if not os.path.exists(artifact):
            raise RequestError(f"artifact '{artifact}' not found (relative to {os.getcwd()})")

        # A failed load must not leave a previous model's inputs usable.
        self.inputs, self.samples, self.artifact = None, 0, None
        start = time.perf_counter_ns()
        self.backend.load(artifact)
        load_ns = time.perf_counter_ns() - start

        arrays, samples = read_npy_inputs(inputs, list(self.backend.input_names()))
        self._check_specs(arrays, inputs)

        self.inputs, self.samples, self.artifact = arrays, samples, artifact
        return {"ok": True, "samples": samples, "load_ns": load_ns}

    def run(self, request: dict) -> dict:
        iterations = _field(request, "iterations", int)
        if iterations < 1:
            raise RequestError(f"field 'iterations' must be at least 1, got {iterations}")
        call, placed = self._prepared_call(request)

        canary = _field(request, "canary", bool, default=False, required=False)
        last_phases = getattr(self.backend, "last_phases_ns", None)
        starts, durations, canaries = [], [], []
        phases: dict[str, list[int]] = {}
        for _ in range(iterations):
            # monotonic_ns is CLOCK_MONOTONIC, the clock probes stamp samples with;
            # perf_counter_ns is the finest clock for the duration itself.
            starts.append(time.monotonic_ns())
            begin = time.perf_counter_ns()
            call()
            durations.append(time.perf_counter_ns() - begin)
            if last_phases is not None:
                # Read after the timed call: the runtime's split costs no measured time.
                for phase, ns in last_phases().items():
                    phases.setdefault(phase, []).append(int(ns))
            if canary:
                begin = time.perf_counter_ns()
                canary_workload()
                canaries.append(time.perf_counter_ns() - begin)
        reply = {"ok": True, "starts_ns": starts, "durations_ns": durations,
                 "peak_memory_bytes": _peak_memory_bytes(), **placed}
        if canary:
            reply["canary_ns"] = canaries
        if phases:
            if any(len(values) != iterations for values in phases.values()):
                raise RequestError(f"the {self.backend.name} runtime split some iterations only: "
                                   + ", ".join(f"{p} {len(v)}" for p, v in phases.items())
                                   + f" of {iterations}")
            reply["phases_ns"] = phases
        return reply

    def server(self, request: dict) -> dict:
        """The server scenario: one query per arrival time (ns from the start),
        each served when it has arrived and the one before it is done; a query's
        latency runs from its arrival, so queueing counts."""
        arrivals = _field(request, "arrivals_ns", list)
        if not arrivals or not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in arrivals) \
                or any(b < a for a, b in zip(arrivals, arrivals[1:])):
            raise RequestError("field 'arrivals_ns' must be a non-empty, non-decreasing list of non-negative integers")
        call, placed = self._prepared_call(request)
        latencies, durations, waits = [], [], []
        # A millisecond's lead so the first arrival is not already late.
        origin = time.perf_counter_ns() + 1_000_000
        for arrival in arrivals:
            due = origin + arrival
            now = time.perf_counter_ns()
            if due - now > 200_000:
                # Sleep most of the gap, spin the rest: sleep alone wakes late.
                time.sleep((due - now - 150_000) / 1e9)
            while time.perf_counter_ns() < due:
                pass
            begin = time.perf_counter_ns()
            call()
            end = time.perf_counter_ns()
            durations.append(end - begin)
            waits.append(begin - due)
            latencies.append(end - due)
        return {"ok": True, "latencies_ns": latencies, "durations_ns": durations, "waits_ns": waits,
                "peak_memory_bytes": _peak_memory_bytes(), **placed}

    def offline(self, request: dict) -> dict:
        """The offline scenario: `queries` inferences back to back over every
        sample in turn, inputs fed each time, as fast as the runtime goes."""
        queries = _field(request, "queries", int)
        if queries < 1:
            raise RequestError(f"field 'queries' must be at least 1, got {queries}")
        self._require_loaded()
        feeds = [self._feeds(k) for k in range(self.samples)]
        durations = []
        begin_all = time.perf_counter_ns()
        for query in range(queries):
            begin = time.perf_counter_ns()
            self.backend.infer(feeds[query % len(feeds)])
            durations.append(time.perf_counter_ns() - begin)
        total = time.perf_counter_ns() - begin_all
        return {"ok": True, "total_ns": total, "durations_ns": durations, "peak_memory_bytes": _peak_memory_bytes()}

    def clock(self, request: dict) -> dict:
        """The runner's CLOCK_MONOTONIC now: the lab estimates the offset of the
        clock of starts_ns against its own from a few of these (min round trip)."""
        return {"ok": True, "now_ns": time.monotonic_ns()}

    def native_benchmark(self, request: dict) -> dict:
        seconds = _field(request, "seconds", int, default=10, required=False)
        threads = _field(request, "threads", int, default=1, required=False)
        if seconds < 1 or threads < 1:
            raise RequestError("fields 'seconds' and 'threads' must be at least 1")
        bench = getattr(self.backend, "native_benchmark", None)
        if bench is None:
            raise RequestError(f"the {self.backend.name} runner has no native benchmark tool")
        if self.artifact is None:
            raise RequestError("no model loaded: send a 'load' request first")
        return {"ok": True, **bench(self.artifact, seconds, threads)}

    def outputs(self, request: dict) -> dict:
        directory = _field(request, "directory", str)
        if not directory:
            raise RequestError("field 'directory' is empty")
        self._require_loaded()
        names = list(self.backend.output_names())
        per_output: list[list[np.ndarray]] = [[] for _ in names]
        for k in range(self.samples):
            results = self.backend.infer(self._feeds(k))
            if len(results) != len(names):
                raise RequestError(f"sample {k}: the runtime returned {len(results)} output(s), "
                                   f"the model declares {len(names)}")
            for slot, result in zip(per_output, results):
                slot.append(np.asarray(result))

        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise RequestError(f"cannot create directory '{directory}': {error.strerror}") from error
        taken: set[str] = set()
        files = {}
        for name, results in zip(names, per_output):
            stacked = self._stack(name, results)
            file_name = safe_file_name(name, taken)
            np.save(os.path.join(directory, file_name), stacked, allow_pickle=False)
            files[name] = file_name
        return {"ok": True, "outputs": files, "order": names}

    # -- helpers ----------------------------------------------------------

    def _require_loaded(self) -> None:
        if self.inputs is None:
            raise RequestError("no model loaded: send a 'load' request first")

    def _prepared_call(self, request: dict) -> tuple[Callable[[], Any], dict]:
        """The call a timed iteration makes for the request's sample, with the
        inputs where the request's `placement` asks (device by default), and the
        reply fields that say where they really were."""
        placement = _field(request, "placement", str, default="device", required=False)
        if placement not in ("device", "host"):
            raise RequestError(f"field 'placement' must be \"device\" or \"host\", got {json.dumps(placement)}")
        feeds = self._feeds(_field(request, "sample", int, default=0, required=False))
        place_inputs = getattr(self.backend, "place_inputs", None)
        # place_inputs may answer None: this configuration of the runtime (an
        # execution provider, say) has no device memory it can be handed.
        call = place_inputs(feeds) if placement == "device" and place_inputs is not None else None
        if call is not None:
            memory = getattr(self.backend, "device_memory", None) or f"the {self.backend.name} runtime's memory"
            return call, {"input_placement": "device", "input_placement_detail": memory}
        prepare = getattr(self.backend, "prepare", None)
        detail = ("host buffers filled once, copied in and out by each call" if prepare
                  else "numpy arrays in, numpy arrays out")
        if placement == "device":
            detail = f"the {self.backend.name} runner cannot place inputs in device memory; {detail}"
        call = prepare(feeds) if prepare else (lambda: self.backend.infer(feeds))
        return call, {"input_placement": "host", "input_placement_detail": detail}

    def _feeds(self, sample: int) -> dict[str, np.ndarray]:
        self._require_loaded()
        if not 0 <= sample < self.samples:
            raise RequestError(f"sample {sample} out of range: the inputs hold {self.samples} "
                               f"sample(s), 0 to {self.samples - 1}")
        # Slicing keeps the leading axis: the model sees a batch of one sample.
        return {name: np.ascontiguousarray(array[sample:sample + 1])
                for name, array in self.inputs.items()}

    def _check_specs(self, arrays: dict[str, np.ndarray], files: dict[str, str]) -> None:
        specs_of = getattr(self.backend, "input_specs", None)
        if specs_of is None:
            return
        for name, (shape, dtype) in specs_of().items():
            array = arrays.get(name)
            if array is None:
                continue
            if dtype is not None and array.dtype != np.dtype(dtype):
                raise RequestError(f"input '{name}': '{files[name]}' holds {array.dtype}, "
                                   f"the model expects {np.dtype(dtype)}")
            if shape is None:
                continue
            fed = (1, *array.shape[1:])
            if len(fed) != len(shape) or any(d is not None and d != f for d, f in zip(shape, fed)):
                raise RequestError(
                    f"input '{name}': '{files[name]}' has shape {_format_shape(array.shape)}, so "
                    f"each sample is fed as {_format_shape(fed)}, but the model expects "
                    f"{_format_shape(shape)} (stack samples on a new leading axis)")

    @staticmethod
    def _stack(name: str, results: list[np.ndarray]) -> np.ndarray:
        shapes = {r.shape for r in results}
        if len(shapes) > 1:
            raise RequestError(f"output '{name}' has different shapes across samples: "
                               + ", ".join(_format_shape(s) for s in sorted(shapes)))
        first = results[0]
        # Batch-1 results are joined on their batch axis; anything else gets a new one.
        if first.ndim >= 1 and first.shape[0] == 1:
            return np.concatenate(results, axis=0)
        return np.stack(results, axis=0)


_HANDLERS = {"load": _Session.load, "run": _Session.run, "outputs": _Session.outputs,
             "server": _Session.server, "offline": _Session.offline,
             "native_benchmark": _Session.native_benchmark, "clock": _Session.clock}


def _answer(session: _Session, line: str) -> tuple[dict, bool]:
    """The reply to one request line, and whether the runner should stop."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as error:
        return {"ok": False, "error": f"malformed JSON request: {error}"}, False
    if not isinstance(request, dict):
        return {"ok": False, "error": "a request must be a JSON object"}, False
    op = request.get("op")
    if op is None:
        return {"ok": False, "error": "missing field 'op'"}, False
    if op == "quit":
        return {"ok": True}, True
    handler = _HANDLERS.get(op) if isinstance(op, str) else None
    if handler is None:
        known = ", ".join(sorted([*_HANDLERS, "quit"]))
        return {"ok": False, "error": f"unknown op {json.dumps(op)} (known: {known})"}, False
    try:
        return handler(session, request), False
    except RequestError as error:
        return {"ok": False, "error": f"{op}: {error}"}, False
    except Exception as error:  # a runtime failure must not end the session
        traceback.print_exc(file=sys.stderr)
        return {"ok": False, "error": f"{op}: {type(error).__name__}: {_one_line(str(error))}"}, False


def run_backend(make_backend: Callable[[], Any], runtime: str, hint: str = "",
                failures: tuple[tuple[type, str], ...] = ()) -> int:
    """A runner's main: keep stdout for the protocol, make the backend (a runtime
    that cannot be imported, or another listed failure, ends the runner with a
    clear message, status 1) and serve it."""
    reserve_stdout()
    try:
        backend = make_backend()
    except ImportError as error:
        fail(f"runner.py: {runtime} is not importable with {sys.executable}: {error}{hint}", code=1)
    except Exception as error:
        for kind, what in failures:
            if isinstance(error, kind):
                fail(f"runner.py: {what}: {error}", code=1)
        raise
    return serve(backend)


def serve(backend: Any, *, stdin: Any = None, stdout: TextIO | None = None) -> int:
    """Serve the runner protocol for backend until 'quit' or end of input; returns the exit status.

    stdin and stdout default to the process's (stdout reserved with
    reserve_stdout); tests may pass their own streams (binary or text stdin).
    """
    replies = stdout if stdout is not None else reserve_stdout()
    requests = stdin if stdin is not None else sys.stdin.buffer
    session = _Session(backend)
    _write_line(replies, {"protocol_version": PROTOCOL_VERSION,
                          "runtime": str(backend.name), "runtime_version": str(backend.version)})
    while True:
        raw = requests.readline()
        if not raw:
            return 0  # the client went away: nothing left to answer
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                _write_line(replies, {"ok": False, "error": "request is not valid UTF-8"})
                continue
        else:
            line = raw
        if not line.strip():
            continue  # blank lines are not requests
        reply, stop = _answer(session, line)
        _write_line(replies, reply)
        if stop:
            return 0
