#!/usr/bin/env python3
"""mlbench runner for ONNX Runtime (CPUExecutionProvider).

Speaks the runner protocol (mlbench_runner.py) on stdin/stdout. The artifact is
an .onnx file written by toolchain.py build. Its sidecar ARTIFACT.session.json,
when present, holds the session settings chosen at build (graph optimization
level, intra-op threads, execution provider); without it ONNX Runtime's
defaults apply. MLBENCH_THREADS, if set, overrides intra_op_num_threads.
"""

from __future__ import annotations

import json
import os
import sys

# The lab copies mlbench_runner.py beside this file, both in the installed
# plugin folder and in the deployment directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import mlbench_runner
    from mlbench_runner import RequestError
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"runner.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

SESSION_SIDECAR_SUFFIX = ".session.json"
DEFAULT_PROVIDER = "CPUExecutionProvider"
# Execution providers -> the OrtValue device their inputs can be bound on; the
# others get no device placement (they copy from CPU memory inside run).
PROVIDER_DEVICES = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
                    "TensorrtExecutionProvider": "cuda"}

# Level names of the build option -> GraphOptimizationLevel member names.
OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}

# ONNX Runtime type strings -> numpy dtypes, for checking input files at load.
_NUMPY_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
}


def read_session_sidecar(artifact_path: str) -> dict | None:
    """The session settings recorded by build, None when there is no sidecar."""
    path = artifact_path + SESSION_SIDECAR_SUFFIX
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            settings = json.load(file)
    except (OSError, ValueError) as error:
        raise RequestError(f"cannot read '{path}': {error}") from error
    if not isinstance(settings, dict):
        raise RequestError(f"'{path}' must hold a JSON object")
    level = settings.get("graph_optimization_level", "all")
    if level not in OPTIMIZATION_LEVELS:
        raise RequestError(f"'{path}': graph_optimization_level must be one of "
                           f"{', '.join(OPTIMIZATION_LEVELS)}, got {json.dumps(level)}")
    threads = settings.get("intra_op_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise RequestError(f"'{path}': intra_op_threads must be a positive integer, got {json.dumps(threads)}")
    provider = settings.get("execution_provider", DEFAULT_PROVIDER)
    if not isinstance(provider, str):
        raise RequestError(f"'{path}': execution_provider must be a string, got {json.dumps(provider)}")
    return {"graph_optimization_level": level, "intra_op_threads": threads, "execution_provider": provider}


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self) -> None:
        import onnxruntime

        self._ort = onnxruntime
        self.version = onnxruntime.__version__
        self._session = None
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._specs: dict = {}
        self._device: str | None = None

    def load(self, artifact_path: str) -> None:
        ort = self._ort
        options = ort.SessionOptions()
        settings = read_session_sidecar(artifact_path)
        provider = DEFAULT_PROVIDER
        if settings is None:
            sys.stderr.write(f"runner: no {os.path.basename(artifact_path)}{SESSION_SIDECAR_SUFFIX}; "
                             f"using ONNX Runtime's default session settings\n")
        else:
            options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                       OPTIMIZATION_LEVELS[settings["graph_optimization_level"]])
            if settings["intra_op_threads"] is not None:
                options.intra_op_num_threads = settings["intra_op_threads"]
            provider = settings["execution_provider"]
        threads = mlbench_runner.threads_from_env()
        if threads is not None:
            options.intra_op_num_threads = threads
        if provider not in ort.get_available_providers():
            raise RequestError(f"execution provider '{provider}' is not available on this board's onnxruntime "
                               f"(available: {', '.join(ort.get_available_providers())})")
        self._session = None
        session = ort.InferenceSession(artifact_path, options, providers=[provider])
        self._session = session
        self._device = PROVIDER_DEVICES.get(provider)
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]
        self._specs = {
            i.name: ([d if isinstance(d, int) else None for d in i.shape],
                     _NUMPY_TYPES.get(i.type))
            for i in session.get_inputs()
        }

    def input_names(self) -> list[str]:
        return list(self._inputs)

    def output_names(self) -> list[str]:
        return list(self._outputs)

    def input_specs(self) -> dict:
        return dict(self._specs)

    @property
    def device_memory(self) -> str:
        return f"OrtValues on {self._device}, bound once through IOBinding"

    def place_inputs(self, feeds):
        if self._device is None:
            return None
        session, binding = self._session, self._session.io_binding()
        # The OrtValues must outlive the binding: the closure keeps them.
        values = [self._ort.OrtValue.ortvalue_from_numpy(feeds[name], self._device, 0) for name in self._inputs]
        for name, value in zip(self._inputs, values):
            binding.bind_ortvalue_input(name, value)
        for name in self._outputs:
            # Outputs stay where the provider computes them: nothing is copied back.
            binding.bind_output(name, self._device)

        def call(values=values):
            session.run_with_iobinding(binding)
        return call

    def infer(self, feeds):
        return self._session.run(self._outputs, feeds)


def main() -> int:
    return mlbench_runner.run_backend(OnnxRuntimeBackend, "onnxruntime")


if __name__ == "__main__":
    sys.exit(main())
