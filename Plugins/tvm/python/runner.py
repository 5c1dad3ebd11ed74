#!/usr/bin/env python3
"""mlbench runner for TVM: a Relax VirtualMachine on tvm.cpu().

Speaks the runner protocol (mlbench_runner.py) on stdin/stdout. The artifact is
the shared library written by toolchain.py build; the VM knows its parameters
only by position, so the ONNX input and output names, shapes and dtypes come
from the sidecar ARTIFACT.io.json that build writes next to it, with the thread
pool size chosen at build (`threads`). MLBENCH_THREADS, if set, overrides it.
Either becomes TVM_NUM_THREADS, read when TVM starts its thread pool at the
first parallel call, i.e. after load.
"""

from __future__ import annotations

import os
import sys

# The lab copies mlbench_runner.py beside this file, both in the installed
# plugin folder and in the deployment directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import mlbench_runner
    from mlbench_runner import RequestError, read_io_sidecar
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"runner.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

IO_FORMAT = "mlbench-tvm-io"
IO_VERSION = 1


class TVMBackend:
    name = "tvm"

    def __init__(self) -> None:
        # TVM sizes its thread pool from the environment on first use, so the
        # variable must be set before tvm is imported.
        # A bad value is reported at load, where a request can answer with it.
        self._thread_error = None
        try:
            threads = mlbench_runner.threads_from_env()
        except RequestError as error:
            threads, self._thread_error = None, str(error)
        if threads is not None:
            os.environ["TVM_NUM_THREADS"] = str(threads)
        import tvm
        from tvm import relax

        self._tvm = tvm
        self._relax = relax
        self.version = tvm.__version__
        # tvm.runtime.tensor replaced tvm.nd.array (0.22+); keep older TVMs working.
        self._to_tensor = getattr(tvm.runtime, "tensor", None) or tvm.nd.array
        self._machine = self._main = None
        self._inputs: list[dict] = []
        self._outputs: list[str] = []

    def load(self, artifact_path: str) -> None:
        if self._thread_error:
            raise RequestError(self._thread_error)
        io = read_io_sidecar(artifact_path, IO_FORMAT, IO_VERSION)
        threads = io.get("threads")  # checked by read_io_sidecar
        if threads is not None and mlbench_runner.threads_from_env() is None:
            os.environ["TVM_NUM_THREADS"] = str(threads)
        self._machine = self._main = None
        library = self._tvm.runtime.load_module(artifact_path)
        self._machine = self._relax.VirtualMachine(library, self._tvm.cpu())
        # Looked up once: the lookup is not part of an inference.
        self._main = self._machine["main"]
        self._inputs = io["inputs"]
        self._outputs = [entry["name"] for entry in io["outputs"]]

    def input_names(self) -> list[str]:
        return [entry["name"] for entry in self._inputs]

    def output_names(self) -> list[str]:
        return list(self._outputs)

    def input_specs(self) -> dict:
        return {entry["name"]: (entry.get("shape"), entry.get("dtype")) for entry in self._inputs}

    def _arguments(self, feeds) -> list:
        device = self._tvm.cpu()
        return [self._to_tensor(feeds[entry["name"]], device) for entry in self._inputs]

    device_memory = "TVM tensors on tvm.cpu(0), converted once"

    def place_inputs(self, feeds):
        # Inputs become TVM tensors once, so `run` times the VM call alone.
        main, arguments = self._main, self._arguments(feeds)
        return lambda: main(*arguments)

    def infer(self, feeds):
        result = self._main(*self._arguments(feeds))
        # One output comes back as a tensor, several as an array of tensors.
        results = [result] if hasattr(result, "numpy") else list(result)
        return [r.numpy() for r in results]


def main() -> int:
    return mlbench_runner.run_backend(TVMBackend, "tvm")


if __name__ == "__main__":
    sys.exit(main())
