"""The web panel in headless Chromium, against `mlbench serve` over a real SQLite
store holding real results: two experiments run through the queue by `mlbench
worker` on the host board (with a memory probe), a third queued behind a
disabled board, and a fourth running while the overview follows it live.

Screenshots and DOM dumps go to $MLBENCH_PANEL_ARTIFACTS (default: a temporary
folder, printed). Run by scripts/test; by hand:
    MLBENCH_BIN=.build/debug/mlbench python3 -m pytest -q Tests/Panel
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from browser import Browser, chromium_path  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[2]
USER = "ada"


def mlbench_binary():
    path = os.environ.get("MLBENCH_BIN") or str(REPOSITORY / ".build/debug/mlbench")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no mlbench binary at {path}: build it (scripts/setup) or set MLBENCH_BIN")
    return path


class Lab:
    """A lab home of its own: the setup's toolchain environments, a fresh store."""

    def __init__(self, root):
        self.root = Path(root)
        self.home = self.root / "home"
        self.home.mkdir()
        setup_home = Path(os.environ.get("MLBENCH_HOME") or REPOSITORY / ".mlbench")
        (self.home / "toolchains").symlink_to(setup_home / "toolchains")
        self.inventory = self.root / "inventory.yaml"
        self.inventory.write_text(
            "boards:\n"
            "  host: {plugin: host}\n"
            "  host-2: {plugin: host}\n"
            "toolchains:\n"
            "  onnxruntime: {plugin: onnxruntime}\n"
            "probes:\n"
            "  memory: {plugin: host-probes, kind: rss, board: host, settings: {interval_ms: 10}}\n")
        self.binary = mlbench_binary()
        self.environment = dict(os.environ, MLBENCH_HOME=str(self.home), MLBENCH_INVENTORY=str(self.inventory), MLBENCH_USER=USER)
        self.environment.pop("MLBENCH_STORE", None)
        self.environment.pop("MLBENCH_PLUGIN_PATH", None)

    def run(self, *arguments, timeout=300, check=True):
        done = subprocess.run([self.binary, *arguments], env=self.environment, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            pytest.fail(f"mlbench {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def experiment(self, name, threads, min_time_s=0.5, max_time_s=3, board="host"):
        sample = REPOSITORY / "Examples/sample"
        path = self.root / f"{name}.yaml"
        path.write_text(
            f"name: {name}\n"
            f"model: {sample}/model.onnx\n"
            f"inputs: {{image: {sample}/inputs/image.npy}}\n"
            "reference: {toolchain: onnxruntime}\n"
            f"toolchain: {{name: onnxruntime, target: cpu, options: {{intra_op_threads: {threads}}}}}\n"
            f"board: {board}\n"
            f"measurement: {{min_iterations: 100, min_time_s: {min_time_s}, max_time_s: {max_time_s}}}\n"
            "semantic_preservation: {metric: max_abs, threshold: 1.0e-4}\n")
        return str(path)

    def worker(self, drain=True):
        arguments = [self.binary, "worker", "--host", "bench-1", "--heartbeat", "1"] + (["--drain"] if drain else []) \
            + ["--", self.binary, "run", "--id-only"]  # its progress on stderr becomes the step log
        return subprocess.Popen(arguments, env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)


@pytest.fixture(scope="module")
def artifacts():
    folder = Path(os.environ.get("MLBENCH_PANEL_ARTIFACTS") or tempfile.mkdtemp(prefix="mlbench-panel-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"panel screenshots and DOM dumps: {folder}")
    return folder


@pytest.fixture(scope="module")
def lab():
    if chromium_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed under CI: scripts/setup installs the Debian package")
        pytest.skip("chromium is not installed (scripts/setup installs it)")
    root = tempfile.mkdtemp(prefix="mlbench-panel-lab-")
    lab = Lab(root)
    lab.run("boards", "register", "host", "--host", "bench-1")
    lab.run("boards", "health", "host", "good", "--note", "checked")
    lab.run("boards", "register", "host-2", "--host", "bench-2")
    lab.run("boards", "disable", "host-2", "--note", "fan replaced")
    lab.run("users", "add", USER, "--role", "operator")
    lab.token = lab.run("users", "token", USER, "--label", "panel test").strip().split()[-1]
    # Two real results through the queue, with different thread counts to compare.
    lab.run("queue", "submit", lab.experiment("ort-one-thread", 1))
    lab.run("queue", "submit", lab.experiment("ort-two-threads", 2))
    worker = lab.worker()
    _, err = worker.communicate(timeout=600)
    assert worker.returncode == 0, err
    # One waiting for a disabled board of another bench host: a queue row that stays queued.
    lab.waiting = lab.run("queue", "submit", lab.experiment("later-on-host-2", 1, board="host-2")).strip()
    server = subprocess.Popen([lab.binary, "serve", "--port", "0", "--event-poll", "0.2"], env=lab.environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = server.stdout.readline()
    match = re.search(r"listening on (http://[^ ]+)", line)
    if not match:
        server.kill()
        pytest.fail(f"mlbench serve did not start: {line}{server.stderr.read()}")
    lab.url = match.group(1)
    lab.server = server
    # Oldest first: the first is the comparison's baseline.
    lab.results = [r["id"] for r in reversed(api(lab, "/results"))]
    assert len(lab.results) == 2, f"two results stored: {lab.results}\n{err[-3000:]}"
    yield lab
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    shutil.rmtree(root, ignore_errors=True)


def api(lab, path):
    request = urllib.request.Request(f"{lab.url}/api/v1{path}", headers={"Authorization": f"Bearer {lab.token}"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def browser(lab):
    with Browser() as browser:
        # Signing in through the form, as a person would; the token stays in the tab.
        browser.open(f"{lab.url}/panel/", until="sign-in")
        browser.evaluate(f"document.getElementById('token').value = {json.dumps(lab.token)}; "
                         "document.getElementById('sign-in').requestSubmit(); true")
        browser.wait_for_state("ready")
        yield browser
        assert browser.errors() == [], "the pages raised no JavaScript error"


def count(browser, selector):
    return browser.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")


def attribute(browser, selector, name):
    return browser.evaluate(f"(e => e && e.getAttribute({json.dumps(name)}))(document.querySelector({json.dumps(selector)}))")


def save(browser, artifacts, name):
    browser.screenshot(str(artifacts / f"{name}.png"))
    (artifacts / f"{name}.html").write_text(browser.dom())


def test_overview_shows_the_queue_the_boards_and_the_results(lab, browser, artifacts):
    browser.open(f"{lab.url}/panel/index.html")
    save(browser, artifacts, "overview")
    assert browser.evaluate("document.getElementById('who').textContent") == f"{USER} (operator)"
    boards = browser.evaluate("[...document.querySelectorAll('tr.board-row')].map(r => [r.dataset.board, r.dataset.health, r.dataset.enabled])")
    assert sorted(boards) == [["host", "good", "true"], ["host-2", "unknown", "false"]]
    assert "fan replaced" in browser.evaluate("document.querySelector('tr.board-row[data-board=\"host-2\"]').textContent")
    queued = browser.evaluate("[...document.querySelectorAll('tr.queue-row')].map(r => [r.dataset.id, r.dataset.state])")
    assert queued == [[lab.waiting, "queued"]], "the experiment waiting for the disabled board, and only it"
    results = browser.evaluate("[...document.querySelectorAll('tr.result-row')].map(r => r.dataset.id)")
    assert sorted(results) == sorted(lab.results)
    assert browser.evaluate("document.querySelector('.tile-succeeded .tile-number').textContent") == "2"
    assert browser.evaluate("document.querySelector('.tile-queued .tile-number').textContent") == "1"


def test_result_page_draws_histogram_series_with_warm_up_and_probe_profile(lab, browser, artifacts):
    result_id = lab.results[0]
    result = api(lab, f"/results/{result_id}")
    measured, warmup = result["measurement"]["durations_ns"], result["warm_up"]["durations_ns"]
    browser.open(f"{lab.url}/panel/result.html?id={result_id}")
    save(browser, artifacts, "result")
    assert browser.evaluate("document.getElementById('result-id').textContent") == result_id
    # Histogram: every measured iteration counted once, in its bins (and the overflow bin).
    bins = int(attribute(browser, "svg.plot-histogram", "data-bins"))
    assert count(browser, "svg.plot-histogram rect.bar:not(.bar-beyond)") == bins
    total = browser.evaluate("[...document.querySelectorAll('svg.plot-histogram rect.bar')].reduce((s, r) => s + +r.dataset.count, 0)")
    assert total == len(measured)
    assert count(browser, "svg.plot-histogram .median-marker") == 1
    # Series: warm-up then measurement, the warm-up's end marked where it is.
    assert int(attribute(browser, "svg.plot-series", "data-points")) == len(warmup) + len(measured)
    assert count(browser, "svg.plot-series .warmup-marker") == 1
    assert int(attribute(browser, "svg.plot-series .warmup-marker", "data-iteration")) == len(warmup)
    assert count(browser, "svg.plot-series .warmup-region") == 1
    steady = result["warm_up"]["analysis"].get("steady_state_index")
    assert count(browser, "svg.plot-series .steady-marker") == (0 if steady is None else 1)
    # Probe profile: the memory probe's first channel with samples, with a window for each
    # measured iteration within its recording.
    probe = next(p for p in result["probes"] if p["name"] == "memory")
    channel = next(c for c in range(len(probe["channels"])) if any(s["channel"] == c for s in probe["samples"]))
    times = [s["timestamp_ns"] for s in probe["samples"] if s["channel"] == channel]
    starts = result["measurement"]["starts_ns"]
    within = sum(1 for a, d in zip(starts, measured) if a + d >= times[0] and a <= times[-1])
    assert within >= len(measured) - 2, "the probe records through the measurement"
    shown = browser.evaluate("[...document.querySelectorAll('svg.plot-power')].map(s => [+s.dataset.samples, +s.dataset.windows, +s.dataset.windowRects])")
    assert shown, "a probe profile is drawn"
    assert shown[0][:2] == [len(times), within]
    assert 1 <= shown[0][2] <= within
    assert count(browser, "svg.plot-power .inference-window") == sum(s[2] for s in shown)
    assert count(browser, "svg.plot-power path.power-trace") == len(shown)


def test_comparison_of_two_results(lab, browser, artifacts):
    browser.open(f"{lab.url}/panel/compare.html?ids={','.join(lab.results)}")
    save(browser, artifacts, "compare")
    assert browser.evaluate("[...document.querySelectorAll('tr.compare-row')].map(r => r.dataset.id)") == lab.results
    assert count(browser, "svg.plot-boxes g.box") == 2
    assert count(browser, "svg.plot-ecdf path.ecdf-trace") == 2
    assert browser.evaluate("document.querySelector('tr.compare-row').textContent").find("baseline") >= 0


def test_live_progress_follows_a_running_experiment(lab, browser, artifacts):
    running = lab.run("queue", "submit", lab.experiment("ort-live", 1, min_time_s=4, max_time_s=8)).strip()
    worker = lab.worker()
    try:
        deadline = time.monotonic() + 120
        while api(lab, f"/experiments/{running}")["state"] != "running":
            assert time.monotonic() < deadline, "the worker started the experiment"
            time.sleep(0.3)
        browser.open(f"{lab.url}/panel/index.html")
        assert browser.evaluate(f"document.querySelector('tr.queue-row[data-id=\"{running}\"]').dataset.state") == "running"
        # Lines arrive over server-sent events while the experiment runs, then its end.
        browser.wait_for("document.querySelectorAll('#live-feed li.feed-line:not(.feed-end)').length > 0", timeout=60)
        save(browser, artifacts, "live")
        browser.wait_for("document.querySelector('#live-feed li.feed-end') !== null", timeout=120)
        assert "succeeded" in browser.evaluate("document.querySelector('#live-feed li.feed-end').textContent")
        # Every step-log line once, in order (newest first in the feed), each naming the experiment.
        lines = browser.evaluate("[...document.querySelectorAll('#live-feed li.feed-line:not(.feed-end)')].map(l => l.textContent)")
        log = [line["line"] for line in api(lab, f"/experiments/{running}/log")]
        assert len(log) >= 3, log
        assert len(lines) == len(log)
        assert all("ort-live" in line for line in lines)
        assert all(text.endswith(line) for text, line in zip(reversed(lines), log))
        # The tables were fetched again: the experiment left the queue and counts as succeeded.
        browser.wait_for(f"document.querySelector('tr.queue-row[data-id=\"{running}\"]') === null", timeout=30)
        assert browser.evaluate("document.querySelector('.tile-succeeded .tile-number').textContent") == "3"
    finally:
        try:
            worker.wait(timeout=180)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait()


def test_a_refused_token_brings_back_the_sign_in_form(lab, artifacts):
    with Browser() as browser:
        browser.open(f"{lab.url}/panel/index.html#token=mlb_not-a-token", until="sign-in")
        assert "refused" in browser.evaluate("document.getElementById('sign-in').textContent")
        assert browser.evaluate("location.hash") == "", "the token leaves the address bar"
        save(browser, artifacts, "sign-in")


def test_only_the_panel_files_are_served_with_their_types_and_policy(lab):
    for name, kind in [("", "text/html"), ("index.html", "text/html"), ("result.html", "text/html"),
                       ("panel.js", "text/javascript"), ("plots.js", "text/javascript"), ("panel.css", "text/css")]:
        with urllib.request.urlopen(f"{lab.url}/panel/{name}") as answer:
            assert answer.headers["Content-Type"].startswith(kind), name
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            body = answer.read().decode()
            # Nothing is fetched from elsewhere: no absolute address in any file.
            assert not re.search(r"(src|href)=\"(https?:)?//", body) and "cdn" not in body.lower(), name
    for name in ["panel.html.bak", "..%2F..%2FPackage.swift", "Panel.swift", "%2e%2e/PanelRoutes.swift"]:
        try:
            urllib.request.urlopen(f"{lab.url}/panel/{name}")
            raise AssertionError(f"{name} was served")
        except urllib.error.HTTPError as error:
            assert error.code == 404, name
