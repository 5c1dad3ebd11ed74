#!/usr/bin/env python3
"""Timing overhead of the mlbench runner against TVM's own timer, on the sample model.

What it measures
    The runner (Plugins/tvm/python/runner.py with the shared kit
    mlbench_runner.py) times each iteration of a `run` request with
    time.perf_counter_ns() around one Python call of the Relax VM's "main"
    function. TVM's time_evaluator times the same function on the same input
    from C++, with no Python in the loop. The difference of the two per-call
    times is the runner's timing overhead per iteration (the Python call into
    TVM, the wrapping of the returned tensor, the clock reads and the loop).
    Goal (project issue): overhead <= max(1 us, 1 % of the runtime's time).

    Steps: build Examples/sample/model.onnx with the TVM toolchain.py (target
    `llvm -mcpu=native`, opt_level 3, as Examples/sample/experiment.yaml) into a
    temporary folder; deploy the build output and inputs/image.npy into a
    temporary deployment folder; start runner.py as a subprocess speaking the
    JSON-lines protocol; load; warm up; then alternate: one runner block
    (`run`, sample 0, no canary) and one time_evaluator call in this process
    (the same artifact, VM function "main", the same sample-0 tensor), so that
    machine drift (frequency, thermal, other load) hits both equally.

How to run
    With the TVM toolchain environment's interpreter (column 4 of the `tvm` row
    of `mlbench toolchains list`; scripts/setup installs it):

        PY=$(MLBENCH_HOME=$PWD/.mlbench .build/debug/mlbench toolchains list \\
             | awk '$1 == "tvm" { print $4 }')
        "$PY" Benchmarks/overhead.py            # about 10 s, most of it the build

    Options: --blocks, --iterations (per runner block), --warmup,
    --repeat-seconds (target length of one time_evaluator repeat),
    --threads (TVM thread pool size, applied to both sides alike),
    --plugin-dir (a staged plugin folder such as
    .build/debug/mlbench-plugins/tvm/python; by default the plugin is
    installed from the sources into a temporary folder, as the tests do).

How to read it
    "runner" rows are the per-iteration durations the runner reported, pooled
    over all blocks; "evaluator" rows are time_evaluator's per-repeat means
    (each repeat = `number` back-to-back calls, divided by `number`).
    Four comparisons are printed, each with its own PASS/MISS:
      paired : median over rounds of (runner block mean - the evaluator repeat
               mean of the same round). Like for like (means over calls) and
               drift cancels within a round: the headline figure.
      mean   : runner mean of all iterations  - evaluator mean over all calls.
               Like for like, but only as drift-free as the alternation.
      median : runner median of iterations    - evaluator median of repeat means.
               Robust to outliers in the runner's blocks, but a per-iteration
               median sits below a mean when the distribution is right-skewed,
               so it can understate the overhead (even come out negative).
      blocks : median of the runner's block means - evaluator median of
               repeat means (like for like, robust to one odd block).
    goal = max(1 us, 1 % of the evaluator statistic in that row). The per-round
    lines and paired differences show how steady the machine was: when the
    per-call time jumps between levels (seen on shared VMs: ~16 vs ~20 us for
    the sample), the spread of the paired differences, not their median, tells
    how far the verdict can be trusted.
    A MISS is a finding, not a failure: the script exits 0 whenever it
    measured, 1 if a measurement step failed, 2 if the TVM environment or the
    sample is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "Examples" / "sample"
MODEL = SAMPLE / "model.onnx"
INPUTS = SAMPLE / "inputs" / "image.npy"
INPUT_NAME = "image"
PLUGIN_SOURCES = REPO / "Plugins" / "tvm" / "python"
KIT = REPO / "Sources" / "MLBenchPluginKit" / "python" / "mlbench_runner.py"
sys.path.insert(0, str(KIT.parent))
from mlbench_runner_client import RunnerClientError, RunnerProcess  # noqa: E402
TARGET = "llvm -mcpu=native"
OPTIONS = {"opt_level": 3}
TIMEOUT_S = 300
GOAL_ABS_US = 1.0
GOAL_REL = 0.01


def die(message: str, code: int) -> None:
    sys.stderr.write(f"overhead.py: {message}\n")
    raise SystemExit(code)


def setup_hint() -> str:
    return ("run scripts/setup, then run this script with the TVM environment's python: "
            "column 4 of the 'tvm' row of `MLBENCH_HOME=$PWD/.mlbench .build/debug/mlbench "
            "toolchains list`")


def check_environment(plugin_dir: Path | None) -> None:
    """Exit 2 with a clear message if the sample, the plugin or TVM is missing."""
    for path in (MODEL, INPUTS):
        if not path.is_file():
            die(f"the sample file '{path}' is missing; {setup_hint()}", 2)
    needed = ([plugin_dir / name for name in ("runner.py", "toolchain.py", "mlbench_runner.py")]
              if plugin_dir else [PLUGIN_SOURCES / "runner.py", PLUGIN_SOURCES / "toolchain.py", KIT])
    for path in needed:
        if not path.is_file():
            die(f"the plugin file '{path}' is missing", 2)
    try:
        import numpy  # noqa: F401
        import tvm  # noqa: F401
        from tvm import relax  # noqa: F401
    except ImportError as error:
        guesses = sorted((REPO / ".mlbench" / "toolchains" / "tvm").glob("*/venv/bin/python"))
        guess = f" (e.g. {guesses[-1]} {sys.argv[0]})" if guesses else ""
        die(f"TVM is not importable by {sys.executable} ({error}); {setup_hint()}{guess}", 2)


# -- the toolchain and the runner, through their command line and protocol ---

def install_plugin(directory: Path) -> Path:
    """The plugin as deployed: runner.py and toolchain.py with mlbench_runner.py beside them."""
    directory.mkdir(parents=True)
    for name in ("runner.py", "toolchain.py"):
        shutil.copy(PLUGIN_SOURCES / name, directory)
    shutil.copy(KIT, directory)
    return directory


def build(plugin: Path, output_dir: Path) -> Path:
    """toolchain.py build of the sample model; the artifact's path."""
    command = [sys.executable, str(plugin / "toolchain.py"), "build", "--model", str(MODEL),
               "--target", TARGET, "--options", json.dumps(OPTIONS), "--output-dir", str(output_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or len(lines) != 1:
        die(f"toolchain.py build failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}", 1)
    return Path(json.loads(lines[0])["artifact"])


def deploy(artifact: Path, directory: Path) -> str:
    """Copy the build output and the inputs into directory, as a board plugin does; the artifact's name."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in artifact.parent.iterdir():
        shutil.copy(file, directory)
    shutil.copy(INPUTS, directory)
    return artifact.name


class Runner(RunnerProcess):
    """The kit's runner client; a refusal or a silent runner ends the benchmark."""

    def __init__(self, script: Path, cwd: Path, stderr_path: Path, env: dict) -> None:
        try:
            super().__init__(script, cwd, stderr_path, env=env, timeout_s=TIMEOUT_S)
        except RunnerClientError as error:
            die(str(error), 1)

    def request(self, **fields) -> dict:
        try:
            reply = super().request(**fields)
        except RunnerClientError as error:
            die(str(error), 1)
        if not reply.get("ok"):
            die(f"the runner refused {fields.get('op')}: {reply.get('error')}", 1)
        return reply

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.quit()
            except (SystemExit, OSError, RunnerClientError, subprocess.TimeoutExpired):
                pass
        super().close()


# -- TVM's own timer, in this process ----------------------------------------

class Evaluator:
    """The artifact loaded as runner.py's backend loads it, timed by VM.time_evaluator("main")."""

    def __init__(self, artifact: Path) -> None:
        import numpy as np
        import tvm
        from tvm import relax

        self.device = tvm.cpu()
        self.machine = relax.VirtualMachine(tvm.runtime.load_module(str(artifact)), self.device)
        to_tensor = getattr(tvm.runtime, "tensor", None) or tvm.nd.array
        # Sample 0, sliced as the runner kit does (a batch of one, contiguous).
        sample = np.ascontiguousarray(np.load(INPUTS)[0:1])
        self.arguments = [to_tensor(sample, self.device)]
        self.number = 1

    def calibrate(self, repeat_seconds: float) -> float:
        """Choose number so that one repeat lasts about repeat_seconds; the per-call estimate (s)."""
        per_call = self.time(number=100, repeat=1)[0]
        self.number = max(1, round(repeat_seconds / max(per_call, 1e-9)))
        return per_call

    def time(self, number: int | None = None, repeat: int = 1) -> list[float]:
        """Per-call mean (s) of each repeat of `number` calls."""
        timer = self.machine.time_evaluator("main", self.device, number=number or self.number,
                                            repeat=repeat)
        return [float(t) for t in timer(*self.arguments).results]


# -- statistics and the report -----------------------------------------------

def us(seconds: float) -> float:
    return seconds * 1e6


def verdict(runner_s: float, evaluator_s: float) -> tuple[float, float, float, str]:
    overhead = runner_s - evaluator_s
    goal = max(GOAL_ABS_US * 1e-6, GOAL_REL * evaluator_s)
    return overhead, 100.0 * overhead / evaluator_s, goal, "PASS" if overhead <= goal else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=12, help="alternation rounds (default 12)")
    parser.add_argument("--iterations", type=int, default=5000,
                        help="runner iterations per block (default 5000, about as long as a repeat)")
    parser.add_argument("--warmup", type=int, default=500, help="runner warm-up iterations")
    parser.add_argument("--evaluator-repeats", type=int, default=1,
                        help="time_evaluator repeats per round (default 1)")
    parser.add_argument("--repeat-seconds", type=float, default=0.1,
                        help="target duration of one time_evaluator repeat (default 0.1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="TVM thread pool size for both sides (default: TVM's own choice)")
    parser.add_argument("--plugin-dir", type=Path, default=None,
                        help="a staged plugin folder to use instead of installing the sources")
    args = parser.parse_args()
    if min(args.blocks, args.iterations, args.evaluator_repeats) < 1 or args.warmup < 0:
        parser.error("--blocks, --iterations and --evaluator-repeats must be >= 1, --warmup >= 0")

    env = dict(os.environ)
    if args.threads is not None:
        # Before tvm is imported here; the runner maps MLBENCH_THREADS to TVM_NUM_THREADS.
        os.environ["TVM_NUM_THREADS"] = env["TVM_NUM_THREADS"] = str(args.threads)
        env["MLBENCH_THREADS"] = str(args.threads)
    check_environment(args.plugin_dir)
    import numpy as np
    import tvm

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlbench-overhead-") as temporary:
        root = Path(temporary)
        plugin = args.plugin_dir.resolve() if args.plugin_dir else install_plugin(root / "plugin")
        print(f"building {MODEL.relative_to(REPO)} with {plugin / 'toolchain.py'} "
              f"(target '{TARGET}', options {json.dumps(OPTIONS)})", flush=True)
        artifact = build(plugin, root / "build")
        deployment = root / "deployment"
        name = deploy(artifact, deployment)

        runner = Runner(plugin / "runner.py", deployment, root / "runner.err", env)
        try:
            loaded = runner.request(op="load", artifact=name, inputs={INPUT_NAME: INPUTS.name})
            runner.request(op="run", iterations=max(1, args.warmup), sample=0, canary=False)

            evaluator = Evaluator(deployment / name)
            evaluator.time(number=200, repeat=1)  # warm-up of this process's VM and thread pool
            estimate = evaluator.calibrate(args.repeat_seconds)
            print(f"runner: {runner.greeting.get('runtime')} {runner.greeting.get('runtime_version')}, "
                  f"{loaded['samples']} samples loaded; evaluator estimate {us(estimate):.2f} us/call, "
                  f"number={evaluator.number}", flush=True)

            runner_blocks: list[list[float]] = []
            evaluator_repeats: list[float] = []
            for block in range(args.blocks):
                reply = runner.request(op="run", iterations=args.iterations, sample=0, canary=False)
                runner_blocks.append([ns * 1e-9 for ns in reply["durations_ns"]])
                evaluator_repeats.extend(evaluator.time(repeat=args.evaluator_repeats))
                print(f"  round {block + 1:>2}/{args.blocks}: runner block median "
                      f"{us(statistics.median(runner_blocks[-1])):.3f} us, mean "
                      f"{us(statistics.fmean(runner_blocks[-1])):.3f} us; evaluator repeat(s) "
                      + ", ".join(f"{us(t):.3f}" for t in evaluator_repeats[-args.evaluator_repeats:])
                      + " us", flush=True)
        finally:
            runner.close()

    durations = np.array([d for block in runner_blocks for d in block])
    block_means = [statistics.fmean(block) for block in runner_blocks]
    # Each runner block against the evaluator repeat(s) right after it: drift slower
    # than a round cancels in the difference.
    k = args.evaluator_repeats
    paired = [mean - statistics.fmean(evaluator_repeats[i * k:(i + 1) * k])
              for i, mean in enumerate(block_means)]
    repeats = np.array(evaluator_repeats)
    r_mean, r_median = float(durations.mean()), float(np.median(durations))
    e_mean, e_median, e_min = float(repeats.mean()), float(np.median(repeats)), float(repeats.min())

    print()
    print(f"TVM {tvm.__version__}, {sys.executable}")
    print(f"alternated {args.blocks} rounds of [runner block of {args.iterations} iterations, "
          f"time_evaluator x{args.evaluator_repeats} repeats of number={evaluator.number}] "
          f"so that drift affects both equally; runner warm-up {args.warmup} iterations; "
          f"threads: {args.threads or 'TVM default'}")
    print()
    print(f"{'runner per iteration':<34}{'us':>10}    {'time_evaluator per call':<36}{'us':>10}")
    print(f"{'  median of ' + str(durations.size) + ' iterations':<34}{us(r_median):>10.3f}    "
          f"{'  median of ' + str(repeats.size) + ' repeat means':<36}{us(e_median):>10.3f}")
    print(f"{'  mean':<34}{us(r_mean):>10.3f}    {'  mean (all calls)':<36}{us(e_mean):>10.3f}")
    print(f"{'  median of ' + str(len(block_means)) + ' block means':<34}"
          f"{us(statistics.median(block_means)):>10.3f}    {'  min of repeat means':<36}{us(e_min):>10.3f}")
    print(f"{'  min / p10 / p90 / max':<34}"
          f"{us(durations.min()):.2f} / {us(np.percentile(durations, 10)):.2f} / "
          f"{us(np.percentile(durations, 90)):.2f} / {us(durations.max()):.2f}")
    print()
    print(f"{'comparison (runner - evaluator)':<58}{'overhead us':>12}{'%':>9}{'goal us':>10}  verdict")
    paired_median = statistics.median(paired)
    rows = [
        ("paired: median over rounds of (block mean - repeat mean)",
         e_median + paired_median, e_median),
        ("mean: runner mean - evaluator mean", r_mean, e_mean),
        ("median: runner median - evaluator median of repeats", r_median, e_median),
        ("blocks: median block mean - evaluator median", statistics.median(block_means), e_median),
    ]
    for label, runner_s, evaluator_s in rows:
        overhead, percent, goal, word = verdict(runner_s, evaluator_s)
        print(f"{label:<58}{us(overhead):>12.3f}{percent:>8.2f}%{us(goal):>10.3f}  {word}")
    print(f"paired differences per round (us): " + ", ".join(f"{us(d):+.2f}" for d in paired))
    print()
    print(f"goal: overhead <= max({GOAL_ABS_US:g} us, {GOAL_REL:.0%} of the evaluator statistic); "
          f"a MISS is a finding. Wall time {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
