#!/usr/bin/env python3
"""mlbench runner for TensorRT: a serialized engine run with the TensorRT Python API.

Speaks the runner protocol (mlbench_runner.py) on stdin/stdout. With inputs
placed on the device (the default), the inputs are copied to the GPU once and
each timed iteration runs the engine alone, outputs left on the GPU (trtexec's
--noDataTransfers). With host placement, each timed iteration copies the inputs
to the GPU, runs the engine and copies the outputs back, synchronously on one
CUDA stream. CUDA events between the steps give TensorRT's own split (h2d,
compute, d2h; compute alone on the device) per iteration, reported as phases_ns
beside the host-clock duration. native_benchmark runs trtexec on the engine when
trtexec is on PATH and returns its performance summary and per-iteration trace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import mlbench_runner
    from mlbench_runner import RequestError
    import trtexec
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"runner.py: cannot import its modules ({error}); mlbench_runner.py, trtexec.py and "
                     f"cuda_memory.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self) -> None:
        import numpy as np
        import tensorrt as trt

        import cuda_memory

        self._np, self._trt, self._cuda = np, trt, cuda_memory
        self.version = trt.__version__
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._context = None
        self._transfers = True
        self._inputs: list[dict] = []
        self._outputs: list[dict] = []
        self._stream = cuda_memory.call(cuda_memory.runtime().cudaStreamCreate(), "cudaStreamCreate")
        self._events = [cuda_memory.call(cuda_memory.runtime().cudaEventCreate(), "cudaEventCreate")
                        for _ in range(4)]

    def _release(self) -> None:
        for tensor in self._inputs + self._outputs:
            tensor["device"].free()
        self._inputs, self._outputs = [], []
        self._engine = self._context = None

    def load(self, artifact_path: str) -> None:
        trt = self._trt
        self._release()
        with open(artifact_path, "rb") as file:
            engine = self._runtime.deserialize_cuda_engine(file.read())
        if engine is None:
            raise RequestError(f"TensorRT {self.version} cannot deserialize '{artifact_path}' (an engine "
                               f"runs only with the TensorRT version and GPU it was built for)")
        context = engine.create_execution_context()
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = [int(d) for d in engine.get_tensor_shape(name)]
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input and shape and shape[0] < 0:
                # Built with a batch profile fixed at 1 (toolchain.py).
                shape[0] = 1
                context.set_input_shape(name, shape)
            tensor = {"name": name, "shape": shape, "dtype": self._np.dtype(trt.nptype(engine.get_tensor_dtype(name)))}
            (self._inputs if is_input else self._outputs).append(tensor)
        for tensor in self._outputs:
            tensor["shape"] = [int(d) for d in context.get_tensor_shape(tensor["name"])]
        for tensor in self._inputs + self._outputs:
            size = int(self._np.prod(tensor["shape"])) * tensor["dtype"].itemsize
            tensor["device"] = self._cuda.DeviceBuffer(size)
            tensor["host"] = self._np.empty(tensor["shape"], dtype=tensor["dtype"])
            context.set_tensor_address(tensor["name"], tensor["device"].pointer)
        self._engine, self._context = engine, context

    def input_names(self) -> list[str]:
        return [tensor["name"] for tensor in self._inputs]

    def output_names(self) -> list[str]:
        return [tensor["name"] for tensor in self._outputs]

    def input_specs(self) -> dict:
        return {t["name"]: (t["shape"], t["dtype"].name) for t in self._inputs}

    device_memory = "CUDA device buffers, copied once; outputs left on the GPU"

    def prepare(self, feeds):
        # Host placement: the feeds are placed in the host buffers once; each call
        # copies them to the GPU and the outputs back.
        for tensor in self._inputs:
            tensor["host"][...] = feeds[tensor["name"]]
        self._transfers = True
        return self._execute

    def place_inputs(self, feeds):
        # Device placement: one upload before timing; each call computes alone.
        cuda, stream = self._cuda, self._stream
        for tensor in self._inputs:
            tensor["host"][...] = feeds[tensor["name"]]
            cuda.copy_to_device(tensor["device"], tensor["host"], stream)
        cuda.call(cuda.runtime().cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        self._transfers = False
        return self._execute

    def _execute(self) -> None:
        cuda, stream, (start, uploaded, computed, downloaded) = self._cuda, self._stream, self._events
        record = cuda.runtime().cudaEventRecord
        transfers = self._transfers
        cuda.call(record(start, stream), "cudaEventRecord")
        if transfers:
            for tensor in self._inputs:
                cuda.copy_to_device(tensor["device"], tensor["host"], stream)
        cuda.call(record(uploaded, stream), "cudaEventRecord")
        # TensorRT takes the stream as its integer handle.
        if not self._context.execute_async_v3(int(stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed (see stderr)")
        cuda.call(record(computed, stream), "cudaEventRecord")
        if transfers:
            for tensor in self._outputs:
                cuda.copy_to_host(tensor["host"], tensor["device"], stream)
        cuda.call(record(downloaded, stream), "cudaEventRecord")
        cuda.call(cuda.runtime().cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def last_phases_ns(self) -> dict:
        start, uploaded, computed, downloaded = self._events
        elapsed = self._cuda.elapsed_ns
        if not self._transfers:
            return {"compute": elapsed(uploaded, computed)}
        return {"h2d": elapsed(start, uploaded), "compute": elapsed(uploaded, computed),
                "d2h": elapsed(computed, downloaded)}

    def infer(self, feeds):
        self.prepare(feeds)()
        return [tensor["host"].copy() for tensor in self._outputs]

    def native_benchmark(self, artifact_path: str, seconds: int, threads: int) -> dict:
        path = shutil.which("trtexec")
        if path is None:
            raise RequestError("trtexec is not on PATH on this board (JetPack installs it in "
                               "/usr/src/tensorrt/bin; the pip wheel does not ship it)")
        with tempfile.TemporaryDirectory() as folder:
            times = os.path.join(folder, "times.json")
            command = trtexec.benchmark_command(path, artifact_path, seconds, threads, times)
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 300)
            log = done.stdout + done.stderr
            if done.returncode != 0:
                raise RequestError(f"trtexec failed (status {done.returncode}): "
                                   + ("; ".join(trtexec.error_lines(log)[-3:]) or "no [E] line"))
            with open(times, encoding="utf-8") as file:
                iterations = trtexec.parse_export_times(file.read())
        return {"tool": "trtexec", "command": command, "tensorrt_version": trtexec.parse_version(log),
                "summary": trtexec.parse_performance_summary(log),
                "phases_ns": trtexec.split_from_times(iterations), "iterations": len(iterations)}


def main() -> int:
    return mlbench_runner.run_backend(TensorRTBackend, "TensorRT",
                                      # a CUDA call failed: no GPU, or a driver too old
                                      failures=((RuntimeError, "no usable CUDA device"),))


if __name__ == "__main__":
    sys.exit(main())
