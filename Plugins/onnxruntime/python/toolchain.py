#!/usr/bin/env python3
"""mlbench toolchain script for ONNX Runtime (CPU).

    toolchain.py info
    toolchain.py check --model M --target cpu [--options JSON]
    toolchain.py build --model M --target cpu [--options JSON] --output-dir D

Each command prints one JSON line on stdout; diagnostics go to stderr. Exit 0 on
success, 2 when the model or input is rejected (reason on the last stderr
line), 1 on an internal error. A `check` that finds the model incompatible
still succeeds: the issues are its result.

Options:
  graph_optimization_level = disable | basic | extended | all (default all)
  intra_op_threads = a positive integer (default: ONNX Runtime's, one per core)
  execution_provider = the name of a provider this onnxruntime offers
      (default CPUExecutionProvider; `check` lists the available ones)

build writes D/model.onnx and D/model.onnx.session.json (the session settings). The model is optimized
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
    from mlbench_runner import check_result, fail, finding, first_line, onnx_footprint, run_toolchain, write_json
    from runner import DEFAULT_PROVIDER, OPTIMIZATION_LEVELS, SESSION_SIDECAR_SUFFIX
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


KNOWN_OPTIONS = ("graph_optimization_level", "intra_op_threads", "execution_provider")


def option_problems(options: dict, available_providers: list[str]) -> tuple[dict, list[str]]:
    """The effective options and what is wrong with the given ones."""
    problems = [f"unknown option '{name}' (known: {', '.join(KNOWN_OPTIONS)})"
                for name in options if name not in KNOWN_OPTIONS]
    level = options.get("graph_optimization_level", DEFAULT_LEVEL)
    if level not in OPTIMIZATION_LEVELS:
        problems.append(f"option 'graph_optimization_level' must be one of "
                        f"{', '.join(OPTIMIZATION_LEVELS)}, got {json.dumps(level)}")
    threads = options.get("intra_op_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        problems.append(f"option 'intra_op_threads' must be a positive integer, got {json.dumps(threads)}")
    provider = options.get("execution_provider", DEFAULT_PROVIDER)
    if provider not in available_providers:
        problems.append(f"option 'execution_provider': {json.dumps(provider)} is not available in this "
                        f"onnxruntime (available: {', '.join(available_providers)})")
    effective = {"graph_optimization_level": level, "execution_provider": provider}
    if threads is not None:
        effective["intra_op_threads"] = threads
    return effective, problems


def missing_operator(message: str) -> str | None:
    """The op type an ONNX checker or ONNX Runtime error says has no implementation."""
    import re

    for pattern in (r"No Op registered for (\w+)", r"Could not find an implementation for (\w+)\(",
                    r"[Uu]nrecognized operator '?(\w+)",
                    r"([\w.]+:\w+)\(-?\d+\) is not a registered function/op"):
        match = re.search(pattern, message)
        if match:
            return match.group(1)
    return None


def target_problems(target: str) -> list[str]:
    if target in TARGETS:
        return []
    return [f"target '{target}' is not supported; onnxruntime builds for: {', '.join(TARGETS)}"]


def session_options(ort, level: str):
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[level])
    return options


def info(_args) -> dict:
    return {"name": "onnxruntime", "version": _ort().__version__,
            "formats": ["onnx"], "targets": TARGETS}


def check(args) -> dict:
    ort = _ort()
    findings = [finding("error", "target", problem) for problem in target_problems(args.target)]
    effective, problems = option_problems(args.options, ort.get_available_providers())
    findings += [finding("error", "option", problem) for problem in problems]
    if not os.path.isfile(args.model):
        return check_result(findings + [finding("error", "model", f"model file '{args.model}' not found")])

    try:
        import onnx
    except ImportError:
        onnx = None
        sys.stderr.write("onnx is not installed: skipping onnx.checker, "
                         "relying on onnxruntime to validate the model\n")
    footprint = None
    if onnx is not None:
        try:
            # Parsing first names a corrupt file as such; the checker then works
            # on the path, which also covers models with external data.
            model = onnx.load(args.model, load_external_data=False)
            onnx.checker.check_model(args.model)
        except Exception as error:  # checker and protobuf raise several types
            message = first_line(error)
            operator = missing_operator(str(error))
            if operator:
                return check_result(findings + [finding(
                    "error", "unsupported_operator",
                    f"operator {operator} is not a registered ONNX operator: {message}", operator)])
            return check_result(findings + [finding("error", "model", f"not a valid ONNX model: {message}")])
        footprint = onnx_footprint(model)

    # Creating a session resolves a kernel for every node: the real test of support.
    provider = effective["execution_provider"] if effective["execution_provider"] in ort.get_available_providers() \
        else DEFAULT_PROVIDER
    try:
        ort.InferenceSession(args.model, session_options(ort, "disable"), providers=[provider])
    except Exception as error:
        operator = missing_operator(str(error))
        code = "unsupported_operator" if operator else "model"
        findings.append(finding("error", code, f"onnxruntime cannot create a {provider} session: {first_line(error)}",
                                operator))
    return check_result(findings, footprint=footprint)


def build(args) -> dict:
    ort = _ort()
    effective, problems = option_problems(args.options, ort.get_available_providers())
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
        ort.InferenceSession(args.model, options, providers=[effective["execution_provider"]])
    except Exception as error:
        fail(f"onnxruntime cannot load '{args.model}': {first_line(error)}")
    if offline_level == "disable":
        shutil.copyfile(args.model, artifact)
    sys.stderr.write(f"optimized offline at level '{offline_level}', "
                     f"the runner applies '{level}'\n")

    write_json(artifact + SESSION_SIDECAR_SUFFIX, effective)
    return {"artifact": artifact, "effective_options": effective}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for ONNX Runtime (CPU)",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
