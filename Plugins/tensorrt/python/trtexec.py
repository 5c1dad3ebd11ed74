"""TensorRT's options, trtexec's command lines, and what trtexec prints, parsed.

Pure: imports neither TensorRT nor CUDA, so planning and parsing are tested on
machines without a GPU. The formats parsed here are those of TensorRT's own
samples/common/sampleReporting.cpp (the performance summary and the
--exportTimes trace) and trtexec.cpp (the "&&&& RUNNING TensorRT.trtexec
[TensorRT vNNNN]" banner and the "=== Build Options ===" block).
"""

from __future__ import annotations

import json
import re

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_PRECISION = "fp32"
# TensorRT's own default builder optimization level (0 fastest build .. 5 most tactics).
DEFAULT_OPTIMIZATION_LEVEL = 3
KNOWN_OPTIONS = ("precision", "workspace_mib", "builder_optimization_level", "calibration_cache")
PERCENTILES = (90, 95, 99)


def option_problems(options: dict) -> tuple[dict, list[str]]:
    """The effective options and, for each bad one, a message naming it.

    precision: fp32 (default), fp16 or int8. workspace_mib: the builder's
    workspace pool limit in MiB (TensorRT's default, the device's memory, when
    absent). builder_optimization_level: 0 to 5 (default 3). calibration_cache:
    an existing int8 calibration cache file, used instead of calibrating.
    """
    problems = [f"unknown option '{name}' (known: {', '.join(KNOWN_OPTIONS)})"
                for name in options if name not in KNOWN_OPTIONS]
    precision = options.get("precision", DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        problems.append(f"option 'precision' must be one of {', '.join(PRECISIONS)}, got {json.dumps(precision)}")
    workspace = options.get("workspace_mib")
    if workspace is not None and (isinstance(workspace, bool) or not isinstance(workspace, int) or workspace < 1):
        problems.append(f"option 'workspace_mib' must be a positive integer (MiB), got {json.dumps(workspace)}")
    level = options.get("builder_optimization_level", DEFAULT_OPTIMIZATION_LEVEL)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 5:
        problems.append(f"option 'builder_optimization_level' must be an integer from 0 to 5, got {json.dumps(level)}")
    cache = options.get("calibration_cache")
    if cache is not None and (not isinstance(cache, str) or not cache):
        problems.append(f"option 'calibration_cache' must be a file path, got {json.dumps(cache)}")
    elif cache is not None and precision != "int8":
        problems.append("option 'calibration_cache' only applies to precision 'int8'")
    effective = {"precision": precision, "workspace_mib": workspace, "builder_optimization_level": level}
    if cache is not None:
        effective["calibration_cache"] = cache
    return effective, problems


def build_command(trtexec: str, onnx: str, engine: str, effective: dict, *,
                  calibration_cache: str | None = None, timing_cache: str | None = None,
                  build_only_flag: str = "--skipInference") -> list[str]:
    """trtexec's command line that builds `engine` from `onnx` with the effective options.

    build_only_flag (--skipInference from TensorRT 8.6, --buildOnly before): the
    build only; the runner measures. An int8 build without a calibration cache
    relies on the model's Q/DQ nodes (trtexec cannot calibrate from data;
    without either it would use placeholder scales). A builder optimization
    level of None (TensorRT before 8.6) adds no flag.
    """
    command = [trtexec, f"--onnx={onnx}", f"--saveEngine={engine}", build_only_flag]
    if effective["precision"] == "fp16":
        command.append("--fp16")
    elif effective["precision"] == "int8":
        command.append("--int8")
        if calibration_cache:
            command.append(f"--calib={calibration_cache}")
    if effective.get("workspace_mib") is not None:
        # Without a suffix trtexec reads MiB (TensorRT 8.4 and later).
        command.append(f"--memPoolSize=workspace:{effective['workspace_mib']}")
    if effective.get("builder_optimization_level") is not None:
        command.append(f"--builderOptimizationLevel={effective['builder_optimization_level']}")
    if timing_cache:
        command.append(f"--timingCacheFile={timing_cache}")
    return command


def benchmark_command(trtexec: str, engine: str, seconds: int, streams: int, export_times: str) -> list[str]:
    """trtexec's command line that times a built engine for `seconds` and exports each iteration."""
    command = [trtexec, f"--loadEngine={engine}", f"--duration={seconds}",
               f"--percentile={','.join(str(p) for p in PERCENTILES)}", f"--exportTimes={export_times}"]
    if streams > 1:
        command.append(f"--streams={streams}")
    return command


def supports_flag(help_text: str, flag: str) -> bool:
    """Whether `trtexec --help` lists flag (TensorRT removes flags between major versions)."""
    return re.search(rf"(^|\s){re.escape(flag)}(\b|=)", help_text, re.MULTILINE) is not None


_BANNER = re.compile(r"\[TensorRT v(\d+)\]")
_VERSION_LINE = re.compile(r"TensorRT version:\s*([0-9][0-9.]*)")


def _from_code(code: str) -> str:
    """TensorRT's integer version: major*1000+minor*100+patch before 10, major*10000+... from 10."""
    number = int(code)
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def parse_version(text: str) -> str | None:
    """TensorRT's version from trtexec's output: the "TensorRT version:" line, else the banner.

    TensorRT 8.0 printed the version line as an integer (8001); the banner is
    always the integer form ("[TensorRT v100200]" is 10.2.0, "v8601" 8.6.1).
    """
    match = _VERSION_LINE.search(text)
    if match:
        value = match.group(1).rstrip(".")
        return _from_code(value) if value.isdigit() and len(value) >= 4 else value
    match = _BANNER.search(text)
    return _from_code(match.group(1)) if match else None


# "[11/23/2026-10:00:00] [I] " (timestamp and severity) before each line of trtexec's log.
_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)?\[([IWEVF])\]\s?")


def _messages(text: str):
    for line in text.splitlines():
        match = _PREFIX.match(line)
        if match:
            yield match.group(1), line[match.end():].rstrip()


def _block(text: str, title: str):
    """(severity, message) of each line of the "=== TITLE ===" block, up to the next header."""
    inside = False
    for severity, message in _messages(text):
        if message.startswith("==="):
            inside = message.strip() == f"=== {title} ==="
        elif inside:
            yield severity, message


def parse_build_options(text: str) -> dict:
    """The "=== Build Options ===" block, as trtexec prints the settings in effect ("Precision: FP32+INT8")."""
    options: dict = {}
    for severity, message in _block(text, "Build Options"):
        if not message.strip():
            break  # the block ends with an empty [I] line
        key, separator, value = message.partition(":")
        if severity == "I" and separator:
            options[key.strip()] = value.strip()
    return options


def error_lines(text: str) -> list[str]:
    """trtexec's error lines ([E]), which say why a build or run failed."""
    return [message.strip() for severity, message in _messages(text) if severity in ("E", "F") and message.strip()]


_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_STATISTIC = re.compile(rf"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\)) = {_NUMBER} ms")
_METRICS = {
    "Latency": "latency_ms",
    "Enqueue Time": "enqueue_time_ms",
    "H2D Latency": "h2d_latency_ms",
    "GPU Compute Time": "gpu_compute_time_ms",
    "D2H Latency": "d2h_latency_ms",
}


def _statistics(text: str) -> dict:
    result = {}
    for name, percentile, value in _STATISTIC.findall(text):
        key = f"p{percentile.rstrip('0').rstrip('.') if '.' in percentile else percentile}" if percentile else name
        result[key] = float(value)
    return result


def parse_performance_summary(text: str) -> dict:
    """The "=== Performance summary ===" block of trtexec: throughput, then for each of
    latency (host: H2D + compute + D2H), enqueue time, H2D, GPU compute and D2H the
    min/max/mean/median and percentiles in ms, then the total walltime and GPU time.
    Raises ValueError when the block is missing or lacks a metric.
    """
    summary: dict = {}
    for _, message in _block(text, "Performance summary"):
        name, separator, rest = message.partition(":")
        name = name.strip()
        if not separator:
            continue
        if name == "Throughput":
            match = re.search(_NUMBER + r" qps", rest)
            if match:
                summary["throughput_qps"] = float(match.group(1))
        elif name in _METRICS:
            summary[_METRICS[name]] = _statistics(rest)
        elif name in ("Total Host Walltime", "Total GPU Compute Time"):
            match = re.search(_NUMBER + r" s", rest)
            if match:
                key = "total_host_walltime_s" if name == "Total Host Walltime" else "total_gpu_compute_time_s"
                summary[key] = float(match.group(1))
    if not summary:
        raise ValueError("trtexec printed no '=== Performance summary ===' block")
    missing = [key for key in ["throughput_qps", *_METRICS.values()] if key not in summary]
    if missing:
        raise ValueError("trtexec's performance summary lacks " + ", ".join(missing))
    return summary


# --exportTimes keys: TensorRT 8 and later, then TensorRT 7 (no enqueue, "in"/"out" for H2D/D2H).
_TIME_KEYS = {"h2dMs": "h2d_ms", "computeMs": "compute_ms", "d2hMs": "d2h_ms", "latencyMs": "latency_ms",
              "inMs": "h2d_ms", "outMs": "d2h_ms", "startComputeMs": "compute_start_ms",
              "startEnqMs": "enqueue_start_ms", "endEnqMs": "enqueue_end_ms"}


def parse_export_times(text: str) -> list[dict]:
    """The per-iteration records of trtexec --exportTimes=FILE, with plain names (ms):
    h2d_ms, compute_ms, d2h_ms, latency_ms (their sum), and the start stamps when present.
    Raises ValueError on anything else.
    """
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not a trtexec --exportTimes file: {error}") from error
    if not isinstance(records, list):
        raise ValueError("not a trtexec --exportTimes file: expected a JSON array of iterations")
    iterations = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or "computeMs" not in record:
            raise ValueError(f"iteration {index} of the --exportTimes file has no 'computeMs'")
        iterations.append({plain: float(record[key]) for key, plain in _TIME_KEYS.items() if key in record})
    return iterations


def split_from_times(iterations: list[dict]) -> dict:
    """Per-phase nanosecond lists from parsed --exportTimes records (the runner protocol's phases_ns)."""
    phases: dict[str, list[int]] = {}
    for phase in ("h2d", "compute", "d2h"):
        values = [record.get(f"{phase}_ms") for record in iterations]
        if values and all(value is not None for value in values):
            phases[phase] = [round(value * 1e6) for value in values]
    return phases
