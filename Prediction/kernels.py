#!/usr/bin/env python3
"""Measure every kernel of every model of a zoo with ONNX Runtime's profiler.

    kernels.py --jobs JOBS.json --kernels KERNELS.csv --models MODELS.csv
               [--threads 1] [--clock cpu] [--budget-s 0.4] [--percentile 10] [--min-runs 30] [--max-runs 200]

Runs in the ONNX Runtime toolchain's environment (`mlbench predictor kernels`
writes JOBS.json and starts it). JOBS.json is a list of models, each with its
ONNX file, input (.npy, the first sample is used), 11 model-level features and
fused kernels as `mlbench features --json` describes them (Swift's fusion rule,
which follows ONNX Runtime's CPU fusions).

For each model, on the CPU execution provider with every graph optimisation,
two sessions, one plain and one with ONNX Runtime's profiler, run the model in
turn (warm-up runs first, then as many rounds as fill --budget-s, between
--min-runs and --max-runs); interleaved, so that on a shared machine both see
the same load:
1. end to end: `latency_ms` is the --percentile of the plain runs' times
   (default the 10th: what the model costs when other processes leave it alone;
   50 gives the median), timed by --clock: `cpu` (default) is the calling
   thread's CPU time — with one intra-op thread ONNX Runtime computes in the
   calling thread, so this is the wall-clock latency less the time other
   processes had the core, which on a shared machine is most of a long run's
   wall time; `wall` is the wall clock (needed with more than one thread);
2. per kernel: each node event of the profile (`<node>_kernel_time`) is mapped
   to the Swift kernel holding that node (ONNX Runtime names a fused node after
   one of its members, with suffixes such as `_nchwc` or `/QuickGeluFusion/`);
   the layout conversions ONNX Runtime inserts (ReorderOutput after a blocked
   kernel, ReorderInput before one) count to the kernel they serve, and are
   also written apart (`reorder_ms`), with whether the kernel ran in the
   blocked NCHWc layout (`blocked`: a node renamed "…_nchwc"). Each
   kernel's time is the same percentile over runs of its events' sum; events no
   kernel claims are reported as `unattributed_ms`.

Writes one row per kernel to KERNELS.csv and one row per model to MODELS.csv
(the model-level table of train.py, plus `kernel_sum_ms` and
`unattributed_ms`), appending model by model so that an interrupted campaign
keeps what it measured. Prints a line per model.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import kernel_features

FEATURES = ["flops", "activations", "neurons", "conv_params", "nb_layers", "input_size",
            "fc_params", "bn_params", "bn_layers", "conv_layers", "fc_layers"]
MODEL_COLUMNS = ["model", "family", "synthetic"] + FEATURES + [
    "latency_ms", "kernel_sum_ms", "unattributed_ms", "runs", "percentile", "clock", "board", "toolchain", "toolchain_version", "threads", "file"]
KERNEL_COLUMNS = (["file", "model", "family", "synthetic", "input_size", "kernel", "kind", "op"]
                  + kernel_features.SHAPE_COLUMNS + ["latency_ms", "reorder_ms", "blocked"])


def node_of(event_name: str) -> str:
    """The ONNX node an ONNX Runtime profile event names: '<node>_kernel_time'
    with the suffixes of its graph transformers taken off."""
    name = event_name[: -len("_kernel_time")] if event_name.endswith("_kernel_time") else event_name
    name = name.split("/")[0]
    for suffix in ("_nchwc", "_fused"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def kernel_row(job: dict, index: int, kernel: dict) -> dict:
    return {"file": job["path"], "model": job["model"], "family": job.get("family") or "",
            "synthetic": str(bool(job.get("synthetic"))).lower(), "input_size": job["features"]["input_size"],
            "kernel": index, **kernel_features.shape_row(kernel)}


WARM_UP = 7


def measure(job: dict, threads: int, budget_s: float, min_runs: int, max_runs: int, percentile: float, clock: str, scratch: str):
    import onnxruntime as ort

    def session(profile: bool):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(scratch, "profile")
        return ort.InferenceSession(job["onnx"], options, providers=["CPUExecutionProvider"])

    plain = session(False)
    profiled = session(True)
    feeds = {}
    for name, path in job["inputs"].items():
        feeds[name] = np.load(path)[:1]
    warm = []
    for _ in range(WARM_UP):
        start = time.perf_counter()
        plain.run(None, feeds)
        warm.append(time.perf_counter() - start)
        profiled.run(None, feeds)
    once = statistics.median(warm)
    runs = int(min(max_runs, max(min_runs, budget_s / max(once, 1e-6))))
    # Interleaved, a plain run then a profiled one: on a shared machine both
    # passes see the same load, so the kernels' sum and the end-to-end time agree.
    # The cpu clock is the calling thread's CPU time: with one intra-op thread ONNX
    # Runtime computes in the calling thread, and the time it was not running (other
    # processes' turns on a shared machine) is left out; on an idle machine it is
    # the wall-clock latency.
    clock_ns = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    timings = []
    for _ in range(runs):
        start = clock_ns()
        plain.run(None, feeds)
        timings.append(clock_ns() - start)
        profiled.run(None, feeds)
    latency_ms = float(np.percentile(timings, percentile)) / 1e6
    del plain
    path = profiled.end_profiling()
    with open(path) as file:
        events = json.load(file)
    os.remove(path)

    owner = {}
    for index, kernel in enumerate(job["kernels"]):
        for node in kernel["nodes"]:
            owner[node] = index
    # Node events in execution order, one run after another; the warm-up runs are dropped.
    node_events = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    per_run = len(node_events) // (runs + WARM_UP) if node_events else 0
    if per_run == 0 or per_run * (runs + WARM_UP) != len(node_events):
        raise RuntimeError(f"{job['onnx']}: the profile holds {len(node_events)} node events, not a multiple of {runs + WARM_UP} runs")
    sequence = [node_of(e["name"]) for e in node_events[:per_run]]
    # A kernel ran in the blocked layout when ONNX Runtime renamed one of its nodes "…_nchwc".
    blocked = np.zeros(len(job["kernels"]), dtype=int)
    # Which kernel each event position counts to: its own node's, a reorder's neighbour's, or none.
    targets: list[int | None] = [owner.get(name) for name in sequence]
    for position, name in enumerate(sequence):
        if targets[position] is not None:
            continue
        if name.startswith("ReorderOutput"):
            earlier = [t for t in targets[:position] if t is not None]
            targets[position] = earlier[-1] if earlier else None
        elif name.startswith("ReorderInput"):
            later = [owner.get(n) for n in sequence[position + 1:] if owner.get(n) is not None]
            targets[position] = later[0] if later else None
    for position, event in enumerate(node_events[:per_run]):
        if targets[position] is not None and not sequence[position].startswith("Reorder") and "_nchwc" in event["name"]:
            blocked[targets[position]] = 1
    kernel_runs = np.zeros((runs, len(job["kernels"])))
    reorder_runs = np.zeros((runs, len(job["kernels"])))
    unattributed = np.zeros(runs)
    for run in range(runs):
        block = node_events[(run + WARM_UP) * per_run:(run + WARM_UP + 1) * per_run]
        for position, event in enumerate(block):
            if node_of(event["name"]) != sequence[position]:
                raise RuntimeError(f"{job['onnx']}: run {run} executes nodes in another order than the first run")
            seconds_ms = float(event["dur"]) / 1000.0
            if targets[position] is None:
                unattributed[run] += seconds_ms
            else:
                kernel_runs[run, targets[position]] += seconds_ms
                if sequence[position].startswith("Reorder"):
                    reorder_runs[run, targets[position]] += seconds_ms
    kernel_ms = np.percentile(kernel_runs, percentile, axis=0)
    reorder_ms = np.percentile(reorder_runs, percentile, axis=0)
    return latency_ms, kernel_ms, reorder_ms, blocked, float(np.percentile(unattributed, percentile)), runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", required=True, help="the models and their kernels (JSON, from mlbench predictor kernels)")
    parser.add_argument("--kernels", required=True, help="the kernel table to write (CSV)")
    parser.add_argument("--models", required=True, help="the model table to write (CSV)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime's intra-op threads (default 1)")
    parser.add_argument("--budget-s", type=float, default=0.4, help="measuring time per model and pass (default 0.4 s)")
    parser.add_argument("--percentile", type=float, default=10,
                        help="the percentile of the runs that is recorded, end to end and per kernel (default 10: "
                             "the time without other processes' interference on a shared machine; 50 for the median)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                        help="end-to-end times by the calling thread's CPU time (default; needs --threads 1) or wall clock")
    parser.add_argument("--min-runs", type=int, default=30)
    parser.add_argument("--max-runs", type=int, default=200)
    parser.add_argument("--board", default="host", help="the board the tables speak for (default host)")
    parser.add_argument("--toolchain-version", help="the ONNX Runtime environment's version, recorded (default: the imported one)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.min_runs < 1 or args.max_runs < args.min_runs or args.budget_s <= 0 or not 0 <= args.percentile <= 100:
        parser.error("--threads and --min-runs must be ≥ 1, --max-runs ≥ --min-runs, --budget-s > 0 and --percentile within 0–100")
    if args.clock == "cpu" and args.threads != 1:
        parser.error(f"--clock cpu times the calling thread only, which computes alone with --threads 1, not {args.threads}; use --clock wall")
    with open(args.jobs) as file:
        jobs = json.load(file)
    import onnxruntime
    toolchain = "onnxruntime"
    failures = 0
    with open(args.kernels, "w", newline="") as kfile, open(args.models, "w", newline="") as mfile, \
            tempfile.TemporaryDirectory() as scratch:
        kernels = csv.DictWriter(kfile, KERNEL_COLUMNS, lineterminator="\n")
        models = csv.DictWriter(mfile, MODEL_COLUMNS, lineterminator="\n")
        kernels.writeheader()
        models.writeheader()
        for number, job in enumerate(jobs, start=1):
            try:
                latency_ms, kernel_ms, reorder_ms, blocked, unattributed_ms, runs = measure(job, args.threads, args.budget_s, args.min_runs,
                                                                        args.max_runs, args.percentile, args.clock, scratch)
            except Exception as error:  # one model's failure must not lose the others
                failures += 1
                print(f"[{number}/{len(jobs)}] {job['path']}: FAILED {error}", flush=True)
                continue
            for index, kernel in enumerate(job["kernels"]):
                kernels.writerow({**kernel_row(job, index, kernel), "latency_ms": f"{kernel_ms[index]:.6f}",
                                  "reorder_ms": f"{reorder_ms[index]:.6f}", "blocked": int(blocked[index])})
            models.writerow({"model": job["model"], "family": job.get("family") or "",
                             "synthetic": str(bool(job.get("synthetic"))).lower(),
                             **{f: job["features"][f] for f in FEATURES},
                             "latency_ms": f"{latency_ms:.6f}", "kernel_sum_ms": f"{kernel_ms.sum():.6f}",
                             "unattributed_ms": f"{unattributed_ms:.6f}", "runs": runs, "percentile": args.percentile, "clock": args.clock, "board": args.board,
                             "toolchain": toolchain, "toolchain_version": args.toolchain_version or onnxruntime.__version__,
                             "threads": args.threads, "file": job["path"]})
            kfile.flush()
            mfile.flush()
            print(f"[{number}/{len(jobs)}] {job['path']}: {latency_ms:.3f} ms end to end, kernels {kernel_ms.sum():.3f} ms "
                  f"({len(job['kernels'])} kernels, {unattributed_ms:.3f} ms unattributed, {runs} runs; "
                  f"onnxruntime {onnxruntime.__version__})", flush=True)
    return 1 if failures and failures == len(jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
