"""Tests of the TFLite/LiteRT toolchain beyond the shared ones in test_runners.py:
precisions, calibration, layout findings, and SavedModel and Keras sources.

Run with the tflite environment's packages on the path (scripts/test does);
skipped where ai-edge-litert or TensorFlow is not importable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_runners import (Runner, deploy, install_plugin, last_line, reference_outputs, run_toolchain,  # noqa: F401
                          sample)

np = pytest.importorskip("numpy")
pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return install_plugin("tflite", tmp_path_factory.mktemp("plugin-tflite"))


def build(plugin: Path, model: Path, out: Path, calibration: dict | None = None, **options) -> Path:
    extra = ["--calibration-inputs", json.dumps(calibration)] if calibration else []
    status, result, stderr = run_toolchain(plugin, "build", "--model", str(model), "--target", "cpu",
                                           "--options", json.dumps(options), "--output-dir", str(out), *extra)
    assert status == 0, stderr
    assert result["effective_options"]["precision"] == options.get("precision", "float32")
    assert result["effective_options"]["converter"]["ai-edge-litert"]
    # Only the model and its sidecar: the intermediate SavedModel is gone.
    assert sorted(p.name for p in out.iterdir()) == ["model.tflite", "model.tflite.io.json"]
    return Path(result["artifact"])


def run_outputs(plugin: Path, artifact: Path, inputs: dict[str, Path], deployment: Path) -> dict:
    deployment.mkdir(parents=True)
    for file in artifact.parent.iterdir():
        (deployment / file.name).write_bytes(file.read_bytes())
    for path in inputs.values():
        (deployment / path.name).write_bytes(path.read_bytes())
    with Runner(plugin / "runner.py", deployment, deployment / "runner.err") as runner:
        assert runner.greeting["runtime"] == "litert"
        reply = runner.request(op="load", artifact=artifact.name, inputs={k: v.name for k, v in inputs.items()})
        assert reply["ok"], reply
        timed = runner.request(op="run", iterations=5, sample=0)
        assert timed["ok"] and len(timed["durations_ns"]) == 5 and min(timed["durations_ns"]) > 0
        reply = runner.request(op="outputs", directory="outputs")
        assert reply["ok"], reply
        assert runner.quit() == 0
    return {name: np.load(deployment / "outputs" / file) for name, file in reply["outputs"].items()}


def test_check_reports_layout_conversion_and_calibration(plugin, sample):
    status, result, stderr = run_toolchain(plugin, "check", "--model", str(sample / "model.onnx"), "--target", "cpu",
                                           "--options", json.dumps({"precision": "int8"}))
    assert status == 0, stderr
    assert result["compatible"] is True
    assert result["needs_calibration_data"] is True
    layout = [f for f in result["issues"] if f["code"] == "layout_conversion"]
    assert layout and layout[0]["severity"] == "warning"
    assert "'image' [1,3,16,16]" in layout[0]["message"] and "Conv" in layout[0]["message"]


def test_check_names_a_standard_operator_onnx2tf_cannot_convert(plugin, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("BitwiseNot", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path = tmp_path / "bitwise.onnx"
    onnx.save(model, str(path))
    status, result, _ = run_toolchain(plugin, "check", "--model", str(path), "--target", "cpu")
    assert status == 0 and result["compatible"] is False
    [error] = [f for f in result["issues"] if f["severity"] == "error"]
    assert error["code"] == "unsupported_operator" and error["operator"] == "BitwiseNot"
    assert "onnx2tf" in error["message"]

    status, _, stderr = run_toolchain(plugin, "build", "--model", str(path), "--target", "cpu",
                                      "--output-dir", str(tmp_path / "out"))
    assert status == 2 and "BitwiseNot" in last_line(stderr)


def test_precisions_preserve_the_model_as_far_as_they_can(plugin, sample, tmp_path):
    images = sample / "inputs" / "image.npy"
    expected = reference_outputs(sample / "model.onnx", np.load(images))
    errors = {}
    for precision in ("float32", "float16", "int8"):
        artifact = build(plugin, sample / "model.onnx", tmp_path / f"out-{precision}",
                         calibration={"image": str(images)}, precision=precision)
        outputs = run_outputs(plugin, artifact, {"image": images}, tmp_path / f"deploy-{precision}")
        assert sorted(outputs) == ["logits", "probabilities"]  # the ONNX names, not output_0/output_1
        assert outputs["logits"].shape == expected["logits"].shape
        errors[precision] = float(np.abs(outputs["logits"] - expected["logits"]).max())
        # Every precision still ranks the classes almost alike.
        agree = np.mean(outputs["logits"].argmax(axis=-1) == expected["logits"].argmax(axis=-1))
        assert agree >= 0.75, (precision, agree)
    assert errors["float32"] < 1e-4, errors
    assert errors["float16"] < 2e-2, errors
    # int8 really is quantized: visibly off, yet within a coarse bound.
    assert 1e-3 < errors["int8"] < 1.0, errors
    assert errors["float32"] < errors["float16"] < errors["int8"], errors


def test_int8_needs_calibration_inputs_and_says_so(plugin, sample, tmp_path):
    status, _, stderr = run_toolchain(plugin, "build", "--model", str(sample / "model.onnx"), "--target", "cpu",
                                      "--options", json.dumps({"precision": "int8"}),
                                      "--output-dir", str(tmp_path / "out"))
    assert status == 2
    assert "int8 needs calibration data" in last_line(stderr)

    status, _, stderr = run_toolchain(plugin, "build", "--model", str(sample / "model.onnx"), "--target", "cpu",
                                      "--options", json.dumps({"precision": "int8"}), "--output-dir",
                                      str(tmp_path / "out"), "--calibration-inputs",
                                      json.dumps({"image": str(tmp_path / "missing.npy")}))
    assert status == 2
    assert "missing.npy" in last_line(stderr)


def test_rejects_unknown_formats_and_options(plugin, tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"\x80\x02not a model")
    status, result, _ = run_toolchain(plugin, "check", "--model", str(model), "--target", "cpu",
                                      "--options", json.dumps({"precision": "int4", "threads": 0}))
    assert status == 0 and result["compatible"] is False
    codes = {f["code"] for f in result["issues"]}
    assert {"unsupported_format", "option"} <= codes
    text = " ".join(f["message"] for f in result["issues"])
    assert "int4" in text and "'threads'" in text and "model.pt" in text


def test_keras_and_savedmodel_sources(plugin, tmp_path):
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    inputs = keras.Input(shape=(6,), name="features", batch_size=1)
    outputs = keras.layers.Dense(3, name="scores")(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    keras_file = tmp_path / "model.keras"
    model.save(keras_file)
    saved_model = tmp_path / "saved"
    model.export(str(saved_model), format="tf_saved_model")
    features = np.random.default_rng(3).normal(size=(4, 1, 6)).astype(np.float32)
    data = tmp_path / "features.npy"
    np.save(data, features.reshape(4, 6))
    expected = model.predict(features.reshape(4, 6), verbose=0)

    for source in (keras_file, saved_model):
        artifact = build(plugin, source, tmp_path / f"out-{source.name}")
        io = json.loads((artifact.parent / "model.tflite.io.json").read_text())
        [entry] = io["inputs"]
        outputs = run_outputs(plugin, artifact, {entry["name"]: data}, tmp_path / f"deploy-{source.name}")
        [values] = outputs.values()
        np.testing.assert_allclose(values.reshape(4, 3), expected, atol=1e-5)
    assert tf.__version__
