"""End-to-end tests of the Python toolchain scripts and runners.

Run with the interpreter of a toolchain environment, e.g.

    /path/to/env/bin/python -m pytest Plugins/tests

Tests of a runtime that is not importable are skipped, so each toolchain
environment tests its own plugin; the cross-runtime comparison runs where both
are installed. Every runtime is also checked against a numpy reference of the
sample model, so a single-runtime environment still verifies numbers.

The plugins are installed into a temporary folder the way the lab deploys them
(mlbench_runner.py beside runner.py and toolchain.py), and runners are driven
through their stdin/stdout exactly as the board plugins drive them.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_support import KIT, REPO, TIMEOUT_S, Runner, last_line, run_toolchain

np = pytest.importorskip("numpy")

MAKE_SAMPLE = REPO / "Examples" / "sample" / "make_sample.py"
TOLERANCE = 1e-4

TOOLCHAINS = {
    "onnxruntime": {"module": "onnxruntime", "target": "cpu"},
    "tvm": {"module": "tvm", "target": "llvm"},
    # The runner greets with the runtime's name: LiteRT runs what tflite builds.
    "tflite": {"module": "ai_edge_litert", "target": "cpu", "runtime": "litert"},
}


# -- helpers ----------------------------------------------------------------

def reference_outputs(model_path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """The sample model computed with numpy in float64, from the model's own weights."""
    import onnx
    from onnx import numpy_helper

    weights = {init.name: numpy_helper.to_array(init).astype(np.float64)
               for init in onnx.load(str(model_path)).graph.initializer}
    x = images.astype(np.float64)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    conv = np.einsum("nchwij,fcij->nfhw", windows, weights["conv.weight"])
    relu = np.maximum(conv + weights["conv.bias"][None, :, None, None], 0.0)
    n, f, h, w = relu.shape
    pooled = relu.reshape(n, f, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    logits = pooled.reshape(n, -1) @ weights["fc.weight"].T + weights["fc.bias"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {"logits": logits, "probabilities": exp / exp.sum(axis=1, keepdims=True)}


# -- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    directory = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, str(MAKE_SAMPLE), "--output", str(directory), "--samples", "8"],
                   check=True, capture_output=True, timeout=TIMEOUT_S)
    return directory


def install_plugin(name: str, folder: Path) -> Path:
    """The plugin's scripts and the kit in `folder`, as the lab stages them."""
    pytest.importorskip(TOOLCHAINS[name]["module"])
    folder.mkdir(parents=True, exist_ok=True)
    for script in (REPO / "Plugins" / name / "python").glob("*.py"):
        shutil.copy(script, folder)
    shutil.copy(KIT, folder)
    return folder


@pytest.fixture(scope="session", params=sorted(TOOLCHAINS))
def toolchain(request, tmp_path_factory) -> dict:
    """An installed plugin: its folder, name and default target."""
    name = request.param
    plugin = install_plugin(name, tmp_path_factory.mktemp(f"plugin-{name}"))
    return {"name": name, "plugin": plugin, "target": TOOLCHAINS[name]["target"], "builds": {}}


def build(toolchain: dict, model: Path, tmp_path_factory) -> Path:
    """The artifact of model, built once per session and toolchain."""
    if model not in toolchain["builds"]:
        out = tmp_path_factory.mktemp(f"build-{toolchain['name']}")
        status, result, stderr = run_toolchain(
            toolchain["plugin"], "build", "--model", str(model), "--target", toolchain["target"],
            "--options", "{}", "--output-dir", str(out))
        assert status == 0, stderr
        toolchain["builds"][model] = Path(result["artifact"])
    return toolchain["builds"][model]


def deploy(artifact: Path, sample: Path, directory: Path) -> str:
    """Copy the build output and the inputs into directory, as a board plugin does; the artifact's name."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in artifact.parent.iterdir():
        shutil.copy(file, directory)
    shutil.copy(sample / "inputs" / "image.npy", directory)
    return artifact.name


def outputs_of(toolchain: dict, model: Path, sample: Path, tmp_path: Path, tmp_path_factory) -> dict:
    """Outputs of every sample from the runner of toolchain, loaded from the written files."""
    deployment = tmp_path / f"deploy-{toolchain['name']}-{model.stem}"
    artifact = deploy(build(toolchain, model, tmp_path_factory), sample, deployment)
    with Runner(toolchain["plugin"] / "runner.py", deployment, tmp_path / "runner.err") as runner:
        assert runner.request(op="load", artifact=artifact, inputs={"image": "image.npy"})["ok"]
        reply = runner.request(op="outputs", directory="outputs")
        assert reply["ok"], reply
        assert runner.quit() == 0
    assert reply["order"] == ["logits", "probabilities"]
    return {name: np.load(deployment / "outputs" / file) for name, file in reply["outputs"].items()}


# -- toolchain scripts ------------------------------------------------------

def messages(result: dict) -> str:
    """Every finding's message of a check result, in one string."""
    return " | ".join(f if isinstance(f, str) else f["message"] for f in result["issues"])


def errors(result: dict) -> list[dict]:
    return [f for f in result["issues"] if isinstance(f, str) or f["severity"] == "error"]


def test_info(toolchain):
    status, result, _ = run_toolchain(toolchain["plugin"], "info")
    assert status == 0
    assert result["name"] == toolchain["name"]
    assert "onnx" in result["formats"]
    assert toolchain["target"] in result["targets"]
    assert result["version"]


def test_check_accepts_the_sample(toolchain, sample):
    status, result, stderr = run_toolchain(toolchain["plugin"], "check", "--model",
                                           str(sample / "model.onnx"), "--target", toolchain["target"])
    assert status == 0, stderr
    assert result["compatible"] is True and errors(result) == [], result
    assert result["needs_calibration_data"] is False
    # The sample's weights: two small layers, a few KiB, never zero.
    assert 1_000 < result["footprint"]["weights_bytes"] < 1_000_000
    assert result["footprint"]["activations_bytes"] > 0


def test_check_reports_garbage_missing_file_target_and_option(toolchain, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model\x00\x01\x02")
    status, result, _ = run_toolchain(toolchain["plugin"], "check", "--model", str(garbage),
                                      "--target", toolchain["target"])
    assert status == 0
    assert result["compatible"] is False
    assert "not a valid ONNX model" in messages(result), result

    status, result, _ = run_toolchain(toolchain["plugin"], "check", "--model", str(tmp_path / "no.onnx"),
                                      "--target", "quantum", "--options", '{"bogus": 1}')
    assert status == 0
    assert result["compatible"] is False
    issues = messages(result)
    assert "not found" in issues and "quantum" in issues and "'bogus'" in issues
    assert {f["code"] for f in errors(result)} >= {"model", "target", "option"}


def test_check_names_unsupported_ops(toolchain, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    status, result, _ = run_toolchain(toolchain["plugin"], "check", "--model", str(path),
                                      "--target", toolchain["target"])
    assert status == 0
    assert result["compatible"] is False
    unsupported = [f for f in errors(result) if f["code"] == "unsupported_operator"]
    # Custom-domain operators are named with their domain.
    assert unsupported and unsupported[0]["operator"].endswith("Frobnicate"), result


def test_build_rejects_garbage_and_bad_options(toolchain, sample, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model\x00\x01\x02")
    common = ["--target", toolchain["target"], "--output-dir", str(tmp_path / "out")]

    status, _, stderr = run_toolchain(toolchain["plugin"], "build", "--model", str(garbage), *common)
    assert status == 2
    assert "garbage.onnx" in last_line(stderr) or "ONNX" in last_line(stderr)

    model = str(sample / "model.onnx")
    status, _, stderr = run_toolchain(toolchain["plugin"], "build", "--model", model,
                                      "--options", '{"bogus": 1}', *common)
    assert status == 2
    assert "unknown option 'bogus'" in last_line(stderr)

    status, _, stderr = run_toolchain(toolchain["plugin"], "build", "--model", model,
                                      "--options", "{not json", *common)
    assert status == 2
    assert "--options" in last_line(stderr)

    status, _, stderr = run_toolchain(toolchain["plugin"], "build", "--model", model,
                                      "--target", "quantum", "--output-dir", str(tmp_path / "out"))
    assert status == 2
    assert "quantum" in last_line(stderr)


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_onnxruntime_levels_build_and_run(level, sample, tmp_path):
    plugin = install_plugin("onnxruntime", tmp_path / "plugin")
    status, result, stderr = run_toolchain(
        plugin, "build", "--model", str(sample / "model.onnx"), "--target", "cpu",
        "--options", json.dumps({"graph_optimization_level": level}), "--output-dir", str(tmp_path / "out"))
    assert status == 0, stderr
    effective = {"graph_optimization_level": level, "execution_provider": "CPUExecutionProvider"}
    assert result["effective_options"] == effective
    artifact = Path(result["artifact"])
    sidecar = json.loads((artifact.parent / (artifact.name + ".session.json")).read_text())
    assert sidecar == effective

    deployment = tmp_path / "deploy"
    name = deploy(artifact, sample, deployment)
    with Runner(plugin / "runner.py", deployment, tmp_path / "runner.err") as runner:
        assert runner.request(op="load", artifact=name, inputs={"image": "image.npy"})["ok"]
        reply = runner.request(op="outputs", directory="out")
        assert reply["ok"], reply
    expected = reference_outputs(sample / "model.onnx", np.load(sample / "inputs" / "image.npy"))
    for output, file in reply["outputs"].items():
        np.testing.assert_allclose(np.load(deployment / "out" / file), expected[output], atol=TOLERANCE, rtol=0)


# -- runners ----------------------------------------------------------------

def test_runner_session(toolchain, sample, tmp_path, tmp_path_factory):
    deployment = tmp_path / "deploy"
    artifact = deploy(build(toolchain, sample / "model.onnx", tmp_path_factory), sample, deployment)
    with Runner(toolchain["plugin"] / "runner.py", deployment, tmp_path / "runner.err") as runner:
        greeting = runner.greeting
        assert greeting["protocol_version"] == 1
        assert greeting["runtime"] == TOOLCHAINS[toolchain["name"]].get("runtime", toolchain["name"])
        assert greeting["runtime_version"]

        loaded = runner.request(op="load", artifact=artifact, inputs={"image": "image.npy"})
        assert loaded["ok"], loaded
        assert loaded["samples"] == 8
        assert isinstance(loaded["load_ns"], int) and loaded["load_ns"] > 0

        timings = runner.request(op="run", iterations=5, sample=7)
        assert timings["ok"], timings
        assert len(timings["starts_ns"]) == len(timings["durations_ns"]) == 5
        assert timings["starts_ns"] == sorted(timings["starts_ns"])
        assert all(isinstance(d, int) and d > 0 for d in timings["durations_ns"])
        assert timings["peak_memory_bytes"] > 1 << 20
        assert "canary_ns" not in timings, "the canary runs only when asked for"
        # Every runtime here can hold the inputs in its own memory: device placement is the default.
        assert timings["input_placement"] == "device" and timings["input_placement_detail"], timings
        hosted = runner.request(op="run", iterations=3, sample=1, placement="host")
        assert hosted["ok"] and hosted["input_placement"] == "host", hosted
        served = runner.request(op="server", arrivals_ns=[0, 1_000_000], placement="host")
        assert served["ok"] and served["input_placement"] == "host", served

        checked = runner.request(op="run", iterations=6, sample=0, canary=True)
        assert checked["ok"], checked
        assert len(checked["canary_ns"]) == len(checked["durations_ns"]) == 6
        assert all(isinstance(c, int) and c > 0 for c in checked["canary_ns"])

        written = runner.request(op="outputs", directory=str(tmp_path / "absolute" / "out"))
        assert written["ok"], written
        assert written["outputs"] == {"logits": "logits.npy", "probabilities": "probabilities.npy"}
        assert np.load(tmp_path / "absolute" / "out" / "logits.npy").shape == (8, 10)
        assert runner.quit() == 0


def test_runner_error_replies_keep_serving(toolchain, sample, tmp_path, tmp_path_factory):
    deployment = tmp_path / "deploy"
    artifact = deploy(build(toolchain, sample / "model.onnx", tmp_path_factory), sample, deployment)
    np.save(deployment / "wrong-dtype.npy", np.zeros((2, 3, 16, 16), dtype=np.float64))
    np.save(deployment / "wrong-shape.npy", np.zeros((2, 3, 8, 8), dtype=np.float32))

    def error_of(reply: dict) -> str:
        assert reply["ok"] is False and reply["error"], reply
        return reply["error"]

    with Runner(toolchain["plugin"] / "runner.py", deployment, tmp_path / "runner.err") as runner:
        assert "malformed JSON" in error_of(runner.send("{not json"))
        assert "JSON object" in error_of(runner.send("[1, 2]"))
        assert "unknown op" in error_of(runner.request(op="fly"))
        assert "no model loaded" in error_of(runner.request(op="run", iterations=1, sample=0))
        assert "missing.npy" in error_of(runner.request(op="load", artifact=artifact,
                                                        inputs={"image": "missing.npy"}))
        wrong_name = error_of(runner.request(op="load", artifact=artifact, inputs={"img": "image.npy"}))
        assert "'img'" in wrong_name and "'image'" in wrong_name
        assert "nothere" in error_of(runner.request(op="load", artifact="nothere.bin",
                                                    inputs={"image": "image.npy"}))
        assert "float64" in error_of(runner.request(op="load", artifact=artifact,
                                                    inputs={"image": "wrong-dtype.npy"}))
        assert "[1,3,16,16]" in error_of(runner.request(op="load", artifact=artifact,
                                                        inputs={"image": "wrong-shape.npy"}))
        # A failed load leaves nothing loaded.
        assert "no model loaded" in error_of(runner.request(op="run", iterations=1, sample=0))

        assert runner.request(op="load", artifact=artifact, inputs={"image": "image.npy"})["ok"]
        assert "out of range" in error_of(runner.request(op="run", iterations=1, sample=8))
        assert "iterations" in error_of(runner.request(op="run", iterations=0, sample=0))
        assert "iterations" in error_of(runner.request(op="run", iterations="3", sample=0))
        assert "directory" in error_of(runner.request(op="outputs"))
        assert "'placement'" in error_of(runner.request(op="run", iterations=1, sample=0, placement="gpu"))
        assert runner.request(op="run", iterations=2, sample=1)["ok"]
        assert runner.quit() == 0


def test_bad_thread_count_is_refused_at_load(toolchain, sample, tmp_path, tmp_path_factory, monkeypatch):
    deployment = tmp_path / "deploy"
    artifact = deploy(build(toolchain, sample / "model.onnx", tmp_path_factory), sample, deployment)
    monkeypatch.setenv("MLBENCH_THREADS", "two")
    with Runner(toolchain["plugin"] / "runner.py", deployment, tmp_path / "runner.err") as runner:
        refused = runner.request(op="load", artifact=artifact, inputs={"image": "image.npy"})
        assert refused["ok"] is False and "MLBENCH_THREADS must be a positive integer, got 'two'" in refused["error"]
        assert runner.quit() == 0


def test_scenario_ops_serve_schedules_and_run_offline(toolchain, sample, tmp_path, tmp_path_factory):
    deployment = tmp_path / "deploy"
    artifact = deploy(build(toolchain, sample / "model.onnx", tmp_path_factory), sample, deployment)
    with Runner(toolchain["plugin"] / "runner.py", deployment, tmp_path / "runner.err") as runner:
        assert runner.request(op="load", artifact=artifact, inputs={"image": "image.npy"})["ok"]
        # Queries 2 ms apart: each starts at its arrival, not before, and the schedule takes its time.
        arrivals = [i * 2_000_000 for i in range(20)]
        reply = runner.request(op="server", arrivals_ns=arrivals, sample=0)
        assert reply["ok"], reply
        assert len(reply["latencies_ns"]) == len(reply["durations_ns"]) == len(reply["waits_ns"]) == 20
        assert all(wait >= 0 for wait in reply["waits_ns"])
        assert all(latency >= duration for latency, duration in zip(reply["latencies_ns"], reply["durations_ns"]))
        for bad in ([], [5, 3], [-1], ["1"]):
            error = runner.request(op="server", arrivals_ns=bad)
            assert error["ok"] is False and "arrivals_ns" in error["error"], error
        reply = runner.request(op="offline", queries=24)
        assert reply["ok"], reply
        assert len(reply["durations_ns"]) == 24
        assert reply["total_ns"] >= sum(reply["durations_ns"])
        error = runner.request(op="offline", queries=0)
        assert error["ok"] is False and "queries" in error["error"]
        assert runner.quit() == 0


def test_outputs_match_reference(toolchain, sample, tmp_path, tmp_path_factory):
    actual = outputs_of(toolchain, sample / "model.onnx", sample, tmp_path, tmp_path_factory)
    expected = reference_outputs(sample / "model.onnx", np.load(sample / "inputs" / "image.npy"))
    for name in ("logits", "probabilities"):
        assert actual[name].shape == (8, 10)
        np.testing.assert_allclose(actual[name], expected[name], atol=TOLERANCE, rtol=0)


def test_perturbed_model_differs_clearly(toolchain, sample, tmp_path, tmp_path_factory):
    original = outputs_of(toolchain, sample / "model.onnx", sample, tmp_path, tmp_path_factory)
    perturbed = outputs_of(toolchain, sample / "model-perturbed.onnx", sample, tmp_path, tmp_path_factory)
    difference = np.abs(original["logits"] - perturbed["logits"])
    assert (difference > 1e-2).mean() > 0.8, difference
    assert np.abs(original["probabilities"] - perturbed["probabilities"]).max() > 0.05


def test_runtimes_agree(sample, tmp_path, tmp_path_factory):
    """Where both runtimes are installed, compare them directly, as the lab does."""
    for toolchain in TOOLCHAINS.values():
        pytest.importorskip(toolchain["module"])
    results = {}
    for name, spec in TOOLCHAINS.items():
        plugin = tmp_path / f"plugin-{name}"
        plugin.mkdir()
        for script in (REPO / "Plugins" / name / "python").glob("*.py"):
            shutil.copy(script, plugin)
        shutil.copy(KIT, plugin)
        installed = {"name": name, "plugin": plugin, "target": spec["target"], "builds": {}}
        results[name] = {model: outputs_of(installed, sample / model, sample, tmp_path / name, tmp_path_factory)
                         for model in ("model.onnx", "model-perturbed.onnx")}
    for model in ("model.onnx", "model-perturbed.onnx"):
        for output in ("logits", "probabilities"):
            np.testing.assert_allclose(results["tvm"][model][output], results["onnxruntime"][model][output],
                                       atol=TOLERANCE, rtol=0)
    assert np.abs(results["tvm"]["model-perturbed.onnx"]["logits"]
                  - results["onnxruntime"]["model.onnx"]["logits"]).max() > 0.5


# -- the runner kit with a fake backend (numpy only) ------------------------

@pytest.fixture(scope="module")
def kit():
    spec = importlib.util.spec_from_file_location("mlbench_runner_under_test", KIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeBackend:
    """Two inputs, outputs with awkward names; doubles 'a' and sums 'b'."""

    name = "fake"
    version = "1.0"

    def load(self, artifact_path):
        if artifact_path.endswith(".broken"):
            raise RuntimeError("cannot parse artifact")

    def input_names(self):
        return ["a", "b"]

    def output_names(self):
        return ["out/x:0", "OUT_X:0", "..hidden"]

    def input_specs(self):
        return {"a": ([1, 2], "float32"), "b": ([None, 3], None)}

    def infer(self, feeds):
        if feeds["a"][0, 0] < 0:
            raise ValueError("negative input")
        return [feeds["a"] * 2, feeds["b"].sum(axis=1, keepdims=True), np.float32(feeds["a"].sum())]


class SplittingBackend(FakeBackend):
    """A fake runtime that splits each inference into phases and has a vendor benchmark."""

    name = "splitting"

    def __init__(self):
        self.calls = 0

    def infer(self, feeds):
        self.calls += 1
        return super().infer(feeds)

    def last_phases_ns(self):
        return {"h2d": 10 * self.calls, "compute": 1000 + self.calls}

    def native_benchmark(self, artifact_path, seconds, threads):
        return {"tool": "fakebench", "artifact": artifact_path, "seconds": seconds, "threads": threads}


def serve_lines(kit, lines: list[str | bytes], backend=None) -> list[dict]:
    raw = b"".join(line if isinstance(line, bytes) else line.encode() + b"\n" for line in lines)
    replies = io.StringIO()
    assert kit.serve(backend or FakeBackend(), stdin=io.BytesIO(raw), stdout=replies) == 0
    return [json.loads(line) for line in replies.getvalue().splitlines()]


def test_kit_loads_checks_and_names_files(kit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.fake").write_text("")
    (tmp_path / "model.broken").write_text("")
    np.save("a.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.save("b.npy", np.ones((3, 3), dtype=np.int64))
    np.save("b4.npy", np.ones((4, 3), dtype=np.int64))
    np.save("a64.npy", np.zeros((3, 2)))
    np.save("neg.npy", -np.ones((3, 2), dtype=np.float32))
    load = lambda a, b, artifact="model.fake": json.dumps(  # noqa: E731
        {"op": "load", "artifact": artifact, "inputs": {"a": a, "b": b}})

    replies = serve_lines(kit, [
        "",  # blank lines are not requests
        b"\xff\xfe\n",
        json.dumps({"op": "load", "artifact": "model.fake", "inputs": {"a": "a.npy"}}),
        load("a.npy", "b4.npy"),
        load("a64.npy", "b.npy"),
        load("a.npy", "b.npy", artifact="model.broken"),
        load("neg.npy", "b.npy"),
        json.dumps({"op": "run", "iterations": 1, "sample": 0}),
        load("a.npy", "b.npy"),
        json.dumps({"op": "run", "iterations": 3, "sample": 2}),
        json.dumps({"op": "outputs", "directory": "out"}),
        json.dumps({"op": "quit"}),
        json.dumps({"op": "run", "iterations": 1}),  # never read: quit ends the session
    ])
    greeting, bad_utf8, missing, counts, dtype, broken, neg_load, neg_run, loaded, timings, outputs, quit_ = replies
    assert greeting == {"protocol_version": 1, "runtime": "fake", "runtime_version": "1.0"}
    assert "UTF-8" in bad_utf8["error"]
    assert "missing input(s) 'b'" in missing["error"]
    assert "different numbers of samples" in counts["error"]
    assert "float64" in dtype["error"] and "float32" in dtype["error"]
    assert "cannot parse artifact" in broken["error"]
    assert neg_load["ok"]
    assert neg_run["ok"] is False and "negative input" in neg_run["error"]
    assert loaded == {"ok": True, "samples": 3, "load_ns": loaded["load_ns"]}
    assert len(timings["durations_ns"]) == 3
    assert outputs["order"] == ["out/x:0", "OUT_X:0", "..hidden"]
    files = outputs["outputs"]
    assert files["out/x:0"] == "out_x_0.npy"
    assert files["OUT_X:0"] == "OUT_X_0_2.npy"  # unique even on a case-insensitive disk
    assert files["..hidden"] == "hidden.npy"
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "out_x_0.npy"),
                                  np.arange(6, dtype=np.float32).reshape(3, 2) * 2)
    assert np.load(tmp_path / "out" / "OUT_X_0_2.npy").shape == (3, 1)
    # A scalar per sample gets a new leading axis.
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "hidden.npy"), [1, 5, 9])
    assert quit_ == {"ok": True}


def test_kit_ends_on_end_of_input(kit):
    replies = serve_lines(kit, [json.dumps({"op": "outputs", "directory": "x"})])
    assert len(replies) == 2 and "no model loaded" in replies[1]["error"]


def test_kit_clock_is_the_clock_of_the_starts(kit, tmp_path, monkeypatch):
    """'clock' answers CLOCK_MONOTONIC (time.monotonic_ns), before any load too: the
    lab places probe series against it, and the starts of 'run' are on it."""
    import time
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.fake").write_text("")
    np.save("a.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.save("b.npy", np.ones((3, 3), dtype=np.int64))
    before = time.monotonic_ns()
    _, first, _, run, last = serve_lines(kit, [
        json.dumps({"op": "clock"}),
        json.dumps({"op": "load", "artifact": "model.fake", "inputs": {"a": "a.npy", "b": "b.npy"}}),
        json.dumps({"op": "run", "iterations": 2}), json.dumps({"op": "clock"})])
    after = time.monotonic_ns()
    assert first["ok"] and last["ok"]
    assert before <= first["now_ns"] <= run["starts_ns"][0] <= run["starts_ns"][1] <= last["now_ns"] <= after


def test_kit_reports_the_runtime_split_and_native_benchmark(kit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.fake").write_text("")
    np.save("a.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.save("b.npy", np.ones((3, 3), dtype=np.int64))
    load = json.dumps({"op": "load", "artifact": "model.fake", "inputs": {"a": "a.npy", "b": "b.npy"}})
    bench = json.dumps({"op": "native_benchmark", "seconds": 5, "threads": 2})
    _, early, _, run, benched, bad = serve_lines(kit, [
        bench, load, json.dumps({"op": "run", "iterations": 3}), bench,
        json.dumps({"op": "native_benchmark", "seconds": 0})], backend=SplittingBackend())
    assert "no model loaded" in early["error"]
    # One value per iteration and phase, in iteration order, beside the durations.
    assert run["phases_ns"] == {"h2d": [10, 20, 30], "compute": [1001, 1002, 1003]}
    assert len(run["durations_ns"]) == 3
    assert benched == {"ok": True, "tool": "fakebench", "artifact": "model.fake", "seconds": 5, "threads": 2}
    assert "'seconds' and 'threads' must be at least 1" in bad["error"]

    _, _, plain_run, no_bench = serve_lines(kit, [load, json.dumps({"op": "run", "iterations": 2}), bench])
    assert "phases_ns" not in plain_run
    assert "the fake runner has no native benchmark tool" in no_bench["error"]


class PlacingBackend(FakeBackend):
    """A fake runtime that can hold inputs in its own memory, except when told it has none."""

    name = "placing"
    device_memory = "the fake device"

    def __init__(self, has_device=True):
        self.has_device, self.placed, self.device_calls = has_device, [], 0

    def place_inputs(self, feeds):
        if not self.has_device:
            return None
        self.placed.append(feeds["a"].copy())

        def call():
            self.device_calls += 1
        return call


def test_kit_places_inputs_where_asked_and_says_where_they_were(kit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.fake").write_text("")
    np.save("a.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.save("b.npy", np.ones((3, 3), dtype=np.int64))
    load = json.dumps({"op": "load", "artifact": "model.fake", "inputs": {"a": "a.npy", "b": "b.npy"}})
    run = lambda **fields: json.dumps({"op": "run", "iterations": 4, **fields})  # noqa: E731

    placing = PlacingBackend()
    _, _, device, host, served = serve_lines(kit, [
        load, run(sample=2), run(placement="host"),
        json.dumps({"op": "server", "arrivals_ns": [0, 1000], "placement": "device"})], backend=placing)
    assert (device["input_placement"], device["input_placement_detail"]) == ("device", "the fake device")
    # The sample was placed once, and the timed calls ran on it: no host feeds per iteration.
    np.testing.assert_array_equal(placing.placed[0], [[4, 5]])
    assert placing.device_calls == 4 + 2
    assert (host["input_placement"], host["input_placement_detail"]) == ("host", "numpy arrays in, numpy arrays out")
    assert served["input_placement"] == "device"

    # Without device memory (no place_inputs, or none for this configuration) the runner
    # times from host memory and says why, rather than failing or pretending.
    for backend in (FakeBackend(), PlacingBackend(has_device=False)):
        _, _, fallback, bad = serve_lines(kit, [load, run(), run(placement="GPU")], backend=backend)
        assert fallback["ok"] and fallback["input_placement"] == "host", fallback
        assert "cannot place inputs in device memory" in fallback["input_placement_detail"]
        assert bad["ok"] is False and "'placement' must be \"device\" or \"host\"" in bad["error"]


# -- toolchain options ------------------------------------------------------

def test_onnxruntime_session_options_reach_the_runner(sample, tmp_path):
    plugin = install_plugin("onnxruntime", tmp_path / "plugin")
    options = {"graph_optimization_level": "basic", "intra_op_threads": 1,
               "execution_provider": "CPUExecutionProvider"}
    status, result, stderr = run_toolchain(plugin, "build", "--model", str(sample / "model.onnx"), "--target", "cpu",
                                           "--options", json.dumps(options), "--output-dir", str(tmp_path / "out"))
    assert status == 0, stderr
    assert result["effective_options"] == options
    artifact = Path(result["artifact"])
    assert json.loads((artifact.parent / (artifact.name + ".session.json")).read_text()) == options


def test_onnxruntime_rejects_unavailable_provider_and_bad_threads(sample, tmp_path):
    plugin = install_plugin("onnxruntime", tmp_path / "plugin")
    status, result, _ = run_toolchain(plugin, "check", "--model", str(sample / "model.onnx"), "--target", "cpu",
                                      "--options", json.dumps({"execution_provider": "WarpDriveExecutionProvider",
                                                               "intra_op_threads": 0}))
    assert status == 0 and result["compatible"] is False
    text = messages(result)
    assert "WarpDriveExecutionProvider" in text and "CPUExecutionProvider" in text  # names what is available
    assert "'intra_op_threads' must be a positive integer" in text


def test_tvm_threads_and_tuning_options(sample, tmp_path):
    plugin = install_plugin("tvm", tmp_path / "plugin")
    status, result, _ = run_toolchain(plugin, "check", "--model", str(sample / "model.onnx"), "--target", "llvm",
                                      "--options", json.dumps({"threads": 0, "tuning_trials": -1,
                                                               "tuning_trials_per_task": 4}))
    assert status == 0 and result["compatible"] is False
    text = messages(result)
    assert "'threads' must be an integer of at least 1" in text
    assert "'tuning_trials' must be an integer of at least 0" in text

    status, result, stderr = run_toolchain(plugin, "build", "--model", str(sample / "model.onnx"), "--target", "llvm",
                                           "--options", json.dumps({"opt_level": 2, "threads": 1}),
                                           "--output-dir", str(tmp_path / "out"))
    assert status == 0, stderr
    assert result["effective_options"] == {"opt_level": 2, "threads": 1, "tuning_trials": 0}
    artifact = Path(result["artifact"])
    assert json.loads((artifact.parent / (artifact.name + ".io.json")).read_text())["threads"] == 1


def test_peak_memory_is_the_runners_own_not_its_parents():
    """A runner started by a large process (a long campaign) reports its own
    peak: Linux's ru_maxrss keeps the parent's size across exec, VmHWM does not."""
    if not Path("/proc/self/status").exists():
        pytest.skip("no /proc: ru_maxrss is the only measure")
    ballast = bytearray(300 << 20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page so it is resident
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('k', {str(KIT)!r}); "
            "k = importlib.util.module_from_spec(spec); spec.loader.exec_module(k); print(k._peak_memory_bytes())")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    assert int(child.stdout) < 200 << 20, f"the child reports {int(child.stdout) >> 20} MiB, the parent's 300 MiB ballast"
    del ballast
