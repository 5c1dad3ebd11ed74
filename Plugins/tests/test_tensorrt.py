"""The TensorRT plugin without a GPU: options, trtexec's command lines, the parsing
of what trtexec prints, and the toolchain script's answers where TensorRT is absent.

The trtexec texts below reproduce the formats of TensorRT's own sources: the
banner of trtexec.cpp ("&&&& RUNNING TensorRT.trtexec [TensorRT v100200]"), the
"=== Build Options ===" block, and printEpilog/exportJSONTrace of
samples/common/sampleReporting.cpp (TensorRT 8.6 and 10.x), as they appear in
logs posted on NVIDIA/TensorRT issues; the numbers are made up.
"""

from __future__ import annotations

import json
import shutil

import pytest

import plugin_support as support

np = pytest.importorskip("numpy")
trtexec = support.module("tensorrt", "trtexec")

SUMMARY = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v100200] [b1] # trtexec --loadEngine=model.engine --percentile=90,95,99
[03/04/2026-10:00:00] [I] === Model Options ===
[03/04/2026-10:00:00] [I] Format: *
[03/04/2026-10:00:00] [I] TensorRT version: 10.2.0
[03/04/2026-10:00:05] [I] === Trace details ===
[03/04/2026-10:00:05] [I] Average on 10 runs - GPU latency: 2.1 ms - Host latency: 2.4 ms (enqueue 0.3 ms)
[03/04/2026-10:00:05] [I]
[03/04/2026-10:00:05] [I] === Performance summary ===
[03/04/2026-10:00:05] [I] Throughput: 412.5 qps
[03/04/2026-10:00:05] [I] Latency: min = 2.25 ms, max = 3.5 ms, mean = 2.41 ms, median = 2.4 ms, percentile(90%) = 2.5 ms, percentile(95%) = 2.6 ms, percentile(99%) = 3.1 ms
[03/04/2026-10:00:05] [I] Enqueue Time: min = 0.2 ms, max = 0.9 ms, mean = 0.31 ms, median = 0.3 ms, percentile(90%) = 0.4 ms, percentile(95%) = 0.5 ms, percentile(99%) = 0.8 ms
[03/04/2026-10:00:05] [I] H2D Latency: min = 0.0065918 ms, max = 0.07 ms, mean = 0.012 ms, median = 0.008 ms, percentile(90%) = 0.025 ms, percentile(95%) = 0.027 ms, percentile(99%) = 0.05 ms
[03/04/2026-10:00:05] [I] GPU Compute Time: min = 2.2 ms, max = 3.4 ms, mean = 2.38 ms, median = 2.37 ms, percentile(90%) = 2.45 ms, percentile(95%) = 2.55 ms, percentile(99%) = 3.0 ms
[03/04/2026-10:00:05] [I] D2H Latency: min = 0.0039 ms, max = 0.11 ms, mean = 0.01 ms, median = 0.0044 ms, percentile(90%) = 0.025 ms, percentile(95%) = 0.03 ms, percentile(99%) = 0.099 ms
[03/04/2026-10:00:05] [I] Total Host Walltime: 3.00082 s
[03/04/2026-10:00:05] [I] Total GPU Compute Time: 2.96536 s
[03/04/2026-10:00:05] [W] * GPU compute time is unstable, with coefficient of variance = 2.1%.
[03/04/2026-10:00:05] [I] Explanations of the performance metrics are printed in the verbose logs.
&&&& PASSED TensorRT.trtexec [TensorRT v100200] [b1] # trtexec --loadEngine=model.engine
"""

BUILD_LOG = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec --onnx=model.onnx --int8
[01/10/2026-21:52:50] [I] === Model Options ===
[01/10/2026-21:52:50] [I] Format: ONNX
[01/10/2026-21:52:50] [I] Model: model.onnx
[01/10/2026-21:52:50] [I] === Build Options ===
[01/10/2026-21:52:50] [I] Max batch: explicit batch
[01/10/2026-21:52:50] [I] Memory Pools: workspace: default, dlaSRAM: default, dlaLocalDRAM: default, dlaGlobalDRAM: default
[01/10/2026-21:52:50] [I] minTiming: 1
[01/10/2026-21:52:50] [I] avgTiming: 8
[01/10/2026-21:52:50] [I] Precision: FP32+INT8
[01/10/2026-21:52:50] [I] Calibration: Dynamic
[01/10/2026-21:52:50] [I] Builder Optimization Level: 3
[01/10/2026-21:52:50] [I] === System Options ===
[01/10/2026-21:52:50] [I] Device: 0
[01/10/2026-21:52:51] [E] Error[4]: [network.cpp::validate::3062] Error Code 4: Internal Error (int8 not supported)
[01/10/2026-21:52:51] [E] Engine could not be created from network
&&&& FAILED TensorRT.trtexec [TensorRT v8601] # trtexec --onnx=model.onnx --int8
"""


@pytest.mark.parametrize("text, version", [
    (SUMMARY, "10.2.0"),  # the "TensorRT version:" line wins
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v100200] # trtexec", "10.2.0"),
    ("&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec", "8.6.1"),
    ("&&&& PASSED TensorRT.trtexec [TensorRT v101600] # trtexec", "10.16.0"),
    # TensorRT 8.0 on a Jetson Nano printed the version line as its integer.
    ("[04/14/2026-01:36:48] [I] TensorRT version: 8001", "8.0.1"),
    ("no banner at all", None),
])
def test_version_from_banner_and_version_line(text, version):
    assert trtexec.parse_version(text) == version


def test_performance_summary_keeps_tensorrts_split():
    summary = trtexec.parse_performance_summary(SUMMARY)
    assert summary["throughput_qps"] == 412.5
    assert summary["latency_ms"] == {"min": 2.25, "max": 3.5, "mean": 2.41, "median": 2.4,
                                     "p90": 2.5, "p95": 2.6, "p99": 3.1}
    assert summary["h2d_latency_ms"]["min"] == pytest.approx(0.0065918)
    assert summary["gpu_compute_time_ms"]["median"] == 2.37
    assert summary["d2h_latency_ms"]["p99"] == 0.099
    assert summary["enqueue_time_ms"]["max"] == 0.9
    assert summary["total_host_walltime_s"] == 3.00082
    assert summary["total_gpu_compute_time_s"] == 2.96536
    # Lines of other blocks ("Average on 10 runs") are not taken for the summary.
    assert set(summary) == {"throughput_qps", "latency_ms", "enqueue_time_ms", "h2d_latency_ms",
                            "gpu_compute_time_ms", "d2h_latency_ms", "total_host_walltime_s",
                            "total_gpu_compute_time_s"}


def test_performance_summary_with_a_single_percentile_and_without_timestamps():
    # TensorRT 8.4 printed one percentile; a log may lose its timestamps when piped.
    text = "\n".join([
        "[I] === Performance summary ===",
        "[I] Throughput: 716.632 qps",
        *(f"[I] {name}: min = 1 ms, max = 2 ms, mean = 1.5 ms, median = 1.4 ms, percentile(99%) = 1.9 ms"
          for name in ("Latency", "Enqueue Time", "H2D Latency", "GPU Compute Time", "D2H Latency")),
    ])
    summary = trtexec.parse_performance_summary(text)
    assert summary["gpu_compute_time_ms"] == {"min": 1.0, "max": 2.0, "mean": 1.5, "median": 1.4, "p99": 1.9}


def test_performance_summary_missing_or_incomplete_is_an_error():
    with pytest.raises(ValueError, match="no '=== Performance summary ===' block"):
        trtexec.parse_performance_summary(BUILD_LOG)
    cut = SUMMARY.split("[03/04/2026-10:00:05] [I] D2H Latency")[0]
    with pytest.raises(ValueError, match="lacks d2h_latency_ms"):
        trtexec.parse_performance_summary(cut)


def test_build_options_record_the_settings_in_effect_and_errors_say_why():
    options = trtexec.parse_build_options(BUILD_LOG)
    assert options["Precision"] == "FP32+INT8"
    assert options["Calibration"] == "Dynamic"
    assert options["Builder Optimization Level"] == "3"
    assert options["Memory Pools"].startswith("workspace: default")
    assert "Device" not in options and "Format" not in options  # other blocks
    assert trtexec.error_lines(BUILD_LOG) == [
        "Error[4]: [network.cpp::validate::3062] Error Code 4: Internal Error (int8 not supported)",
        "Engine could not be created from network"]


def export_times(records: list[dict]) -> str:
    """The file exportJSONTrace writes: '[' then one '{ ... }' per line, separated by ', '."""
    body = "\n, ".join("{ " + ", ".join(f'"{k}" : {v}' for k, v in r.items()) + " }" for r in records)
    return "[\n  " + body + "\n]\n"


def test_export_times_per_iteration_in_both_formats():
    current = export_times([
        {"startEnqMs": 1.0, "endEnqMs": 1.2, "startH2dMs": 1.2, "endH2dMs": 1.25, "startComputeMs": 1.25,
         "endComputeMs": 3.25, "startD2hMs": 3.25, "endD2hMs": 3.3, "h2dMs": 0.05, "computeMs": 2.0,
         "d2hMs": 0.05, "latencyMs": 2.1},
        {"startEnqMs": 3.3, "endEnqMs": 3.5, "startH2dMs": 3.5, "endH2dMs": 3.56, "startComputeMs": 3.56,
         "endComputeMs": 5.76, "startD2hMs": 5.76, "endD2hMs": 5.8, "h2dMs": 0.06, "computeMs": 2.2,
         "d2hMs": 0.04, "latencyMs": 2.3}])
    iterations = trtexec.parse_export_times(current)
    assert [i["compute_ms"] for i in iterations] == [2.0, 2.2]
    assert iterations[1]["h2d_ms"] == 0.06 and iterations[1]["enqueue_start_ms"] == 3.3
    assert trtexec.split_from_times(iterations) == {"h2d": [50000, 60000], "compute": [2000000, 2200000],
                                                     "d2h": [50000, 40000]}
    # TensorRT 7 named the copies "in" and "out" and had no enqueue stamps.
    old = export_times([{"startInMs": 0.1, "endInMs": 0.2, "startComputeMs": 0.2, "endComputeMs": 1.2,
                         "startOutMs": 1.2, "endOutMs": 1.3, "inMs": 0.1, "computeMs": 1.0, "outMs": 0.1,
                         "latencyMs": 1.2, "endToEndMs": 1.2}])
    assert trtexec.parse_export_times(old) == [{"h2d_ms": 0.1, "compute_ms": 1.0, "d2h_ms": 0.1,
                                                "latency_ms": 1.2, "compute_start_ms": 0.2}]
    with pytest.raises(ValueError, match="iteration 0 .* has no 'computeMs'"):
        trtexec.parse_export_times('[ { "count" : 10 } ]')  # an --exportProfile file, not times
    with pytest.raises(ValueError, match="not a trtexec --exportTimes file"):
        trtexec.parse_export_times("{}")


def test_build_and_benchmark_command_lines():
    effective, problems = trtexec.option_problems({"precision": "fp16", "workspace_mib": 512,
                                                  "builder_optimization_level": 5})
    assert problems == []
    assert trtexec.build_command("trtexec", "/m/model.onnx", "/o/model.engine", effective,
                                 timing_cache="/o/timing.cache") == [
        "trtexec", "--onnx=/m/model.onnx", "--saveEngine=/o/model.engine", "--skipInference", "--fp16",
        "--memPoolSize=workspace:512", "--builderOptimizationLevel=5", "--timingCacheFile=/o/timing.cache"]
    int8, _ = trtexec.option_problems({"precision": "int8", "calibration_cache": "/c/calib.cache"})
    command = trtexec.build_command("trtexec", "m.onnx", "e.engine", int8, calibration_cache="/c/calib.cache")
    assert "--int8" in command and "--calib=/c/calib.cache" in command and "--fp16" not in command
    # The default precision adds no flag, and TensorRT's default level is stated, not left implicit.
    fp32, _ = trtexec.option_problems({})
    assert fp32 == {"precision": "fp32", "workspace_mib": None, "builder_optimization_level": 3}
    command = trtexec.build_command("trtexec", "m.onnx", "e.engine", fp32)
    assert not any(flag in command for flag in ("--fp16", "--int8")) and "--builderOptimizationLevel=3" in command
    assert not any(flag.startswith("--memPoolSize") for flag in command)
    assert trtexec.benchmark_command("/usr/bin/trtexec", "e.engine", 10, 2, "/t/times.json") == [
        "/usr/bin/trtexec", "--loadEngine=e.engine", "--duration=10", "--percentile=90,95,99",
        "--exportTimes=/t/times.json", "--streams=2"]


@pytest.mark.parametrize("options, message", [
    ({"precison": "fp16"}, "unknown option 'precison' (known: precision, workspace_mib, "
                           "builder_optimization_level, calibration_cache)"),
    ({"precision": "int4"}, "option 'precision' must be one of fp32, fp16, int8, got \"int4\""),
    ({"workspace_mib": 0}, "option 'workspace_mib' must be a positive integer (MiB), got 0"),
    ({"workspace_mib": True}, "option 'workspace_mib' must be a positive integer (MiB), got true"),
    ({"builder_optimization_level": 6}, "option 'builder_optimization_level' must be an integer from 0 to 5"),
    ({"precision": "fp16", "calibration_cache": "c.cache"}, "option 'calibration_cache' only applies to "
                                                            "precision 'int8'"),
])
def test_bad_options_are_named(options, message):
    _, problems = trtexec.option_problems(options)
    assert any(message in problem for problem in problems), problems


def test_flags_are_read_from_trtexecs_help():
    help_text = "  --fp16                      Enable fp16 precision\n  --int8   Enable int8 precision\n"
    assert trtexec.supports_flag(help_text, "--fp16") and trtexec.supports_flag(help_text, "--int8")
    assert not trtexec.supports_flag("  --stronglyTyped   Create a strongly typed network\n", "--fp16")
    assert not trtexec.supports_flag("  --fp16x  something else\n", "--fp16")


# -- the toolchain script where TensorRT is not installed (this machine) ------

@pytest.fixture
def plugin(tmp_path):
    return support.install("tensorrt", tmp_path / "plugins")


@pytest.fixture
def no_tools(tmp_path):
    """A PATH without trtexec; this interpreter has no tensorrt module (asserted)."""
    if support.module("tensorrt", "toolchain").tensorrt_module() is not None:
        pytest.skip("TensorRT is installed here: these tests are of a machine without it")
    path = support.tool_path(tmp_path / "empty-bin")
    if shutil.which("trtexec", path=path):
        pytest.skip("trtexec is installed in a system folder here")
    return path


def test_info_and_build_say_tensorrt_is_not_installed(plugin, no_tools, tmp_path):
    status, _, stderr = support.run_toolchain(plugin, "info", path=no_tools)
    assert status == 2
    assert support.last_line(stderr).startswith("TensorRT is not installed in ")
    assert "trtexec is not on PATH" in support.last_line(stderr)
    model = support.conv_model(tmp_path / "model.onnx")
    status, _, stderr = support.run_toolchain(plugin, "build", "--model", str(model), "--target", "cuda",
                                              "--output-dir", str(tmp_path / "out"), path=no_tools)
    assert status == 2 and "TensorRT is not installed in" in support.last_line(stderr)


def test_check_reports_findings_calibration_need_and_footprint(plugin, no_tools, tmp_path):
    model = support.conv_model(tmp_path / "model.onnx")
    status, report, _ = support.run_toolchain(plugin, "check", "--model", str(model), "--target", "cuda",
                                              "--options", json.dumps({"precision": "int8"}), path=no_tools)
    assert status == 0
    assert report["compatible"] is False
    assert report["needs_calibration_data"] is True  # int8 on a model without Q/DQ nodes
    assert report["footprint"]["weights_bytes"] == 4 * 3 * 3 * 3 * 4
    assert report["footprint"]["activations_bytes"] > 0
    [missing] = report["issues"]
    assert missing["severity"] == "error" and missing["code"] == "target"
    assert missing["message"].startswith("TensorRT is not installed in ")

    status, report, _ = support.run_toolchain(plugin, "check", "--model", str(model), "--target", "cuda",
                                              "--options", json.dumps({"precision": "fp16"}), path=no_tools)
    assert report["needs_calibration_data"] is False

    quantized = support.conv_model(tmp_path / "qdq.onnx", qdq=True)
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(quantized), "--target", "cuda",
                                         "--options", json.dumps({"precision": "int8"}), path=no_tools)
    assert report["needs_calibration_data"] is False  # Q/DQ scales replace calibration
    assert any(f["code"] == "option" and f["severity"] == "info" and "Q/DQ" in f["message"]
               for f in report["issues"])


def test_check_names_target_option_format_and_model_problems(plugin, no_tools, tmp_path):
    model = support.conv_model(tmp_path / "model.onnx")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(model), "--target", "llvm",
                                         "--options", json.dumps({"precision": "bf8"}), path=no_tools)
    codes = {(f["code"], f["severity"]) for f in report["issues"]}
    assert ("target", "error") in codes and ("option", "error") in codes
    assert any("target 'llvm' is not supported; tensorrt builds for: cuda" in f["message"] for f in report["issues"])
    assert any("option 'precision' must be one of" in f["message"] for f in report["issues"])

    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"TFL3")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(tflite), "--target", "cuda",
                                         path=no_tools)
    assert [f["code"] for f in report["issues"]] == ["unsupported_format"]

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not a model")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(garbage), "--target", "cuda",
                                         path=no_tools)
    assert report["compatible"] is False
    assert [f["code"] for f in report["issues"]] == ["model"]
    assert "not a valid ONNX model" in report["issues"][0]["message"]


# -- the build path through trtexec, with a stand-in for the binary ----------
# The stand-in prints a log in trtexec's format and writes the engine file: it
# checks this plugin's command line and log handling, not TensorRT.

STAND_IN = """\
import json, os, sys
args = sys.argv[1:]
with open(os.environ["TRTEXEC_ARGS"], "a") as f:
    f.write(json.dumps(args) + "\\n")
print("&&&& RUNNING TensorRT.trtexec [TensorRT v101600] # trtexec " + " ".join(args))
if args == ["--help"]:
    print("  --fp16   Enable fp16 precision")
    print("  --int8   Enable int8 precision")
    if not os.environ.get("TRTEXEC_OLD"):  # flags TensorRT 8.6 added
        print("  --skipInference   Exit after the engine has been built")
        print("  --builderOptimizationLevel   Set the builder optimization level")
    else:
        print("  --buildOnly   Exit after the engine has been built")
    sys.exit(0)
print("[11/23/2026-10:00:00] [I] === Build Options ===")
print("[11/23/2026-10:00:00] [I] Precision: FP32+FP16" if "--fp16" in args else "[11/23/2026-10:00:00] [I] Precision: FP32")
print("[11/23/2026-10:00:00] [I] Builder Optimization Level: 3")
print("[11/23/2026-10:00:00] [I] ")
print("[11/23/2026-10:00:00] [I] TensorRT version: 10.16.0")
if os.environ.get("TRTEXEC_FAIL"):
    print("[11/23/2026-10:00:01] [E] Error[2]: [optimizer.cpp::computeCosts] Assertion failed: no tactic")
    print("&&&& FAILED TensorRT.trtexec [TensorRT v101600]")
    sys.exit(1)
engine = next(a.split("=", 1)[1] for a in args if a.startswith("--saveEngine="))
open(engine, "wb").write(b"engine")
print("&&&& PASSED TensorRT.trtexec [TensorRT v101600]")
"""


def test_build_through_trtexec_records_version_and_effective_settings(plugin, no_tools, tmp_path, monkeypatch):
    bin_folder = tmp_path / "bin"
    support.stand_in_tool(bin_folder, "trtexec", STAND_IN)
    monkeypatch.setenv("TRTEXEC_ARGS", str(tmp_path / "args.jsonl"))
    model = support.conv_model(tmp_path / "model.onnx")
    out = tmp_path / "out"
    status, result, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", "cuda", "--output-dir", str(out),
        "--options", json.dumps({"precision": "fp16", "workspace_mib": 256}), path=support.tool_path(bin_folder))
    assert status == 0, stderr
    assert result["artifact"] == str(out / "model.engine")
    effective = result["effective_options"]
    assert effective["builder"] == "trtexec" and effective["tensorrt_version"] == "10.16.0"
    assert effective["precision"] == "fp16" and effective["builder_optimization_level"] == 3
    assert effective["trtexec_build_options"] == {"Precision": "FP32+FP16", "Builder Optimization Level": "3"}
    recorded = json.loads((out / "model.engine.build.json").read_text())
    assert recorded == effective
    calls = [json.loads(line) for line in (tmp_path / "args.jsonl").read_text().splitlines()]
    assert calls[0] == ["--help"]
    assert calls[1] == [f"--onnx={model}", f"--saveEngine={out / 'model.engine'}", "--skipInference", "--fp16",
                        "--memPoolSize=workspace:256", "--builderOptimizationLevel=3",
                        f"--timingCacheFile={out / 'timing.cache'}"]

    # An older trtexec (TensorRT 8.5) has neither flag: the level is recorded as not applied.
    monkeypatch.setenv("TRTEXEC_OLD", "1")
    status, result, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", "cuda", "--output-dir", str(tmp_path / "old"),
        path=support.tool_path(bin_folder))
    assert status == 0, stderr
    assert result["effective_options"]["builder_optimization_level"] is None
    old_call = json.loads((tmp_path / "args.jsonl").read_text().splitlines()[-1])
    assert "--buildOnly" in old_call and not any(a.startswith("--builderOptimizationLevel") for a in old_call)
    monkeypatch.delenv("TRTEXEC_OLD")

    # int8 without the Python API: trtexec cannot calibrate, so the build refuses instead of
    # letting trtexec use placeholder scales.
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", "cuda", "--output-dir", str(out),
        "--options", json.dumps({"precision": "int8"}), path=support.tool_path(bin_folder))
    assert status == 2 and "trtexec cannot calibrate" in support.last_line(stderr)

    monkeypatch.setenv("TRTEXEC_FAIL", "1")
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", "cuda", "--output-dir", str(tmp_path / "out2"),
        path=support.tool_path(bin_folder))
    assert status == 2
    assert support.last_line(stderr) == ("trtexec failed (status 1): Error[2]: [optimizer.cpp::computeCosts] "
                                         "Assertion failed: no tactic")


def test_check_with_trtexec_only_says_operators_are_unchecked_and_int8_needs_a_cache(plugin, tmp_path, monkeypatch):
    if support.module("tensorrt", "toolchain").tensorrt_module() is not None:
        pytest.skip("TensorRT is installed here")
    bin_folder = tmp_path / "bin"
    support.stand_in_tool(bin_folder, "trtexec", STAND_IN)
    monkeypatch.setenv("TRTEXEC_ARGS", str(tmp_path / "args.jsonl"))
    model = support.conv_model(tmp_path / "model.onnx")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(model), "--target", "cuda",
                                         "--options", json.dumps({"precision": "int8"}),
                                         path=support.tool_path(bin_folder))
    assert report["compatible"] is False and report["needs_calibration_data"] is True
    by_code = {(f["code"], f["severity"]): f["message"] for f in report["issues"]}
    assert "operators not checked: only trtexec is installed (TensorRT 10.16.0)" in by_code[
        ("unsupported_operator", "info")]
    assert "calibrating needs the TensorRT Python API" in by_code[("option", "error")]


def test_calibration_samples_must_have_the_models_dtype_and_shape(capsys):
    toolchain = support.module("tensorrt", "toolchain")
    samples = np.zeros((8, 3, 8, 8), dtype=np.float32)
    toolchain.check_calibration_input("x", samples, [1, 3, 8, 8], np.dtype(np.float32))
    toolchain.check_calibration_input("x", samples, [-1, 3, 8, 8], np.dtype(np.float32))  # dynamic batch
    for array, message in [
        (samples.astype(np.float64), "calibration input 'x' holds float64, the model expects float32"),
        (np.zeros((8, 3, 8, 9), dtype=np.float32), "calibration input 'x': samples of shape [3, 8, 9] (stacked on "
                                                   "axis 0) do not fit the model's input [1, 3, 8, 8]"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            toolchain.check_calibration_input("x", array, [1, 3, 8, 8], np.dtype(np.float32))
        assert exit_.value.code == 2
        assert capsys.readouterr().err.strip() == message


# -- the runner's data path, with stand-ins for tensorrt and the CUDA runtime -
# The stand-ins offer the calls the runner makes (deserialize an engine, its I/O
# tensors, set_tensor_address, execute_async_v3; cudaMalloc, async copies,
# events, stream synchronize) over host memory, and an "engine" that doubles its
# float32 input. They check this runner's buffers, copies, per-phase events and
# protocol, not TensorRT or CUDA.

STAND_IN_CUDART = '''
import ctypes
import enum
import time


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


_memory = {}
_events = {}


def cudaGetErrorName(error):
    return cudaError_t.cudaSuccess, cudaError_t(error).name.encode()


def cudaMalloc(size):
    buffer = ctypes.create_string_buffer(size)
    pointer = ctypes.addressof(buffer)
    _memory[pointer] = buffer
    return cudaError_t.cudaSuccess, pointer


def cudaFree(pointer):
    _memory.pop(pointer)
    return (cudaError_t.cudaSuccess,)


def cudaMemcpy(target, source, size, kind):
    ctypes.memmove(target, source, size)
    return (cudaError_t.cudaSuccess,)


def cudaMemcpyAsync(target, source, size, kind, stream):
    time.sleep(0.0002)  # a copy takes time: the h2d and d2h phases are not empty
    ctypes.memmove(target, source, size)
    return (cudaError_t.cudaSuccess,)


class _Handle(int):
    pass


def cudaStreamCreate():
    return cudaError_t.cudaSuccess, _Handle(7)


def cudaEventCreate():
    event = _Handle(100 + len(_events))
    _events[event] = None
    return cudaError_t.cudaSuccess, event


def cudaEventRecord(event, stream):
    _events[event] = time.perf_counter()
    return (cudaError_t.cudaSuccess,)


def cudaEventElapsedTime(start, end):
    return cudaError_t.cudaSuccess, (_events[end] - _events[start]) * 1000.0


def cudaStreamSynchronize(stream):
    return (cudaError_t.cudaSuccess,)
'''

STAND_IN_TENSORRT = '''
import ctypes
import enum
import json
import time

import numpy as np

__version__ = "10.16.1.11-stand-in"


class Logger:
    WARNING = 2

    def __init__(self, severity=2):
        pass


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


def nptype(dtype):
    return {"FLOAT": np.float32, "INT32": np.int32}[dtype]


class Context:
    def __init__(self, engine):
        self.engine, self.addresses, self.shapes = engine, {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = list(shape)

    def get_tensor_shape(self, name):
        return self.shapes.get(name, self.engine.tensors[name]["shape"])

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = pointer

    def execute_async_v3(self, stream):
        assert isinstance(stream, int)
        time.sleep(0.001)
        source, target = (self.engine.spec["input"], self.engine.spec["output"])
        count = int(np.prod(self.get_tensor_shape(source)))
        data = np.ctypeslib.as_array((ctypes.c_float * count).from_address(self.addresses[source]))
        out = np.ctypeslib.as_array((ctypes.c_float * count).from_address(self.addresses[target]))
        out[:] = data * 2
        return True


class Engine:
    def __init__(self, spec):
        self.spec = spec
        self.tensors = {t["name"]: t for t in spec["tensors"]}
        self.num_io_tensors = len(spec["tensors"])

    def get_tensor_name(self, index):
        return self.spec["tensors"][index]["name"]

    def get_tensor_shape(self, name):
        return self.tensors[name]["shape"]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == self.spec["input"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return self.tensors[name]["dtype"]

    def create_execution_context(self):
        return Context(self)


class Runtime:
    def __init__(self, logger):
        pass

    def deserialize_cuda_engine(self, data):
        try:
            return Engine(json.loads(data))
        except ValueError:
            return None
'''


@pytest.fixture
def trt_runner(tmp_path):
    """The plugin installed with stand-in tensorrt and CUDA modules on its path."""
    runners = support.StandInRunners("tensorrt", tmp_path, {
        "cuda/__init__.py": "", "cuda/cudart.py": STAND_IN_CUDART, "tensorrt.py": STAND_IN_TENSORRT})
    yield runners.start
    runners.close()


def test_runner_reports_tensorrts_split_per_iteration(trt_runner, tmp_path):
    folder = tmp_path / "deployment"
    folder.mkdir()
    # A dynamic batch dimension: the runner fixes it at 1, as the build's profile does.
    (folder / "model.engine").write_text(json.dumps({
        "input": "x", "output": "y",
        "tensors": [{"name": "x", "shape": [-1, 3], "dtype": "FLOAT"}, {"name": "y", "shape": [1, 3], "dtype": "FLOAT"}]}))
    (folder / "garbage.engine").write_text("not an engine")
    samples = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(folder / "x.npy", samples)

    greeting, request = trt_runner(folder)
    assert greeting["runtime"] == "tensorrt" and greeting["runtime_version"] == "10.16.1.11-stand-in"
    refused = request(op="load", artifact="garbage.engine", inputs={"x": "x.npy"})
    assert "cannot deserialize 'garbage.engine'" in refused["error"]
    assert request(op="load", artifact="model.engine", inputs={"x": "x.npy"})["ok"]
    # Host placement: every iteration copies the inputs up and the outputs back.
    timed = request(op="run", iterations=5, sample=2, placement="host")
    assert timed["ok"] and timed["input_placement"] == "host", timed
    phases = timed["phases_ns"]
    assert sorted(phases) == ["compute", "d2h", "h2d"]
    assert all(len(values) == 5 for values in phases.values())
    # The stand-in engine sleeps 1 ms per inference; copies 0.2 ms each.
    assert all(value >= 1_000_000 for value in phases["compute"])
    assert all(value >= 200_000 for value in phases["h2d"] + phases["d2h"])
    # The host clock covers the three phases.
    assert all(d >= h + c + o for d, h, c, o in zip(timed["durations_ns"], phases["h2d"], phases["compute"],
                                                    phases["d2h"]))
    # Device placement (the default): one upload before timing, then compute alone.
    resident = request(op="run", iterations=5, sample=2)
    assert resident["input_placement"] == "device", resident
    assert "CUDA device buffers" in resident["input_placement_detail"]
    assert sorted(resident["phases_ns"]) == ["compute"]
    assert all(value >= 1_000_000 for value in resident["phases_ns"]["compute"])
    written = request(op="outputs", directory="out")
    assert written["ok"] and written["order"] == ["y"]
    np.testing.assert_array_equal(np.load(folder / "out" / written["outputs"]["y"]), samples * 2)
    assert "trtexec is not on PATH on this board" in request(op="native_benchmark", seconds=1)["error"]
