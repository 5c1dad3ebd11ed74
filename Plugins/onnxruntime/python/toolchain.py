#!/usr/bin/env python3
"""mlbench toolchain script for ONNX Runtime (CPU).

    toolchain.py info
    toolchain.py check --model M --target cpu [--options JSON]
    toolchain.py build --model M --target cpu [--options JSON] --output-dir D

Each command prints one JSON line on stdout; diagnostics go to stderr. Exit 0 on
success, 2 when the model or input is rejected (reason on the last stderr
line), 1 on an internal error. A `check` that finds the model incompatible
still succeeds: the issues are its result.

Options: graph_optimization_level = disable | basic | extended | all (default all).

build writes D/model.onnx and D/model.onnx.session.json. The model is optimized
offline at most up to `extended`: ONNX Runtime's `all` adds layout
transformations (NCHWc) tied to the CPU the model is optimized on, and the board
may have a different one. The sidecar records the requested level, and the
runner creates its session with it, so `all` layout passes run on the board
itself and `disable` really runs the model unoptimized.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from mlbench_runner import fail, run_toolchain, write_json
    from runner import OPTIMIZATION_LEVELS, SESSION_SIDECAR_SUFFIX
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"toolchain.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

TARGETS = ["cpu"]
DEFAULT_LEVEL = "all"
ARTIFACT_NAME = "model.onnx"
# The highest level whose optimized model is portable across CPUs.
PORTABLE_LEVELS = ["disable", "basic", "extended"]


def _ort():
    try:
        import onnxruntime
    except ImportError as error:
        fail(f"onnxruntime is not importable with {sys.executable}: {error}", code=1)
    return onnxruntime


def option_problems(options: dict) -> tuple[dict, list[str]]:
    """The effective options and what is wrong with the given ones."""
    problems = [f"unknown option '{name}' (known: graph_optimization_level)"
                for name in options if name != "graph_optimization_level"]
    level = options.get("graph_optimization_level", DEFAULT_LEVEL)
    if level not in OPTIMIZATION_LEVELS:
        problems.append(f"option 'graph_optimization_level' must be one of "
                        f"{', '.join(OPTIMIZATION_LEVELS)}, got {json.dumps(level)}")
    return {"graph_optimization_level": level}, problems


def target_problems(target: str) -> list[str]:
    if target in TARGETS:
        return []
    return [f"target '{target}' is not supported; onnxruntime builds for: {', '.join(TARGETS)}"]


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def session_options(ort, level: str):
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
    return options


def info(_args) -> dict:
    return {"name": "onnxruntime", "version": _ort().__version__,
            "formats": ["onnx"], "targets": TARGETS}


def check(args) -> dict:
    ort = _ort()
    issues = target_problems(args.target)
    issues += option_problems(args.options)[1]
    if not os.path.isfile(args.model):
        issues.append(f"model file '{args.model}' not found")
        return {"compatible": False, "issues": issues}

    try:
        import onnx
    except ImportError:
        onnx = None
        sys.stderr.write("onnx is not installed: skipping onnx.checker, "
                         "relying on onnxruntime to validate the model\n")
    if onnx is not None:
        try:
            # Parsing first names a corrupt file as such; the checker then works
            # on the path, which also covers models with external data.
            onnx.load(args.model, load_external_data=False)
            onnx.checker.check_model(args.model)
        except Exception as error:  # checker and protobuf raise several types
            issues.append(f"not a valid ONNX model: {first_line(error)}")
            return {"compatible": False, "issues": issues}

    # Creating a session resolves a kernel for every node: the real test of support.
    try:
        ort.InferenceSession(args.model, session_options(ort, "disable"),
                             providers=["CPUExecutionProvider"])
    except Exception as error:
        issues.append(f"onnxruntime cannot create a CPU session: {first_line(error)}")
    return {"compatible": not issues, "issues": issues}


def build(args) -> dict:
    ort = _ort()
    effective, problems = option_problems(args.options)
    problems = target_problems(args.target) + problems
    if problems:
        fail("; ".join(problems))
    if not os.path.isfile(args.model):
        fail(f"model file '{args.model}' not found")
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory '{args.output_dir}': {error.strerror}")

    level = effective["graph_optimization_level"]
    offline_level = level if level in PORTABLE_LEVELS else PORTABLE_LEVELS[-1]
    artifact = os.path.join(args.output_dir, ARTIFACT_NAME)
    options = session_options(ort, offline_level)
    if offline_level != "disable":
        options.optimized_model_filepath = artifact
    # The session validates the model even when nothing is optimized.
    try:
        ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    except Exception as error:
        fail(f"onnxruntime cannot load '{args.model}': {first_line(error)}")
    if offline_level == "disable":
        shutil.copyfile(args.model, artifact)
    sys.stderr.write(f"optimized offline at level '{offline_level}', "
                     f"the runner applies '{level}'\n")

    write_json(artifact + SESSION_SIDECAR_SUFFIX, {"graph_optimization_level": level})
    return {"artifact": artifact, "effective_options": effective}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for ONNX Runtime (CPU)",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
