#!/usr/bin/env python3
"""mlbench runner for Vitis AI: a compiled xmodel run on the DPU through VART.

Speaks the runner protocol (mlbench_runner.py) on stdin/stdout. The xmodel's
single DPU subgraph runs with vart.Runner.create_runner(subgraph, "run"); each
timed iteration is one execute_async and wait on int8 buffers prepared before
timing. Inputs are scaled to the DPU's fixed point (x * 2^fix_point, rounded,
saturated to int8) and outputs back (y / 2^fix_point); 4-D ONNX tensors (NCHW)
are transposed to and from the DPU's NHWC. native_benchmark runs `xdputil
benchmark` on the xmodel (DPU-only throughput) when xdputil is installed.

The ONNX names come from ARTIFACT.io.json (written by build for ONNX models);
without it the DPU's own tensor names are the input and output names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import mlbench_runner
    from mlbench_runner import IO_SIDECAR_SUFFIX, RequestError, read_io_sidecar
    import vitis_tools
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"runner.py: cannot import its modules ({error}); mlbench_runner.py and vitis_tools.py "
                     f"must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

IO_FORMAT = "mlbench-vitis-ai-io"
IO_VERSION = 1


def dpu_layout(model_shape, dpu_shape) -> bool:
    """Whether a 4-D model shape (NCHW) is the DPU's NHWC shape transposed."""
    if model_shape is None or len(model_shape) != 4 or len(dpu_shape) != 4:
        return False
    n, c, h, w = model_shape
    return [n or dpu_shape[0], h, w, c] == list(dpu_shape) and list(model_shape) != list(dpu_shape)


def to_fixed(array, fix_point: int, nhwc: bool):
    """float samples -> the DPU's int8 fixed point."""
    import numpy as np

    if nhwc:
        array = np.transpose(array, (0, 2, 3, 1))
    scaled = np.round(np.asarray(array, dtype=np.float32) * (2.0 ** fix_point))
    return np.ascontiguousarray(np.clip(scaled, -128, 127).astype(np.int8))


def from_fixed(array, fix_point: int, nchw: bool):
    """The DPU's int8 fixed point -> float32 (NCHW again where the model has it)."""
    import numpy as np

    values = array.astype(np.float32) * (2.0 ** -fix_point)
    return np.ascontiguousarray(np.transpose(values, (0, 3, 1, 2))) if nchw else values


class VARTBackend:
    name = "vitis-ai"

    def __init__(self) -> None:
        import numpy as np
        import vart
        import xir

        self._np, self._vart, self._xir = np, vart, xir
        self.version = getattr(vart, "__version__", None) or _distribution_version("vart")
        self._runner = None
        self._inputs: list[dict] = []
        self._outputs: list[dict] = []

    def load(self, artifact_path: str) -> None:
        graph = self._xir.Graph.deserialize(artifact_path)
        children = graph.get_root_subgraph().toposort_child_subgraph()
        devices = [(s, s.get_attr("device").upper() if s.has_attr("device") else "") for s in children]
        dpu = [s for s, device in devices if device == "DPU"]
        cpu = [s.get_name() for s, device in devices if device == "CPU"]
        if len(dpu) != 1 or cpu:
            raise RequestError(f"'{artifact_path}' has {len(dpu)} DPU subgraph(s) and CPU subgraph(s) "
                               f"{', '.join(cpu) or 'none'}: this runner runs models that compile to exactly "
                               f"one DPU subgraph and nothing on the CPU")
        self._runner = self._vart.Runner.create_runner(dpu[0], "run")
        sidecar = os.path.isfile(artifact_path + IO_SIDECAR_SUFFIX)
        io = read_io_sidecar(artifact_path, IO_FORMAT, IO_VERSION) if sidecar else None
        self._inputs = self._describe(self._runner.get_input_tensors(), io and io["inputs"], "input")
        self._outputs = self._describe(self._runner.get_output_tensors(), io and io["outputs"], "output")

    def _describe(self, tensors, model_entries, kind: str) -> list[dict]:
        if model_entries is not None and len(model_entries) != len(tensors):
            raise RequestError(f"the DPU subgraph has {len(tensors)} {kind}(s), the model "
                               f"{len(model_entries)}: the compiled model does not match its sidecar")
        described = []
        for index, tensor in enumerate(tensors):
            entry = model_entries[index] if model_entries is not None else {"name": tensor.name}
            dims = [int(d) for d in tensor.dims]
            described.append({"name": entry["name"], "model_shape": entry.get("shape"), "dims": dims,
                              "fix_point": int(tensor.get_attr("fix_point")),
                              "nhwc": dpu_layout(entry.get("shape"), dims),
                              "buffer": self._np.empty(dims, dtype=self._np.int8)})
        return described

    def input_names(self) -> list[str]:
        return [t["name"] for t in self._inputs]

    def output_names(self) -> list[str]:
        return [t["name"] for t in self._outputs]

    def prepare(self, feeds):
        for tensor in self._inputs:
            fixed = to_fixed(feeds[tensor["name"]], tensor["fix_point"], tensor["nhwc"])
            if list(fixed.shape) != tensor["dims"]:
                raise RequestError(f"input '{tensor['name']}': a sample of shape {list(fixed.shape)} does not "
                                   f"fit the DPU tensor {tensor['dims']}")
            tensor["buffer"][...] = fixed
        runner = self._runner
        inputs = [t["buffer"] for t in self._inputs]
        outputs = [t["buffer"] for t in self._outputs]
        return lambda: runner.wait(runner.execute_async(inputs, outputs))

    def infer(self, feeds):
        self.prepare(feeds)()
        return [from_fixed(t["buffer"], t["fix_point"], t["nhwc"]) for t in self._outputs]

    def native_benchmark(self, artifact_path: str, seconds: int, threads: int) -> dict:
        if shutil.which("xdputil") is None:
            raise RequestError("xdputil is not installed on this board (Vitis AI board images ship it)")
        command, extra = vitis_tools.xdputil_benchmark_command(artifact_path, threads, seconds)
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 2 + 300,
                              env={**os.environ, **extra})
        log = done.stdout + done.stderr
        if done.returncode != 0:
            raise RequestError(f"xdputil benchmark failed (status {done.returncode}): "
                               + (log.strip().splitlines() or ["no output"])[-1])
        try:
            figures = vitis_tools.parse_xdputil_benchmark(log)
        except ValueError as error:
            raise RequestError(str(error)) from error
        return {"tool": "xdputil benchmark", "command": command, **figures}


def _distribution_version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main() -> int:
    return mlbench_runner.run_backend(VARTBackend, "VART", hint=" (run it with the Python of a Vitis AI board image)")


if __name__ == "__main__":
    sys.exit(main())
