"""What the plugin tests share: a plugin installed the way the lab deploys it, its
modules imported by path, its toolchain script run as the core runs it, and small
ONNX models made on the spot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "Sources" / "MLBenchPluginKit" / "python" / "mlbench_runner.py"
sys.path.insert(0, str(KIT.parent))
from mlbench_runner_client import RunnerClientError, RunnerProcess  # noqa: E402
# Generous: the first TVM build of a session compiles for a few seconds.
TIMEOUT_S = 300


def install(plugin: str, folder: Path) -> Path:
    """The plugin's python/ folder with mlbench_runner.py beside it, as scripts/setup stages it."""
    target = folder / plugin
    shutil.copytree(REPO / "Plugins" / plugin / "python", target)
    shutil.copy(KIT, target)
    return target


def module(plugin: str, name: str):
    """A module of a plugin's python/ folder, imported under a unique name (both plugins have a runner.py)."""
    folder = REPO / "Plugins" / plugin / "python"
    for path in (str(folder), str(KIT.parent)):
        if path not in sys.path:
            sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location(f"{plugin.replace('-', '_')}_{name}", folder / f"{name}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


class Runner(RunnerProcess):
    """A runner process of the kit's client whose failures to answer fail the test."""

    def __init__(self, script: Path, cwd: Path, stderr_path: Path, modules: Path | None = None) -> None:
        """modules: a folder put first on the runner's PYTHONPATH (stand-ins for a vendor runtime)."""
        environment = dict(os.environ)
        if modules is not None:
            environment["PYTHONPATH"] = os.pathsep.join([str(modules), environment.get("PYTHONPATH", "")])
        try:
            super().__init__(script, cwd, stderr_path, env=environment, timeout_s=TIMEOUT_S)
        except RunnerClientError as error:
            pytest.fail(str(error))

    def _reply(self) -> dict:
        try:
            return super()._reply()
        except RunnerClientError as error:
            pytest.fail(str(error))


class StandInRunners:
    """Runners of a plugin installed in folder, started with stand-in vendor modules
    (relative path -> source) first on their path; start(deployment) gives the
    greeting and a request function."""

    def __init__(self, plugin: str, folder: Path, modules: dict[str, str]) -> None:
        self.plugin_dir, self.modules, self.started = install(plugin, folder / "plugins"), folder / "stand-in", []
        for relative, source in modules.items():
            (self.modules / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.modules / relative).write_text(source)

    def start(self, deployment: Path):
        runner = Runner(self.plugin_dir / "runner.py", deployment, deployment / "stderr.txt", modules=self.modules)
        self.started.append(runner)
        return runner.greeting, runner.request

    def close(self) -> None:
        for runner in self.started:
            runner.close()


def run_toolchain(plugin_dir: Path, *args: str, path: str | None = None) -> tuple[int, dict | None, str]:
    """(exit status, the JSON result or None, stderr) of toolchain.py ARGS, with PATH replaced when given."""
    environment = dict(os.environ)
    if path is not None:
        environment["PATH"] = path
    done = subprocess.run([sys.executable, str(plugin_dir / "toolchain.py"), *args], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=environment)
    lines = done.stdout.splitlines()
    if done.returncode == 0:
        assert len(lines) == 1, f"expected one JSON line on stdout, got: {done.stdout!r}"
        return 0, json.loads(lines[0]), done.stderr
    assert done.stdout == "", f"a failing command printed on stdout: {done.stdout!r}"
    return done.returncode, None, done.stderr


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def tool_path(folder: Path) -> str:
    """A PATH of the interpreter's folder and `folder` only: no vendor tool of the machine leaks in."""
    return os.pathsep.join([str(folder), str(Path(sys.executable).parent), "/usr/bin", "/bin"])


def stand_in_tool(folder: Path, name: str, script: str) -> Path:
    """An executable `name` in folder running the Python script: it stands in for a vendor
    binary (trtexec, vai_c_xir) to exercise the plugin's own command line and log handling."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(f"#!{sys.executable}\n{script}")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool


def conv_model(path: Path, *, extra_op: str | None = None, qdq: bool = False) -> Path:
    """A 1x3x8x8 -> Conv -> Relu model, with one more op (Erf, ...) or a QuantizeLinear/DequantizeLinear pair."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, dtype=np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"])]
    initializers = [weights]
    last = "r"
    if qdq:
        initializers += [numpy_helper.from_array(np.array(0.05, dtype=np.float32), "scale"),
                         numpy_helper.from_array(np.array(0, dtype=np.int8), "zero")]
        nodes += [helper.make_node("QuantizeLinear", ["r", "scale", "zero"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"])]
        last = "dq"
    if extra_op:
        nodes.append(helper.make_node(extra_op, [last], ["e"]))
        last = "e"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def calibration_file(folder: Path, samples: int = 4) -> Path:
    import numpy as np

    path = folder / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((samples, 3, 8, 8)).astype(np.float32))
    return path
