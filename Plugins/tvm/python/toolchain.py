#!/usr/bin/env python3
"""mlbench toolchain script for TVM (Relax, LLVM CPU targets).

    toolchain.py info
    toolchain.py check --model M --target T [--options JSON]
    toolchain.py build --model M --target T [--options JSON] --output-dir D

Each command prints one JSON line on stdout; diagnostics go to stderr. Exit 0 on
success, 2 when the model or input is rejected (reason on the last stderr
line), 1 on an internal error. A `check` that finds the model incompatible
still succeeds: the issues are its result.

Targets: "llvm", the classic "llvm -mcpu=cortex-a72 -mtriple=aarch64-linux-gnu"
form, or TVM's JSON form '{"kind":"llvm","mcpu":"..."}'. TVM 0.27 only parses
the JSON form, so the classic form is translated here.

Options:
  opt_level = 0..3 (default 3), the PassContext optimization level;
  threads = a positive integer: the size of TVM's thread pool on the board
      (default: TVM's, one per physical core), recorded in the sidecar;
  tuning_trials = 0.. (default 0): MetaSchedule trials in all; with more than 0
      the model is tuned for the target before it is compiled (slow: minutes);
  tuning_trials_per_task = a positive integer (default: tuning_trials).
Target attributes (-mcpu, -mattr, -num-cores, ...) go in the target string.

build writes D/model.so (a Relax VM executable) and D/model.so.io.json: the VM
takes its inputs by position and knows no ONNX names, so the sidecar lists the
inputs (name, shape, dtype) and outputs in model order for the runner.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from mlbench_runner import (IO_SIDECAR_SUFFIX, check_result, fail, finding, first_line, load_onnx,
                                onnx_footprint, onnx_io_description, run_toolchain, write_json)
    from runner import IO_FORMAT, IO_VERSION
except ImportError as error:  # pragma: no cover - deployment error
    sys.stderr.write(f"toolchain.py: cannot import mlbench_runner ({error}); "
                     f"mlbench_runner.py must sit beside {os.path.abspath(__file__)}\n")
    sys.exit(2)

TARGET_KINDS = ["llvm"]
DEFAULT_OPT_LEVEL = 3
ARTIFACT_NAME = "model.so"


def _tvm():
    try:
        import tvm
        import tvm.relax.frontend.onnx  # noqa: F401  (a submodule, not loaded by `import tvm`)
    except ImportError as error:
        fail(f"tvm is not importable with {sys.executable}: {error}", code=1)
    return tvm


def reject(summary: str, error: Exception) -> None:
    """Fail with summary and the telling line of a multi-line TVM or compiler error.

    The whole error goes to stderr first; the reason line picks the first line
    that reports an error (linker output starts with a bare header).
    """
    text = str(error).strip()
    sys.stderr.write(f"{type(error).__name__}: {text}\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = next((line for line in lines if "error" in line.lower() and not line.endswith(":")),
                   lines[0] if lines else "")
    fail(f"{summary}: {type(error).__name__}: {telling}")


KNOWN_OPTIONS = ("opt_level", "threads", "tuning_trials", "tuning_trials_per_task")


def _integer(options: dict, name: str, default, minimum: int, maximum: int | None = None):
    """(value, problem) of an integer option within [minimum, maximum]."""
    value = options.get(name, default)
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum \
            or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        return default, f"option '{name}' must be an integer {bounds}, got {json.dumps(value)}"
    return value, None


def option_problems(options: dict) -> tuple[dict, list[str]]:
    """The effective options and what is wrong with the given ones."""
    problems = [f"unknown option '{name}' (known: {', '.join(KNOWN_OPTIONS)})"
                for name in options if name not in KNOWN_OPTIONS]
    effective = {}
    for name, default, minimum, maximum in (("opt_level", DEFAULT_OPT_LEVEL, 0, 3), ("threads", None, 1, None),
                                            ("tuning_trials", 0, 0, None), ("tuning_trials_per_task", None, 1, None)):
        value, problem = _integer(options, name, default, minimum, maximum)
        if problem:
            problems.append(problem)
        if value is not None:
            effective[name] = value
    if "tuning_trials_per_task" in effective and not effective["tuning_trials"]:
        problems.append("option 'tuning_trials_per_task' needs 'tuning_trials' above 0")
    return effective, problems


def _target_config(tvm, text: str) -> dict:
    """A target config dict from the JSON form or the classic 'kind -key=value ...' form."""
    if text.lstrip().startswith("{"):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON: {error}") from error
        if not isinstance(config, dict):
            raise ValueError("the JSON form must be an object")
        return config
    kind, *flags = text.split()
    config: dict = {"kind": kind}
    if kind not in TARGET_KINDS:
        return config  # rejected by kind below, with a clearer message than TVM's
    # The declared option types decide how each "-key=value" string is converted.
    types = tvm.target.TargetKind.options_from_name(kind)
    for flag in flags:
        key, has_value, value = flag.lstrip("-").partition("=")
        if not flag.startswith("-") or key not in types or key == "kind":
            raise ValueError(f"unknown flag '{flag}' for target kind '{kind}'")
        kind_of_value = types[key]
        if kind_of_value == "bool":
            if has_value and value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"'{flag}': expected true or false")
            config[key] = not has_value or value.lower() in ("true", "1")
        elif not has_value:
            raise ValueError(f"'{flag}' needs a value (-{key}=...)")
        elif kind_of_value == "int":
            try:
                config[key] = int(value)
            except ValueError:
                raise ValueError(f"'{flag}': expected an integer") from None
        elif kind_of_value.startswith("Array"):
            config[key] = [item for item in value.split(",") if item]
        else:
            config[key] = value
    return config


def parse_target(tvm, text: str):
    """(tvm Target, None) or (None, the problem)."""
    if not text.strip():
        return None, "target is empty"
    try:
        config = _target_config(tvm, text)
    except ValueError as error:
        return None, f"target '{text}' is not valid: {error}"
    kind = config.get("kind")
    if kind not in TARGET_KINDS:
        return None, (f"target kind '{kind}' is not supported; tvm builds for: "
                      f"{', '.join(TARGET_KINDS)} (e.g. 'llvm' or 'llvm -mcpu=...')")
    codegen = tvm.target.codegen
    if config.get("mcpu") == "native":
        # TVM's LLVM rejects "native" under its default triple and silently falls
        # back to the generic CPU; name the CPU of this machine instead.
        config["mcpu"] = codegen.llvm_get_system_cpu()
    if "mcpu" in config and hasattr(codegen, "llvm_is_valid_cpu"):
        # An unknown CPU would also fall back to generic code silently.
        triple = config.get("mtriple") or codegen.llvm_get_system_triple()
        if not codegen.llvm_is_valid_cpu(str(config["mcpu"]), triple):
            return None, f"target '{text}': LLVM knows no CPU '{config['mcpu']}' for triple '{triple}'"
    try:
        return tvm.target.Target(config), None
    except Exception as error:  # TVM raises ValueError or its own errors
        return None, f"target '{text}' is not valid: {first_line(error)}"


def unsupported_op_types(model) -> list[str]:
    """Op types of the graph that TVM's ONNX frontend has no converter for."""
    from tvm.relax.frontend.onnx import onnx_frontend

    # A private table: if a TVM release drops it, conversion errors still tell.
    convert_map = getattr(onnx_frontend, "_get_convert_map", None)
    if convert_map is None:
        return []
    known = convert_map()
    # The table is keyed by op type alone, contrib ops (com.microsoft) included.
    return sorted({node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
                   for node in model.graph.node if node.op_type not in known})


def convert(model):
    from tvm.relax.frontend.onnx import from_onnx

    # Parameters become constants, so the VM takes only the real inputs.
    return from_onnx(model, keep_params_in_input=False)


def io_description(model, threads: int | None = None) -> dict:
    """The inputs and outputs in model order (the kit's description), and the thread
    pool size chosen at build, for the runner."""
    io = onnx_io_description(model, IO_FORMAT, IO_VERSION)
    if threads is not None:
        io["threads"] = threads
    return io


def info(_args) -> dict:
    return {"name": "tvm", "version": _tvm().__version__, "formats": ["onnx"], "targets": TARGET_KINDS}


def check(args) -> dict:
    tvm = _tvm()
    findings = []
    _, problem = parse_target(tvm, args.target)
    if problem:
        findings.append(finding("error", "target", problem))
    findings += [finding("error", "option", problem) for problem in option_problems(args.options)[1]]
    model, problem = load_onnx(args.model)
    if problem:
        return check_result(findings + [finding("error", "model", problem)])

    unsupported = unsupported_op_types(model)
    for op_type in unsupported:
        findings.append(finding("error", "unsupported_operator",
                                f"TVM's ONNX frontend does not support operator {op_type}", op_type))
    if not unsupported:
        try:
            convert(model)
        except Exception as error:
            findings.append(finding("error", "model",
                                    f"TVM cannot convert the model: {type(error).__name__}: {first_line(error)}"))
    return check_result(findings, footprint=onnx_footprint(model))


def tune(tvm, module, target, effective: dict, work_dir: str):
    """The module tuned with MetaSchedule for `target` within the trial budget."""
    from tvm import relax

    trials = effective["tuning_trials"]
    per_task = effective.get("tuning_trials_per_task", trials)
    sys.stderr.write(f"tuning with MetaSchedule: {trials} trials in all, at most {per_task} per task, "
                     f"log in {work_dir}\n")
    return relax.pipeline.static_shape_tuning_pipeline(
        total_trials=trials, target=target, work_dir=work_dir, max_trials_per_task=per_task)(module)


def build(args) -> dict:
    tvm = _tvm()
    target, problem = parse_target(tvm, args.target)
    effective, problems = option_problems(args.options)
    problems = ([problem] if problem else []) + problems
    if problems:
        fail("; ".join(problems))
    model, problem = load_onnx(args.model)
    if problem:
        fail(problem)
    unsupported = unsupported_op_types(model)
    if unsupported:
        fail("TVM's ONNX frontend does not support op type(s): " + ", ".join(unsupported))
    try:
        os.makedirs(args.output_dir, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory '{args.output_dir}': {error.strerror}")

    try:
        module = convert(model)
    except Exception as error:
        reject("TVM cannot convert the model", error)
    if effective["tuning_trials"] > 0:
        try:
            module = tune(tvm, module, target, effective, os.path.join(args.output_dir, "tuning"))
        except Exception as error:
            reject(f"MetaSchedule tuning for '{args.target}' failed", error)
    try:
        with tvm.transform.PassContext(opt_level=effective["opt_level"]):
            executable = tvm.compile(module, target=target)
    except Exception as error:
        reject(f"TVM cannot compile the model for '{args.target}'", error)

    artifact = os.path.join(args.output_dir, ARTIFACT_NAME)
    try:
        executable.export_library(artifact)
    except Exception as error:
        # export_library links with the host's g++: a target of another
        # architecture (-mtriple) would need a cross compiler.
        reject(f"cannot link '{artifact}' for '{args.target}' with the host compiler", error)
    write_json(artifact + IO_SIDECAR_SUFFIX, io_description(model, effective.get("threads")))
    sys.stderr.write(f"built {artifact} for {target} at opt_level {effective['opt_level']}\n")
    return {"artifact": artifact, "effective_options": effective}


def main(argv: list[str] | None = None) -> int:
    return run_toolchain("mlbench toolchain for TVM (Relax, LLVM)",
                         {"info": info, "check": check, "build": build}, argv)


if __name__ == "__main__":
    sys.exit(main())
