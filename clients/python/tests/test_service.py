"""The client against a live service: a full experiment, access control, operators'
board control, uploads, messages, metrics. See conftest.py for the lab."""

from __future__ import annotations

import json
import struct
import urllib.request

import numpy as np
import pytest

from conftest import SAMPLE, quick_definition
from mlbench_client import APIError, Client

RUN_TIMEOUT_S = 300


# -- the service and its document -------------------------------------------------------------

def test_health_needs_no_token_and_the_document_lists_the_api(server):
    anonymous = Client(server, token="")
    assert anonymous.health()["status"] == "ok"
    document = anonymous.openapi()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/experiments" in document["paths"]
    assert "post" in document["paths"]["/api/v1/experiments"]
    assert "/api/v1/experiments/{id}/events" in document["paths"]


@pytest.mark.parametrize("token", ["", "mlb_" + "0" * 64, "not-a-token"])
def test_requests_without_a_valid_token_get_401(server, token):
    for method, path in (("GET", "/api/v1/experiments"), ("GET", "/api/v1/results"), ("POST", "/api/v1/files"),
                         ("GET", "/api/v1/boards"), ("POST", "/api/v1/boards/host-a/disable")):
        with pytest.raises(APIError) as caught:
            Client(server, token=token).request(method, path, data=b"x" if method == "POST" else None)
        assert caught.value.status == 401, (method, path)
        assert "token" in caught.value.message


def test_who_am_i(clients):
    assert clients["alice"].me()["name"] == "alice"
    assert clients["ops"].me()["role"] == "operator"


# -- a full experiment -------------------------------------------------------------------------

def test_a_full_experiment_through_the_client(clients, lab):
    alice = clients["alice"]
    experiment = alice.submit(quick_definition("client-full", board="host-a"), base=str(SAMPLE))
    assert experiment.state == "queued" and experiment.user == "alice" and experiment.board == "host-a"
    # The submitted definition names the service's own links, never the client's paths.
    assert "inputs/image.npy" not in experiment.definition

    events = []
    final = alice.follow(experiment.id, timeout=RUN_TIMEOUT_S, on_event=events.append)
    assert final.state == "succeeded", f"{final.note}\n{(lab.home / 'worker.log').read_text()[-3000:]}"
    states = [e.data["state"] for e in events if e.name == "state"]
    assert states[0] in ("queued", "running") and states[-1] == "succeeded"
    assert "running" in states or any(e.name == "log" for e in events)
    assert any(e.name == "log" for e in events), "the step log streams as events"
    assert events[-1].name == "end"
    assert alice.log(experiment.id), "the step log is kept in the store"

    result = alice.result(final.result_id)
    assert result.status == "succeeded" and result.user == "alice" and result.board == "host-a"
    assert isinstance(result.timings_ns, np.ndarray) and result.timings_ns.dtype == np.int64
    assert result.timings_ns.size == result.summary["count"] >= 30
    assert result.starts_ns.size == result.timings_ns.size
    assert np.all(result.timings_ns > 0)
    assert result.median_ns == pytest.approx(float(np.median(result.timings_ns)), rel=1e-6)
    assert result.warmup_ns.size > 0
    assert "memory-a" in result.probes
    probe = result.probes["memory-a"]
    assert probe.times_ns.size == probe.values.size > 0

    headlines = alice.results()
    assert result.id in [h.id for h in headlines]
    assert "client-full" in alice.result_summary(result.id)

    # A second run, then the two compared.
    second = alice.follow(alice.submit(quick_definition("client-full-2", board="host-a"), base=str(SAMPLE)).id, timeout=RUN_TIMEOUT_S)
    assert second.state == "succeeded", second.note
    comparison = alice.compare([result.id, second.result_id])
    assert comparison.baseline == result.id
    row = comparison.row(second.result_id)
    assert row["ratio_to_baseline"] > 0 and 0 <= row["p"] <= 1 and 0 <= row["p_holm"] <= 1
    assert "(baseline)" in comparison.text

    exported = json.loads(alice.export([result.id, second.result_id]))
    assert [r["id"] for r in exported] == [result.id, second.result_id]
    csv = alice.export([result.id], format="csv")
    assert csv.splitlines()[0].startswith("id,name,status") and result.id in csv


def test_aborting_a_running_experiment_stops_it(clients, lab):
    alice = clients["alice"]
    definition = quick_definition("client-long", board="host-b")
    definition["measurement"].update({"min_iterations": 100000, "max_iterations": 10000000, "min_time_s": 60, "max_time_s": 120})
    experiment = alice.submit(definition, base=str(SAMPLE))
    for event in alice.events(experiment.id, timeout=RUN_TIMEOUT_S):
        if event.name == "log" or (event.name == "state" and event.data["state"] == "running"):
            break
    assert alice.experiment(experiment.id).state == "running"
    assert alice.abort(experiment.id) == 1
    final = alice.follow(experiment.id, timeout=60)
    assert final.state == "aborted" and "aborted by alice" in final.note
    # The worker stops it at its next heartbeat: the board takes the next experiment.
    after = alice.follow(alice.submit(quick_definition("client-after-abort", board="host-b"), base=str(SAMPLE)).id,
                         timeout=RUN_TIMEOUT_S)
    assert after.state == "succeeded", after.note


def test_yaml_text_with_named_files_and_events_for_a_browser(clients, server):
    alice, ops = clients["alice"], clients["ops"]
    ops.disable_board("host-a", note="held for the YAML test")
    try:
        text = (
            "name: client-yaml\n"
            "model: my model.onnx\n"
            "inputs: {image: data/image.npy}\n"
            "reference: {toolchain: onnxruntime}\n"
            "toolchain: {name: onnxruntime, target: cpu}\n"
            "board: host-a\n"
            "measurement: {min_iterations: 20, min_time_s: 0, max_time_s: 2}\n"
            "semantic_preservation: {metric: cosine, threshold: 1.0e-6}\n")
        experiment = alice.submit(text, files={"my model.onnx": SAMPLE / "model.onnx", "data/image.npy": SAMPLE / "inputs" / "image.npy"})
        assert experiment.state == "queued" and "model: model.onnx" in experiment.definition
        # EventSource cannot set headers: the token may come as ?access_token= on the event stream.
        url = f"{server}/api/v1/experiments/{experiment.id}/events?access_token={alice.token}"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            first = [response.readline().decode() for _ in range(2)]
        assert first[0] == "event: state\n" and '"state":"queued"' in first[1]
        with pytest.raises(APIError) as caught:
            Client(server, token="").request("GET", f"/api/v1/experiments/{experiment.id}?access_token={alice.token}")
        assert caught.value.status == 401, "only the event stream takes the token in its address"
        assert alice.abort(experiment.id) == 1
    finally:
        ops.enable_board("host-a")


def test_suspend_resume_and_abort(clients, lab):
    alice, ops = clients["alice"], clients["ops"]
    for board in ("host-a", "host-b"):
        ops.disable_board(board, note="held for the control test")
    try:
        experiment = alice.submit(quick_definition("client-control"), base=str(SAMPLE), series="control")
        assert alice.suspend(experiment.id) == 1
        assert alice.experiment(experiment.id).state == "suspended"
        assert alice.resume(series="control") == 1
        assert alice.experiment(experiment.id).state == "queued"
        with pytest.raises(APIError) as caught:
            clients["bob"].abort(experiment.id)
        assert caught.value.status == 404, "bob cannot even see alice's experiment"
        assert alice.abort(experiment.id) == 1
        assert alice.experiment(experiment.id).state == "aborted"
        assert experiment.id in [e.id for e in alice.experiments(state="aborted")]
        assert experiment.id not in [e.id for e in clients["bob"].experiments()]
        assert experiment.id in [e.id for e in ops.experiments()], "operators see the whole queue"
    finally:
        for board in ("host-a", "host-b"):
            ops.enable_board(board)


def test_a_sweep_is_one_series_controlled_as_one(clients):
    alice, bob, ops = clients["alice"], clients["bob"], clients["ops"]
    for board in ("host-a", "host-b"):
        ops.disable_board(board, note="held for the sweep test")
    try:
        series, experiments = alice.sweep(quick_definition("client-sweep"), base=str(SAMPLE),
                                          parameters=["measurement.min_iterations=20,40"], series="sweep-test")
        assert series == "sweep-test"
        assert sorted((e.board, e.state) for e in experiments) == [("host-a", "queued")] * 2 + [("host-b", "queued")] * 2
        assert {e.id for e in alice.experiments(series="sweep-test")} == {e.id for e in experiments}
        with pytest.raises(APIError) as caught:
            bob.suspend(series="sweep-test")
        assert caught.value.status == 404, "bob sees none of it"
        assert alice.suspend(series="sweep-test") == 4
        assert {e.state for e in alice.experiments(series="sweep-test")} == {"suspended"}
        assert alice.resume(series="sweep-test") == 4
        assert ops.abort(series="sweep-test") == 4, "operators control anyone's experiments"
        assert {e.state for e in alice.experiments(series="sweep-test")} == {"aborted"}
        with pytest.raises(APIError) as caught:
            alice.sweep(quick_definition("client-sweep-bad"), base=str(SAMPLE), boards=["host-z"])
        assert caught.value.status == 400 and "host-z" in caught.value.message
    finally:
        for board in ("host-a", "host-b"):
            ops.enable_board(board)


def test_paths_in_toolchain_options_are_refused(clients):
    definition = quick_definition("client-paths")
    definition["toolchain"]["options"] = {"calibration_cache": "/etc/passwd"}
    with pytest.raises(APIError) as caught:
        clients["alice"].submit(definition, base=str(SAMPLE))
    assert caught.value.status == 422 and caught.value.field == "definition.toolchain.options.calibration_cache"


def test_tokens_are_listed_by_id_and_revoked(clients, server):
    admin = clients["admin"]
    token = admin.issue_token("bob", label="to revoke")
    bob = Client(server, token)
    assert bob.me()["name"] == "bob"
    listed = [t for t in bob.request("GET", "/api/v1/tokens") if t["label"] == "to revoke"]
    assert len(listed) == 1 and token not in json.dumps(listed)
    with pytest.raises(APIError) as caught:
        clients["alice"].request("DELETE", f"/api/v1/tokens/{listed[0]['id']}")
    assert caught.value.status == 404, "alice cannot revoke bob's token"
    bob.request("DELETE", f"/api/v1/tokens/{listed[0]['id']}")
    with pytest.raises(APIError) as caught:
        bob.me()
    assert caught.value.status == 401
    assert clients["bob"].me()["name"] == "bob", "his other token still works"


# -- access control ----------------------------------------------------------------------------------

def test_an_unshared_result_is_404_for_others_and_200_once_shared(clients):
    alice, bob = clients["alice"], clients["bob"]
    mine = [h for h in alice.results() if h.user == "alice"]
    if not mine:
        final = alice.follow(alice.submit(quick_definition("client-share"), base=str(SAMPLE)).id, timeout=RUN_TIMEOUT_S)
        assert final.state == "succeeded", final.note
        mine = [h for h in alice.results() if h.user == "alice"]
    result_id = mine[0].id
    with pytest.raises(APIError) as caught:
        bob.result(result_id)
    assert caught.value.status == 404
    assert result_id not in [h.id for h in bob.results()]
    with pytest.raises(APIError) as caught:
        bob.share_result(result_id, "bob")
    assert caught.value.status == 404, "bob cannot share what he cannot see"

    alice.share_result(result_id, "bob")
    assert bob.result(result_id).id == result_id
    assert result_id in [h.id for h in bob.results()]
    with pytest.raises(APIError) as caught:
        bob.share_result(result_id, "admin")
    assert caught.value.status == 403, "only the owner shares"
    with pytest.raises(APIError) as caught:
        bob.delete_result(result_id)
    assert caught.value.status == 403

    alice.unshare_result(result_id, "bob")
    with pytest.raises(APIError) as caught:
        bob.result(result_id)
    assert caught.value.status == 404


def test_a_shared_experiment_shows_its_definition_and_result(clients):
    alice, bob = clients["alice"], clients["bob"]
    done = [e for e in alice.experiments(state="succeeded") if e.user == "alice"]
    assert done, "an earlier test ran one of alice's experiments"
    experiment = done[0]
    with pytest.raises(APIError) as caught:
        bob.experiment(experiment.id)
    assert caught.value.status == 404
    alice.share_experiment(experiment.id, "bob")
    seen = bob.experiment(experiment.id)
    assert seen.definition and seen.result_id == experiment.result_id
    assert bob.result(experiment.result_id).id == experiment.result_id
    with pytest.raises(APIError) as caught:
        bob.abort(experiment.id)
    assert caught.value.status == 403, "sharing lets bob read it, not control it"
    alice.unshare_experiment(experiment.id, "bob")
    with pytest.raises(APIError):
        bob.experiment(experiment.id)


# -- operators ---------------------------------------------------------------------------------------

def test_an_operator_disables_a_board_and_the_next_experiment_goes_elsewhere(clients):
    alice, bob, ops = clients["alice"], clients["bob"], clients["ops"]
    with pytest.raises(APIError) as caught:
        bob.disable_board("host-a")
    assert caught.value.status == 403
    assert next(b for b in ops.boards() if b["name"] == "host-a")["enabled"] is True

    board = ops.disable_board("host-a", note="maintenance")
    assert board["enabled"] is False
    try:
        experiment = alice.submit(quick_definition("client-elsewhere", board="host-a"), base=str(SAMPLE), any_board=True)
        assert experiment.board == "host-b"
        final = alice.follow(experiment.id, timeout=RUN_TIMEOUT_S)
        assert final.state == "succeeded", final.note
        assert alice.result(final.result_id).board == "host-b"
    finally:
        ops.enable_board("host-a")
    assert next(b for b in alice.boards() if b["name"] == "host-a")["enabled"] is True


def test_usage_reservations_and_verify(clients):
    alice, bob, ops = clients["alice"], clients["bob"], clients["ops"]
    mine = alice.request("GET", "/api/v1/usage")
    assert [u["user"] for u in mine["users"]] == ["alice"] and mine["users"][0]["board_seconds"] > 0
    assert {u["user"] for u in ops.request("GET", "/api/v1/usage")["users"]} >= {"alice"}
    reservation = bob.request("POST", "/api/v1/boards/host-b/reservations",
                              {"from": "2030-01-01T09:00:00Z", "to": "2030-01-01T10:00:00Z"})
    assert reservation["user"] == "bob" and reservation["board"] == "host-b"
    with pytest.raises(APIError) as caught:
        alice.request("POST", "/api/v1/boards/host-b/reservations", {"from": "2030-01-01T09:30:00Z", "to": "2030-01-01T11:00:00Z"})
    assert caught.value.status == 400 and "already reserved by bob" in caught.value.message
    with pytest.raises(APIError) as caught:
        alice.request("DELETE", f"/api/v1/reservations/{reservation['id']}")
    assert caught.value.status == 403
    assert reservation["id"] in [r["id"] for r in alice.request("GET", "/api/v1/reservations")]
    ops.request("DELETE", f"/api/v1/reservations/{reservation['id']}")
    assert alice.request("GET", "/api/v1/reservations") == []
    result_id = next(h.id for h in alice.results() if h.user == "alice")
    verification = alice.request("GET", f"/api/v1/results/{result_id}/verify")
    assert verification["intact"] is True and verification["problems"] == []


def test_operators_message_users(clients):
    ops, alice, bob = clients["ops"], clients["alice"], clients["bob"]
    ops.post_message("host-a goes down for maintenance at 18:00")
    ops.post_message("your sweep is hogging host-b", to="alice")
    assert [m["text"] for m in alice.messages()][:2] == ["your sweep is hogging host-b", "host-a goes down for maintenance at 18:00"]
    assert "your sweep is hogging host-b" not in [m["text"] for m in bob.messages()]
    with pytest.raises(APIError) as caught:
        alice.post_message("hello everyone")
    assert caught.value.status == 403


def test_admins_manage_users_and_others_cannot(clients, server):
    admin = clients["admin"]
    admin.add_user("carol")
    token = admin.issue_token("carol", label="pytest")
    me = Client(server, token).me()
    assert (me["name"], me["role"]) == ("carol", "user")
    with pytest.raises(APIError) as caught:
        clients["ops"].add_user("mallory")
    assert caught.value.status == 403
    with pytest.raises(APIError) as caught:
        admin.add_user("carol")
    assert caught.value.status == 409


# -- uploads ------------------------------------------------------------------------------------------

def npy(header: str, payload: bytes) -> bytes:
    text = header.encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


@pytest.mark.parametrize("kind,data,words", [
    ("model", b"this is not a model at all", "not an ONNX model"),
    ("model", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", b"\x00" * 8), "NumPy"),
    ("input", b"PK\x03\x04 a zip", "\\x93NUMPY"),
    ("input", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", b"\x00" * 8), "needs 16"),
    ("input", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8), "object"),
    ("input", npy("{'fortran_order': False, 'shape': (1,), }", b"\x00" * 4), "descr"),
    ("other", b"123", "kind"),
])
def test_a_bad_upload_is_refused_naming_what_is_wrong_and_stores_nothing(clients, lab, kind, data, words):
    before = lab.blob_count()
    with pytest.raises(APIError) as caught:
        clients["alice"].upload(data, kind=kind)
    assert caught.value.status in (400, 422)
    assert words in caught.value.message
    assert lab.blob_count() == before


def test_an_upload_over_the_limit_gets_413_and_stores_nothing(clients, lab):
    before = lab.blob_count()
    big = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2097152,), }", b"\x01" * 2097152)
    with pytest.raises(APIError) as caught:
        clients["alice"].upload(big, kind="input")
    assert caught.value.status == 413 and "limit" in caught.value.message
    assert lab.blob_count() == before


def test_good_uploads_are_kept_by_hash(clients):
    upload = clients["alice"].upload(SAMPLE / "inputs" / "image.npy")
    assert upload.format == "npy" and upload.kind == "input" and len(upload.sha256) == 64 and upload.shape
    model = clients["alice"].upload(SAMPLE / "model.onnx", kind="model")
    assert model.format == "onnx"


def test_a_definition_naming_files_not_uploaded_is_refused(clients):
    definition = quick_definition("client-missing")
    with pytest.raises(APIError) as caught:
        clients["alice"].submit(definition, files={})
    assert caught.value.status == 422 and "model" in caught.value.message
    # Another user's upload cannot be used either.
    sha = clients["bob"].upload(SAMPLE / "model-perturbed.onnx", kind="model").sha256  # never uploaded by alice
    text = json.dumps({**definition, "model": f"sha256:{sha}"})
    with pytest.raises(APIError) as caught:
        clients["alice"].request("POST", "/api/v1/experiments", {"definition": text, "files": {}})
    assert caught.value.status == 422 and "uploaded by alice" in caught.value.message


# -- metrics --------------------------------------------------------------------------------------------

def test_prometheus_metrics(server, clients):
    text = Client(server, token="").metrics()
    assert "# TYPE mlbench_queue_experiments gauge" in text
    assert 'mlbench_queue_experiments{state="succeeded"}' in text
    assert "# TYPE mlbench_experiment_duration_seconds histogram" in text
    assert 'mlbench_experiment_duration_seconds_bucket{state="succeeded",le="+Inf"}' in text
    assert 'mlbench_board_enabled{board="host-a",host="bench-1"} 1' in text
    assert 'mlbench_board_health{board="host-b",health="good",host="bench-1"} 1' in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_and_labels, value = line.rsplit(" ", 1)
            float(value.replace("+Inf", "inf"))
    assert 'mlbench_probe_sample_rate_hz{probe="memory-a"' in text
    rates = [float(l.split()[-1]) for l in text.splitlines() if l.startswith('mlbench_probe_sample_rate_hz{probe="memory-a"')]
    assert rates and rates[0] > 0
    succeeded = [l for l in text.splitlines() if l.startswith('mlbench_experiment_duration_seconds_count{state="succeeded"}')]
    assert succeeded and float(succeeded[0].split()[-1]) >= 1
