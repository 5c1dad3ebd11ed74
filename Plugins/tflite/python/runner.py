#!/usr/bin/env python3
"""mlbench runner for LiteRT (TensorFlow Lite) on the CPU.

Speaks the runner protocol (mlbench_runner.py) on stdin/stdout. The artifact is
a .tflite file written by toolchain.py build, with its sidecar
ARTIFACT.io.json: the model's inputs and outputs under the names of the source
model (the converter names outputs output_0, output_1, ...), the signature they
belong to, and the interpreter's thread count chosen at build. MLBENCH_THREADS,
if set, overrides the thread count. Only ai-edge-litert and numpy are needed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import mlbench_runner
    from mlbench_runner import IO_SIDECAR_SUFFIX, RequestError, read_io_sidecar
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"runner.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

IO_FORMAT = "mlbench-tflite-io"
IO_VERSION = 1


class LiteRTBackend:
    name = "litert"

    def __init__(self) -> None:
        from ai_edge_litert import interpreter

        self._module = interpreter
        try:
            from importlib.metadata import version
            self.version = version("ai-edge-litert")
        except Exception:  # an unpackaged build still runs
            self.version = "unknown"
        self._interpreter = None
        self._inputs: list[dict] = []
        self._outputs: list[dict] = []

    def load(self, artifact_path: str) -> None:
        io = read_io_sidecar(artifact_path, IO_FORMAT, IO_VERSION, entry_fields=("name", "key"))
        threads = mlbench_runner.threads_from_env() or io.get("threads")
        self._interpreter = None
        interpreter = self._module.Interpreter(model_path=artifact_path, num_threads=threads)
        interpreter.allocate_tensors()
        # Tensor indices of the signature: set_tensor/invoke/get_tensor avoid the
        # signature runner's per-call Python work inside the timed region.
        signatures = interpreter._get_full_signature_list()
        signature = signatures.get(io.get("signature")) if io.get("signature") else None
        if signature is None and signatures:
            raise RequestError(f"'{artifact_path}' has no signature '{io.get('signature')}' "
                               f"(it has: {', '.join(signatures)})")
        if signature is None:
            inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
            outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        else:
            inputs, outputs = signature["inputs"], signature["outputs"]
        details = {d["index"]: d for d in interpreter.get_input_details()}
        self._inputs, self._outputs = [], []
        for entry in io["inputs"]:
            if entry["key"] not in inputs:
                raise RequestError(f"the model has no input '{entry['key']}' (it has: {', '.join(inputs)})")
            detail = details.get(inputs[entry["key"]], {})
            self._inputs.append({"name": entry["name"], "index": inputs[entry["key"]],
                                 "shape": [int(d) for d in detail.get("shape", [])] or None,
                                 "dtype": detail["dtype"].__name__ if "dtype" in detail else None})
        for entry in io["outputs"]:
            if entry["key"] not in outputs:
                raise RequestError(f"the model has no output '{entry['key']}' (it has: {', '.join(outputs)})")
            self._outputs.append({"name": entry["name"], "index": outputs[entry["key"]]})
        self._interpreter = interpreter

    def input_names(self) -> list[str]:
        return [entry["name"] for entry in self._inputs]

    def output_names(self) -> list[str]:
        return [entry["name"] for entry in self._outputs]

    def input_specs(self) -> dict:
        return {entry["name"]: (entry["shape"], entry["dtype"]) for entry in self._inputs}

    def _set(self, feeds) -> None:
        for entry in self._inputs:
            self._interpreter.set_tensor(entry["index"], feeds[entry["name"]])

    device_memory = "the interpreter's input tensors, set once"

    def place_inputs(self, feeds):
        # The inputs are copied into the interpreter once; `run` times invoke alone.
        self._set(feeds)
        return self._interpreter.invoke

    def infer(self, feeds):
        self._set(feeds)
        self._interpreter.invoke()
        # get_tensor copies: the next invoke would overwrite the buffers.
        return [self._interpreter.get_tensor(entry["index"]) for entry in self._outputs]


def main() -> int:
    return mlbench_runner.run_backend(LiteRTBackend, "ai-edge-litert")


if __name__ == "__main__":
    sys.exit(main())
