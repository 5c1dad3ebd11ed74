"""The Vitis AI plugin without Vitis AI: targets, options, vai_c_xir's and xdputil's
command lines and outputs, the DPU fixed-point conversion, and the toolchain
script's answers where the Vitis AI image is absent.

The tool outputs below reproduce the formats the tools print, as they appear in
Vitis AI tutorials and posted logs: vai_c_xir's "[UNILOG][INFO] ..." lines (Vitis
AI 1.3 to 3.5) and the glog-prefixed form of later compilers; meta.json beside
the xmodel; `xdputil benchmark`, which runs test_dpu_runner_mt and logs through
glog from performance_test.hpp. The numbers and paths are made up.
"""

from __future__ import annotations

import json

import pytest

import plugin_support as support

np = pytest.importorskip("numpy")
tools = support.module("vitis-ai", "vitis_tools")
runner = support.module("vitis-ai", "runner")

UNILOG = """\
**************************************************
* VITIS_AI Compilation - Xilinx Inc.
**************************************************
[UNILOG][INFO] The compiler log will be dumped at "/tmp/vitis-ai-user/log/xcompiler-20260301-101010-42"
[UNILOG][INFO] Compile mode: dpu
[UNILOG][INFO] Debug mode: function
[UNILOG][INFO] Target architecture: DPUCZDX8G_ISA1_B4096
[UNILOG][INFO] Graph name: ResNet, with op num: 421
[UNILOG][INFO] Begin to compile...
[UNILOG][INFO] Total device subgraph number 3, DPU subgraph number 1
[UNILOG][INFO] Compile done.
[UNILOG][INFO] The meta json is saved to "/work/out/meta.json"
[UNILOG][INFO] The compiled xmodel is saved to "/work/out/resnet.xmodel"
[UNILOG][INFO] The compiled xmodel's md5sum is 0123456789abcdef0123456789abcdef, and has been saved to "/work/out/md5sum.txt"
"""

GLOG = """\
I20260301 11:22:24.513685 105724 compile_pass_manager.cpp:357] Target architecture: DPUCV2DX8G_ISA1_C20B14
I20260301 11:22:24.513685 105724 compile_pass_manager.cpp:523] Graph name: main_graph, with op num: 439
I20260301 11:22:30.848696 105724 PartitionPass.cpp:5648] xir::Op{name = output_, type = fix2float} is not supported by current target. Assign it to CPU.
I20260301 11:22:32.471781 105724 compile_pass_manager.cpp:548] Total device subgraph number 5, CPU subgraph number 2
I20260301 11:22:32.471781 105724 compile_pass_manager.cpp:557] Total device subgraph number 5, DPU subgraph number 2
I20260301 11:22:32.471781 105724 compile_pass_manager.cpp:613] Compile done.
"""

XDPUTIL = """\
WARNING: Logging before InitGoogleLogging() is written to STDERR
I0301 10:35:50.797550  1962 test_dpu_runner_mt.cpp:473] shuffle results for batch...
I0301 10:35:50.799772  1962 performance_test.hpp:73] 0% ...
I0301 10:35:52.799910  1962 performance_test.hpp:76] 10% ...
I0301 10:36:10.801367  1962 performance_test.hpp:76] 100% ...
I0301 10:36:10.801432  1962 performance_test.hpp:79] stop and waiting for all threads terminated....
I0301 10:36:10.802978  1962 performance_test.hpp:85] thread-0 processes 7530 frames
I0301 10:36:10.803001  1962 performance_test.hpp:85] thread-1 processes 7470 frames
I0301 10:36:10.803010  1962 performance_test.hpp:93] it takes 1564 us for shutdown
I0301 10:36:10.803020  1962 performance_test.hpp:94] FPS= 749.812 number_of_frames= 15000 time= 20.0050 seconds.
I0301 10:36:10.803030  1962 performance_test.hpp:96] BYEBYE
Test PASS.
"""


def test_vai_c_xir_command_and_unilog_output():
    assert tools.vai_c_xir_command("q/ResNet_int.xmodel", "arch.json", "out", "resnet") == [
        "vai_c_xir", "-x", "q/ResNet_int.xmodel", "-a", "arch.json", "-o", "out", "-n", "resnet"]
    assert tools.parse_vai_c_xir(UNILOG) == {
        "errors": [], "target_architecture": "DPUCZDX8G_ISA1_B4096", "graph_name": "ResNet", "op_count": 421,
        "device_subgraphs": 3, "dpu_subgraphs": 1, "xmodel": "/work/out/resnet.xmodel",
        "md5": "0123456789abcdef0123456789abcdef", "meta_json": "/work/out/meta.json"}


def test_vai_c_xir_glog_output_and_fatal_errors():
    report = tools.parse_vai_c_xir(GLOG)
    assert report["target_architecture"] == "DPUCV2DX8G_ISA1_C20B14"
    assert (report["device_subgraphs"], report["dpu_subgraphs"], report["cpu_subgraphs"]) == (5, 2, 2)
    assert "xmodel" not in report
    fatal = ("[UNILOG][FATAL][XCOM_DATA_OUTRANGE][Data value is out of range!] "
             "The dynamic space is too small for your data size.")
    assert tools.parse_vai_c_xir(UNILOG + fatal)["errors"] == [
        "XCOM_DATA_OUTRANGE: Data value is out of range! The dynamic space is too small for your data size."]


def test_meta_json_names_the_kernels():
    meta = '{"lib": "libvart-dpu-runner.so", "filename": "resnet.xmodel", "kernel": ["subgraph_conv1"], ' \
           '"target": "DPUCZDX8G_ISA1_B4096"}'
    assert tools.parse_meta_json(meta) == {"kernels": ["subgraph_conv1"], "target": "DPUCZDX8G_ISA1_B4096",
                                           "filename": "resnet.xmodel"}
    with pytest.raises(ValueError, match="meta.json is not JSON"):
        tools.parse_meta_json("kernel: x")


def test_xdputil_benchmark_command_and_output():
    command, environment = tools.xdputil_benchmark_command("m.xmodel", threads=2, seconds=20)
    assert command == ["xdputil", "benchmark", "m.xmodel", "2"]
    # performance_test.hpp runs for SLEEP_MS milliseconds (60000 unless set).
    assert environment == {"SLEEP_MS": "20000"}
    assert tools.xdputil_benchmark_command("m.xmodel", 1, 60, subgraph_index=-1)[0] == [
        "xdputil", "benchmark", "m.xmodel", "-i", "-1", "1"]
    assert tools.parse_xdputil_benchmark(XDPUTIL) == {
        "fps": 749.812, "frames": 15000, "seconds": 20.005, "frames_per_thread": [7530, 7470], "passed": True}
    failed = tools.parse_xdputil_benchmark(XDPUTIL.replace("Test PASS.", "Test FAIL."))
    assert failed["passed"] is False
    with pytest.raises(ValueError, match="printed no 'FPS= ... number_of_frames= ... time= ...' line"):
        tools.parse_xdputil_benchmark(XDPUTIL.split("I0301 10:36:10.803020")[0])


def test_targets_resolve_to_an_arch_json(tmp_path):
    root = tmp_path / "arch"
    (root / "DPUCZDX8G" / "ZCU104").mkdir(parents=True)
    (root / "DPUCZDX8G" / "ZCU104" / "arch.json").write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    (root / "DPUCZDX8G" / "KV260").mkdir()
    (root / "DPUCZDX8G" / "KV260" / "arch.json").write_text('{"fingerprint": "0x101000016010407"}')
    path, arch, problem = tools.resolve_arch("DPUCZDX8G/ZCU104", str(root))
    assert (path, arch, problem) == (str(root / "DPUCZDX8G/ZCU104/arch.json"), {"target": "DPUCZDX8G_ISA1_B4096"}, None)
    assert tools.resolve_arch(str(root / "DPUCZDX8G/KV260/arch.json"))[1] == {"fingerprint": "0x101000016010407"}
    _, _, problem = tools.resolve_arch("DPUCZDX8G/ZCU102", str(root))
    assert problem.endswith("not found (known: DPUCZDX8G/KV260, DPUCZDX8G/ZCU104)")
    (tmp_path / "bad.json").write_text("{")
    assert "is not readable JSON" in tools.resolve_arch(str(tmp_path / "bad.json"))[2]
    (tmp_path / "empty.json").write_text('{"name": "x"}')
    assert "names neither a DPU 'target' nor a 'fingerprint'" in tools.resolve_arch(str(tmp_path / "empty.json"))[2]
    assert "target is empty" in tools.resolve_arch("  ")[2]


@pytest.mark.parametrize("options, message", [
    ({"quantiser": "x"}, "unknown option 'quantiser' (known: quantizer, calibrate_method, net_name)"),
    ({"quantizer": "vai_q_pytorch"}, "option 'quantizer' must be one of vai_q_onnx, quark, got \"vai_q_pytorch\""),
    ({"calibrate_method": "entropy"}, "option 'calibrate_method' must be one of min_mse, non_overflow"),
    ({"net_name": "my net"}, "option 'net_name' must be an identifier"),
])
def test_bad_options_are_named(options, message):
    _, problems = tools.option_problems(options, ["vai_q_onnx"])
    assert any(message in problem for problem in problems), problems


def test_default_options_follow_the_installed_quantizer():
    assert tools.option_problems({}, ["quark"]) == (
        {"quantizer": "quark", "calibrate_method": "min_mse", "net_name": "model"}, [])
    assert tools.option_problems({}, [])[0]["quantizer"] == "vai_q_onnx"


def test_ops_left_in_float_are_named():
    assert tools.classify_ops(["Conv", "Relu", "BatchNormalization", "Erf", "LSTM", "Erf", "Softmax"]) == ["Erf", "LSTM"]


def test_fixed_point_conversion_and_layout():
    # fix_point 6: one unit is 1/64; values saturate at the int8 range.
    samples = np.array([[[[0.5, -0.25], [3.0, -3.0]]]], dtype=np.float32)  # NCHW 1x1x2x2
    fixed = runner.to_fixed(samples, 6, nhwc=False)
    assert fixed.dtype == np.int8 and fixed.tolist() == [[[[32, -16], [127, -128]]]]
    np.testing.assert_array_equal(runner.from_fixed(fixed, 6, nchw=False),
                                  [[[[0.5, -0.25], [127 / 64, -2.0]]]])
    # NCHW models meet NHWC DPU tensors: transposed on the way in and back on the way out.
    nchw = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4) / 64
    assert runner.dpu_layout([1, 2, 3, 4], [1, 3, 4, 2]) is True
    assert runner.dpu_layout([1, 2, 3, 4], [1, 2, 3, 4]) is False
    assert runner.dpu_layout([None, 2, 3, 4], [1, 3, 4, 2]) is True
    assert runner.dpu_layout([1, 8], [1, 8]) is False
    on_dpu = runner.to_fixed(nchw, 6, nhwc=True)
    assert on_dpu.shape == (1, 3, 4, 2) and on_dpu.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(runner.from_fixed(on_dpu, 6, nchw=True), nchw)


# -- the toolchain script where Vitis AI is not installed (this machine) -----

@pytest.fixture
def plugin(tmp_path):
    if support.module("vitis-ai", "toolchain").components():
        pytest.skip("Vitis AI components are installed here: these tests are of a machine without them")
    return support.install("vitis-ai", tmp_path / "plugins")


@pytest.fixture
def arch(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    return path


def test_info_says_vitis_ai_is_not_installed(plugin, tmp_path):
    status, _, stderr = support.run_toolchain(plugin, "info", path=support.tool_path(tmp_path / "empty-bin"))
    assert status == 2
    message = support.last_line(stderr)
    assert message.startswith("Vitis AI is not installed in ") and "it is not on PyPI" in message
    assert "set the toolchain's 'python' setting to that image's interpreter" in message


def test_check_of_an_onnx_model(plugin, arch, tmp_path):
    model = support.conv_model(tmp_path / "model.onnx", extra_op="Erf")
    status, report, _ = support.run_toolchain(plugin, "check", "--model", str(model), "--target", str(arch),
                                              path=support.tool_path(tmp_path / "empty-bin"))
    assert status == 0
    assert report["compatible"] is False
    assert report["needs_calibration_data"] is True  # int8 quantization for the DPU
    assert report["footprint"]["weights_bytes"] == 4 * 3 * 3 * 3 * 4
    issues = report["issues"]
    errors = [f for f in issues if f["severity"] == "error"]
    assert {f["code"] for f in errors} == {"target", "option"}
    assert any(f["message"].startswith("vai_c_xir is not on PATH. Vitis AI is not installed in") for f in errors)
    assert any("option 'quantizer': vai_q_onnx is not installed (installed: none)" in f["message"] for f in errors)
    [erf] = [f for f in issues if f["code"] == "unsupported_operator"]
    assert erf["severity"] == "warning" and erf["operator"] == "Erf"
    [layout] = [f for f in issues if f["code"] == "layout_conversion"]
    assert "input 'x' is 4-D" in layout["message"]
    assert any(f["code"] == "unsupported_format" and f["severity"] == "warning" for f in issues)


def test_check_of_an_xmodel_a_wrong_format_and_a_missing_arch(plugin, arch, tmp_path):
    xmodel = tmp_path / "ResNet_int.xmodel"
    xmodel.write_bytes(b"xir")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(xmodel), "--target", str(arch),
                                         path=support.tool_path(tmp_path / "empty-bin"))
    assert report["needs_calibration_data"] is False  # quantized already
    assert "footprint" not in report
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"TFL3")
    _, report, _ = support.run_toolchain(plugin, "check", "--model", str(tflite),
                                         "--target", str(tmp_path / "none.json"),
                                         path=support.tool_path(tmp_path / "empty-bin"))
    codes = [(f["code"], f["severity"]) for f in report["issues"]]
    assert ("unsupported_format", "error") in codes and ("target", "error") in codes
    assert any(f"'{tmp_path / 'none.json'}' not found" in f["message"] for f in report["issues"])


# -- compile through vai_c_xir, with a stand-in for the binary ---------------
# The stand-in prints vai_c_xir's log format and writes what the compiler writes
# (the xmodel, meta.json): it checks this plugin's command line and log handling.

STAND_IN = """\
import json, os, sys
args = sys.argv[1:]
value = lambda flag: args[args.index(flag) + 1]
out, name = value("-o"), value("-n")
print("[UNILOG][INFO] Target architecture: " + json.load(open(value("-a")))["target"])
if os.environ.get("VAI_FAIL"):
    print("[UNILOG][FATAL][XCOM_OPERATION_FAILED][The operation failed.] conv2d has no kernel")
    sys.exit(1)
print("[UNILOG][INFO] Graph name: quant_model, with op num: 42")
print("[UNILOG][INFO] Total device subgraph number %s, DPU subgraph number %s" % (3, os.environ.get("VAI_DPU", "1")))
print("[UNILOG][INFO] Compile done.")
open(os.path.join(out, name + ".xmodel"), "wb").write(b"compiled " + open(value("-x"), "rb").read())
json.dump({"lib": "libvart-dpu-runner.so", "filename": name + ".xmodel", "kernel": ["subgraph_quant_model"],
           "target": "DPUCZDX8G_ISA1_B4096"}, open(os.path.join(out, "meta.json"), "w"))
print('[UNILOG][INFO] The compiled xmodel is saved to "%s"' % os.path.join(out, name + ".xmodel"))
"""


def test_build_compiles_a_quantized_xmodel(plugin, arch, tmp_path, monkeypatch):
    bin_folder = tmp_path / "bin"
    support.stand_in_tool(bin_folder, "vai_c_xir", STAND_IN)
    xmodel = tmp_path / "ResNet_int.xmodel"
    xmodel.write_bytes(b"xir")
    out = tmp_path / "out"
    status, result, stderr = support.run_toolchain(
        plugin, "build", "--model", str(xmodel), "--target", str(arch), "--output-dir", str(out),
        "--options", json.dumps({"net_name": "resnet"}), path=support.tool_path(bin_folder))
    assert status == 0, stderr
    assert result["artifact"] == str(out / "resnet.xmodel")
    assert (out / "resnet.xmodel").read_bytes() == b"compiled xir"
    effective = result["effective_options"]
    assert effective["dpu"] == "DPUCZDX8G_ISA1_B4096" and effective["format"] == "xmodel"
    assert effective["compiler"]["dpu_subgraphs"] == 1
    assert effective["compiler"]["kernels"] == ["subgraph_quant_model"]

    monkeypatch.setenv("VAI_DPU", "0")
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(xmodel), "--target", str(arch), "--output-dir", str(tmp_path / "o2"),
        path=support.tool_path(bin_folder))
    assert status == 2 and "mapped no operator to the DPU" in support.last_line(stderr)

    monkeypatch.setenv("VAI_FAIL", "1")
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(xmodel), "--target", str(arch), "--output-dir", str(tmp_path / "o3"),
        path=support.tool_path(bin_folder))
    assert status == 2
    assert support.last_line(stderr) == ("vai_c_xir failed (status 1): XCOM_OPERATION_FAILED: "
                                         "The operation failed. conv2d has no kernel")


def test_build_of_an_onnx_model_needs_a_quantizer_and_calibration(plugin, arch, tmp_path):
    bin_folder = tmp_path / "bin"
    support.stand_in_tool(bin_folder, "vai_c_xir", STAND_IN)
    model = support.conv_model(tmp_path / "model.onnx")
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", str(arch), "--output-dir", str(tmp_path / "out"),
        "--calibration-inputs", json.dumps({"x": str(support.calibration_file(tmp_path))}),
        path=support.tool_path(bin_folder))
    assert status == 2
    assert support.last_line(stderr).startswith("option 'quantizer': vai_q_onnx is not installed in ")
    status, _, stderr = support.run_toolchain(
        plugin, "build", "--model", str(model), "--target", "DPUCZDX8G/NOBOARD", "--output-dir", str(tmp_path / "o"),
        path=support.tool_path(bin_folder))
    assert status == 2 and "DPU architecture file" in support.last_line(stderr)


# -- the VART runner's data path, with a stand-in for xir and vart -----------
# The stand-in modules offer the few calls the runner makes (xir.Graph.deserialize,
# subgraph devices, vart.Runner.create_runner, tensors with dims and fix_point,
# execute_async/wait) and a "DPU" that copies its int8 input to its output. They
# check this runner's subgraph choice, names, layout and fixed-point conversion
# and its protocol, not VART.

STAND_IN_XIR = '''
import json


class Subgraph:
    def __init__(self, spec):
        self.spec = spec

    def get_name(self):
        return self.spec["name"]

    def has_attr(self, name):
        return name in self.spec

    def get_attr(self, name):
        return self.spec[name]


class Root:
    def __init__(self, children):
        self.children = children

    def toposort_child_subgraph(self):
        return self.children


class Graph:
    def __init__(self, spec):
        self.spec = spec

    @staticmethod
    def deserialize(path):
        with open(path) as file:
            return Graph(json.load(file))

    def get_root_subgraph(self):
        return Root([Subgraph(s) for s in self.spec["subgraphs"]])
'''

STAND_IN_VART = '''
import numpy as np

__version__ = "3.5.0-stand-in"


class Tensor:
    def __init__(self, spec):
        self.name, self.dims, self._fix = spec["name"], spec["dims"], spec["fix_point"]

    def get_attr(self, name):
        assert name == "fix_point"
        return self._fix


class Runner:
    @staticmethod
    def create_runner(subgraph, mode):
        assert mode == "run" and subgraph.get_attr("device") == "DPU"
        return Runner(subgraph)

    def __init__(self, subgraph):
        self.inputs = [Tensor(t) for t in subgraph.get_attr("inputs")]
        self.outputs = [Tensor(t) for t in subgraph.get_attr("outputs")]
        self.jobs = 0

    def get_input_tensors(self):
        return self.inputs

    def get_output_tensors(self):
        return self.outputs

    def execute_async(self, inputs, outputs):
        # The stand-in DPU copies its int8 input to its output (same dims).
        for source, target in zip(inputs, outputs):
            assert source.dtype == np.int8 and target.dtype == np.int8
            target[...] = source
        self.jobs += 1
        return (self.jobs, 0)

    def wait(self, job):
        return 0
'''


def fake_xmodel(path, subgraphs):
    path.write_text(json.dumps({"subgraphs": subgraphs}))
    return path


def dpu(dims_in, dims_out, fix_in=6, fix_out=6):
    return {"name": "subgraph_dpu", "device": "DPU",
            "inputs": [{"name": "model__input_0_fix", "dims": dims_in, "fix_point": fix_in}],
            "outputs": [{"name": "model__output_0_fix", "dims": dims_out, "fix_point": fix_out}]}


@pytest.fixture
def vart_runner(tmp_path):
    """The plugin installed with stand-in xir and vart modules on its path; yields a
    function that starts its runner in a deployment folder and speaks to it."""
    runners = support.StandInRunners("vitis-ai", tmp_path, {"xir.py": STAND_IN_XIR, "vart.py": STAND_IN_VART})
    yield runners.start
    runners.close()


def test_vart_runner_feeds_the_dpu_in_fixed_point_nhwc_under_onnx_names(vart_runner, tmp_path):
    folder = tmp_path / "deployment"
    folder.mkdir()
    fake_xmodel(folder / "model.xmodel", [{"name": "input", "device": "USER"}, dpu([1, 4, 4, 2], [1, 4, 4, 2])])
    (folder / "model.xmodel.io.json").write_text(json.dumps({
        "format": runner.IO_FORMAT, "version": runner.IO_VERSION,
        "inputs": [{"name": "image", "shape": [1, 2, 4, 4], "dtype": "float32"}],
        "outputs": [{"name": "features", "shape": [1, 2, 4, 4], "dtype": "float32"}]}))
    images = np.random.default_rng(1).uniform(-1, 1, (3, 2, 4, 4)).astype(np.float32)
    np.save(folder / "image.npy", images)

    greeting, request = vart_runner(folder)
    assert greeting == {"protocol_version": 1, "runtime": "vitis-ai", "runtime_version": "3.5.0-stand-in"}
    loaded = request(op="load", artifact="model.xmodel", inputs={"image": "image.npy"})
    assert loaded["ok"] and loaded["samples"] == 3, loaded
    timed = request(op="run", iterations=4, sample=1)
    assert timed["ok"] and len(timed["durations_ns"]) == 4
    written = request(op="outputs", directory="out")
    assert written["ok"] and written["order"] == ["features"], written
    features = np.load(folder / "out" / written["outputs"]["features"])
    # Back in NCHW, equal to the inputs up to the DPU's 1/64 step.
    assert features.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(features, np.round(images * 64) / 64, atol=0)
    no_tool = request(op="native_benchmark", seconds=1)
    assert "xdputil is not installed" in no_tool["error"]


def test_vart_runner_refuses_models_it_cannot_run_whole(vart_runner, tmp_path):
    folder = tmp_path / "deployment"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((1, 1, 4, 4, 2), dtype=np.float32)[0])
    fake_xmodel(folder / "split.xmodel", [dpu([1, 4, 4, 2], [1, 4, 4, 2]),
                                          {"name": "subgraph_softmax", "device": "CPU"}])
    fake_xmodel(folder / "none.xmodel", [{"name": "subgraph_all", "device": "CPU"}])
    fake_xmodel(folder / "plain.xmodel", [dpu([1, 4, 4, 2], [1, 4, 4, 2])])
    _, request = vart_runner(folder)
    split = request(op="load", artifact="split.xmodel", inputs={"model__input_0_fix": "x.npy"})
    assert "has 1 DPU subgraph(s) and CPU subgraph(s) subgraph_softmax" in split["error"]
    none = request(op="load", artifact="none.xmodel", inputs={})
    assert "has 0 DPU subgraph(s)" in none["error"]
    # Without a sidecar (a compiled xmodel input) the DPU's own names are the model's.
    plain = request(op="load", artifact="plain.xmodel", inputs={"image": "x.npy"})
    assert "missing input(s) 'model__input_0_fix'" in plain["error"]
    assert request(op="load", artifact="plain.xmodel", inputs={"model__input_0_fix": "x.npy"})["ok"]
    assert request(op="run", iterations=1)["ok"]
    np.save(folder / "wide.npy", np.zeros((1, 4, 4, 3), dtype=np.float32))
    assert request(op="load", artifact="plain.xmodel", inputs={"model__input_0_fix": "wide.npy"})["ok"]
    wide = request(op="run", iterations=1)
    assert ("input 'model__input_0_fix': a sample of shape [1, 4, 4, 3] does not fit the DPU tensor [1, 4, 4, 2]"
            in wide["error"])
