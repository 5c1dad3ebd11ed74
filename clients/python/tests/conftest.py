"""A live mlbench service for the client tests: a fresh lab home with a real SQLite
store, two host boards (host-a, host-b) of one bench host, registered users with
tokens, `mlbench serve` on a free loopback port, and a real `mlbench worker` running
experiments with ONNX Runtime on the sample model (Examples/sample, made by scripts/setup).

The mlbench binary is $MLBENCH_BIN, else the one `swift build` left in .build/debug.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

try:
    from mlbench_client import Client  # installed (scripts/test: pip install ./clients/python)
except ImportError:  # run from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mlbench_client import Client  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "Examples" / "sample"
HOST = "bench-1"
START_TIMEOUT_S = 90


def mlbench_binary() -> Path:
    candidate = Path(os.environ.get("MLBENCH_BIN", REPO / ".build" / "debug" / "mlbench"))
    if not candidate.is_file():
        pytest.exit(f"no mlbench binary at {candidate}: build it (scripts/setup) or set MLBENCH_BIN", returncode=2)
    return candidate


class Lab:
    """The lab the service runs on: its home, its environment, and the mlbench CLI."""

    def __init__(self, home: Path, binary: Path):
        self.home = home
        self.binary = binary
        self.env = dict(os.environ)
        self.env.update({"MLBENCH_HOME": str(home), "MLBENCH_INVENTORY": str(home / "inventory.yaml")})
        for name in ("MLBENCH_STORE", "MLBENCH_PLUGIN_PATH", "MLBENCH_USER", "MLBENCH_TOKEN"):
            self.env.pop(name, None)

    def cli(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        outcome = subprocess.run([str(self.binary), *arguments], env=self.env, capture_output=True, text=True, timeout=120)
        if check and outcome.returncode != 0:
            raise AssertionError(f"mlbench {' '.join(arguments)} exited with {outcome.returncode}: {outcome.stderr}")
        return outcome

    def blob_count(self) -> int:
        root = self.home / "blobs" / "sha256"
        return sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0


class Process:
    """A child process whose output goes to a file; stopped (SIGINT, then SIGKILL) at the end."""

    def __init__(self, arguments, env, log: Path):
        self.log_path = log
        self.log = open(log, "w")
        self.process = subprocess.Popen(arguments, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.log.close()


@pytest.fixture(scope="session")
def lab():
    binary = mlbench_binary()
    if not (SAMPLE / "model.onnx").is_file():
        pytest.exit(f"no sample model in {SAMPLE}: run scripts/setup", returncode=2)
    setup_home = Path(os.environ.get("MLBENCH_SETUP_HOME", REPO / ".mlbench"))
    if not (setup_home / "toolchains").is_dir():
        pytest.exit(f"no toolchain environments in {setup_home}/toolchains: run scripts/setup", returncode=2)
    home = Path(tempfile.mkdtemp(prefix="mlbench-service-test-"))
    (home / "toolchains").symlink_to(setup_home / "toolchains")
    (home / "inventory.yaml").write_text(
        "boards:\n"
        "  host-a: {plugin: host}\n"
        "  host-b: {plugin: host}\n"
        "toolchains:\n"
        "  onnxruntime: {plugin: onnxruntime}\n"
        "probes:\n"
        "  memory-a: {plugin: host-probes, kind: rss, board: host-a, settings: {interval_ms: 20}}\n"
        "  memory-b: {plugin: host-probes, kind: rss, board: host-b, settings: {interval_ms: 20}}\n")
    the_lab = Lab(home, binary)
    for board in ("host-a", "host-b"):
        the_lab.cli("boards", "register", board, "--host", HOST)
        the_lab.cli("boards", "health", board, "good", "--note", "checked by the test")
    yield the_lab
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def tokens(lab):
    """name → API token, for admin (admin), ops (operator), alice and bob (users)."""
    issued = {}
    for name, role in (("admin", "admin"), ("ops", "operator"), ("alice", "user"), ("bob", "user")):
        lab.cli("users", "add", name, "--role", role)
        issued[name] = lab.cli("users", "token", name, "--label", "pytest").stdout.strip()
    return issued


@pytest.fixture(scope="session")
def server(lab, tokens):
    """`mlbench serve` on a free loopback port (port 0, the chosen one read from its output)
    with small upload limits, and one worker for the bench host; answers the base URL."""
    serve = Process([str(lab.binary), "serve", "--port", "0", "--max-input-mb", "1", "--max-model-mb", "4", "--event-poll", "0.2"],
                    lab.env, lab.home / "serve.log")
    url = None
    lines = []

    def read_first_line():
        lines.append(serve.process.stdout.readline())

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if lines and "listening on " in lines[0]:
        url = lines[0].split("listening on ", 1)[1].split()[0]
    if url is None:
        serve.stop()
        raise AssertionError(f"mlbench serve did not start: {lines} {serve.log_path.read_text()}")
    worker = Process([str(lab.binary), "worker", "--host", HOST, "--name", "pytest-worker", "--heartbeat", "1", "--lease", "10",
                      "--", str(lab.binary), "run", "--id-only"], lab.env, lab.home / "worker.log")
    yield url
    worker.stop()
    serve.stop()


@pytest.fixture(scope="session")
def clients(server, tokens):
    return {name: Client(server, token) for name, token in tokens.items()}


def quick_definition(name: str, board: str = "host-a", iterations: int = 30) -> dict:
    """A short experiment on the sample model with ONNX Runtime, compared with itself."""
    return {
        "name": name,
        "model": "model.onnx",
        "inputs": {"image": "inputs/image.npy"},
        "reference": {"toolchain": "onnxruntime"},
        "toolchain": {"name": "onnxruntime", "target": "cpu"},
        "board": board,
        "measurement": {"min_iterations": iterations, "min_time_s": 0, "max_time_s": 2, "min_warmup_iterations": 5,
                        "max_warmup_iterations": 50},
        "semantic_preservation": {"metric": "cosine", "threshold": 1.0e-6},
    }
