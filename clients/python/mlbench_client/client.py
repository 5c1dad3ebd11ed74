"""The client: one object per server and token."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import numpy as np

FINAL_STATES = ("succeeded", "failed", "aborted")


class APIError(Exception):
    """An error answered by the service: HTTP status, message, and the field at fault."""

    def __init__(self, status: int, message: str, field: Optional[str] = None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.field = field


@dataclass
class Upload:
    sha256: str
    kind: str
    format: str
    size: int
    dtype: Optional[str] = None
    shape: Optional[List[int]] = None


@dataclass
class Experiment:
    """A queued experiment and its state."""
    id: str
    name: str
    user: str
    board: str
    state: str
    series: Optional[str] = None
    attempts: int = 0
    worker: Optional[str] = None
    result_id: Optional[str] = None
    note: Optional[str] = None
    submitted_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    definition: Optional[str] = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Experiment":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ResultHeadline:
    id: str
    name: str
    status: str
    board: Optional[str] = None
    toolchain: Optional[str] = None
    toolchain_version: Optional[str] = None
    median_ns: Optional[float] = None
    preservation_ratio: Optional[float] = None
    finished_at: Optional[str] = None
    failure_reason: Optional[str] = None
    user: Optional[str] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ResultHeadline":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Probe:
    """A probe's recording: one column of values per channel, at the sample times."""
    name: str
    rate_hz: float
    channels: List[Dict[str, str]]
    times_ns: np.ndarray
    channel_index: np.ndarray
    values: np.ndarray

    def channel(self, name: str) -> "tuple[np.ndarray, np.ndarray]":
        """Times (ns) and values of one channel."""
        index = [c["name"] for c in self.channels].index(name)
        mask = self.channel_index == index
        return self.times_ns[mask], self.values[mask]


@dataclass
class Result:
    """A stored result, its raw timings as NumPy arrays; ``bundle`` is the whole stored JSON."""
    id: str
    name: str
    status: str
    user: str
    board: Optional[str]
    toolchain: Optional[str]
    toolchain_version: Optional[str]
    started_at: str
    finished_at: str
    timings_ns: np.ndarray
    starts_ns: np.ndarray
    warmup_ns: np.ndarray
    summary: Optional[Dict[str, Any]]
    semantic_preservation: Optional[Dict[str, Any]]
    failure: Optional[Dict[str, Any]]
    probes: Dict[str, Probe]
    bundle: Dict[str, Any] = field(repr=False)

    @property
    def median_ns(self) -> Optional[float]:
        return None if self.summary is None else self.summary.get("median")

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Result":
        measurement = data.get("measurement") or {}
        warm_up = data.get("warm_up") or {}
        board = data.get("board") or {}
        toolchain = data.get("toolchain") or {}
        probes = {}
        for record in data.get("probes") or []:
            samples = record.get("samples") or []
            probes[record["name"]] = Probe(
                name=record["name"], rate_hz=float(record.get("rate_hz", 0.0)), channels=record.get("channels") or [],
                times_ns=np.array([s["timestamp_ns"] for s in samples], dtype=np.int64),
                channel_index=np.array([s["channel"] for s in samples], dtype=np.int64),
                values=np.array([s["value"] for s in samples], dtype=np.float64))
        return cls(
            id=data["id"], name=data["name"], status=data["status"], user=data.get("user", ""),
            board=board.get("name"), toolchain=toolchain.get("name"), toolchain_version=toolchain.get("version"),
            started_at=data.get("started_at", ""), finished_at=data.get("finished_at", ""),
            timings_ns=np.array(measurement.get("durations_ns") or [], dtype=np.int64),
            starts_ns=np.array(measurement.get("starts_ns") or [], dtype=np.int64),
            warmup_ns=np.array(warm_up.get("durations_ns") or [], dtype=np.int64),
            summary=measurement.get("summary"), semantic_preservation=data.get("semantic_preservation"),
            failure=data.get("failure"), probes=probes, bundle=data)


@dataclass
class Comparison:
    """Results against the first: ratio of medians, Mann–Whitney p (raw and Holm-adjusted)."""
    baseline: str
    level: float
    rows: List[Dict[str, Any]]
    text: str

    def row(self, result_id: str) -> Dict[str, Any]:
        return next(r for r in self.rows if r["id"] == result_id or r["id"].startswith(result_id))


@dataclass
class Event:
    """One server-sent event: its name (state, log, end) and its JSON data."""
    name: str
    data: Any
    id: Optional[str] = None


class Client:
    """The mlbench service at ``url`` (e.g. http://127.0.0.1:8080), as the user whose API
    token is ``token`` (default: $MLBENCH_TOKEN)."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("MLBENCH_TOKEN")
        self.timeout = timeout

    # -- HTTP ---------------------------------------------------------------------------

    def _open(self, method: str, path: str, body: Optional[bytes] = None, content_type: Optional[str] = None,
              params: Optional[Dict[str, Any]] = None, timeout: Optional[float] = None):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(url, data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                detail = json.loads(raw)["error"]
                raise APIError(error.code, detail.get("message", ""), detail.get("field")) from None
            except (ValueError, KeyError, TypeError):
                raise APIError(error.code, raw.decode("utf-8", "replace")) from None

    def request(self, method: str, path: str, json_body: Any = None, data: Optional[bytes] = None,
                params: Optional[Dict[str, Any]] = None, raw: bool = False) -> Any:
        """Calls the API; answers the decoded JSON (or the text when ``raw``; None for 204)."""
        body, content_type = data, "application/octet-stream" if data is not None else None
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        with self._open(method, path, body, content_type, params) as response:
            payload = response.read()
            if response.status == 204 or not payload:
                return None
            if raw:
                return payload.decode("utf-8")
            return json.loads(payload)

    # -- the service ----------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        return self.request("GET", "/api/v1/health")

    def me(self) -> Dict[str, Any]:
        return self.request("GET", "/api/v1/me")

    def openapi(self) -> Dict[str, Any]:
        return self.request("GET", "/api/v1/openapi.json")

    def metrics(self) -> str:
        return self.request("GET", "/metrics", raw=True)

    # -- files ------------------------------------------------------------------------------

    def upload(self, file: Union[str, os.PathLike, bytes], kind: Optional[str] = None) -> Upload:
        """Uploads a model (ONNX) or an input (.npy), from a path or bytes; answers its SHA-256."""
        data = file if isinstance(file, (bytes, bytearray)) else open(file, "rb").read()
        answer = self.request("POST", "/api/v1/files", data=bytes(data), params={"kind": kind})
        return Upload(**{k: answer.get(k) for k in Upload.__dataclass_fields__})

    # -- experiments ------------------------------------------------------------------------

    @staticmethod
    def _referenced_files(definition: Dict[str, Any]) -> Dict[str, str]:
        """Paths a definition names, with the kind each must be uploaded as."""
        found = {}
        if isinstance(definition.get("model"), str):
            found[definition["model"]] = "model"
        for path in (definition.get("inputs") or {}).values():
            found.setdefault(path, "input")
        reference = definition.get("reference") or {}
        if isinstance(reference.get("model"), str):
            found[reference["model"]] = "model"
        for path in (reference.get("outputs") or {}).values():
            found.setdefault(path, "input")
        labels = ((definition.get("semantic_preservation") or {}).get("labels") or {}).get("file")
        if isinstance(labels, str):
            found.setdefault(labels, "input")
        return {k: v for k, v in found.items() if not k.startswith("sha256:")}

    def _prepare(self, definition: Union[str, Dict[str, Any]], files: Optional[Dict[str, Any]],
                 base: Optional[str]) -> "tuple[str, Dict[str, str]]":
        """Uploads what the definition needs; answers its text and the name → SHA-256 map."""
        hashes: Dict[str, str] = {}
        kinds: Dict[str, str] = {}
        if isinstance(definition, dict):
            kinds = self._referenced_files(definition)
            text = json.dumps(definition)
            if files is None:
                files = {name: os.path.join(base or ".", name) for name in kinds}
        else:
            text = definition
        for name, source in (files or {}).items():
            if isinstance(source, str) and len(source) == 64 and all(c in "0123456789abcdef" for c in source):
                hashes[name] = source  # already uploaded
            else:
                hashes[name] = self.upload(source, kind=kinds.get(name)).sha256
        return text, hashes

    def submit(self, definition: Union[str, Dict[str, Any]], files: Optional[Dict[str, Any]] = None,
               base: Optional[str] = None, series: Optional[str] = None, board: Optional[str] = None,
               any_board: bool = False, notify_email: Optional[str] = None,
               notify_webhook: Optional[str] = None) -> Experiment:
        """Submits an experiment. ``definition``: a dict (its model, inputs, reference outputs
        and labels are uploaded from ``base``, or from ``files``: name → path, bytes or SHA-256)
        or YAML/JSON text (``files`` must then map every name it uses)."""
        text, hashes = self._prepare(definition, files, base)
        answer = self.request("POST", "/api/v1/experiments", {
            "definition": text, "files": hashes, "series": series, "board": board, "any_board": any_board,
            "notify_email": notify_email, "notify_webhook": notify_webhook})
        return Experiment.from_json(answer)

    def sweep(self, definition: Union[str, Dict[str, Any]], parameters: Optional[List[str]] = None,
              boards: Optional[List[str]] = None, files: Optional[Dict[str, Any]] = None, base: Optional[str] = None,
              series: Optional[str] = None) -> "tuple[str, List[Experiment]]":
        """Queues the experiment on every compatible board and swept combination (PATH=V1,V2)."""
        text, hashes = self._prepare(definition, files, base)
        answer = self.request("POST", "/api/v1/sweeps", {
            "definition": text, "files": hashes, "parameters": parameters or [], "boards": boards or [], "series": series})
        return answer["series"], [Experiment.from_json(e) for e in answer["experiments"]]

    def experiments(self, state: Optional[str] = None, series: Optional[str] = None,
                    user: Optional[str] = None) -> List[Experiment]:
        answer = self.request("GET", "/api/v1/experiments", params={"state": state, "series": series, "user": user})
        return [Experiment.from_json(e) for e in answer]

    def experiment(self, experiment_id: str) -> Experiment:
        return Experiment.from_json(self.request("GET", f"/api/v1/experiments/{experiment_id}"))

    def log(self, experiment_id: str, after: int = 0) -> List[str]:
        return [line["line"] for line in self.request("GET", f"/api/v1/experiments/{experiment_id}/log", params={"after": after})]

    def events(self, experiment_id: str, timeout: float = 600.0) -> Iterator[Event]:
        """The experiment's server-sent events until it ends (``end``) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        response = self._open("GET", f"/api/v1/experiments/{experiment_id}/events", timeout=min(timeout, 60.0))
        with response:
            name, data, event_id = None, [], None
            while time.monotonic() < deadline:
                line = response.readline()
                if not line:
                    return
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if name is not None:
                        event = Event(name, json.loads("\n".join(data)) if data else None, event_id)
                        yield event
                        if name == "end":
                            return
                    name, data, event_id = None, [], None
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line.startswith("id:"):
                    event_id = line[3:].strip()

    def follow(self, experiment_id: str, timeout: float = 600.0,
               on_event: Optional[Callable[[Event], None]] = None, poll: float = 1.0) -> Experiment:
        """Follows the experiment until it is final (server-sent events; polling if the stream
        breaks) and answers it; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                for event in self.events(experiment_id, timeout=max(1.0, deadline - time.monotonic())):
                    if on_event:
                        on_event(event)
                    if event.name == "end":
                        return Experiment.from_json(event.data)
            except (OSError, urllib.error.URLError):
                pass
            experiment = self.experiment(experiment_id)
            if experiment.final:
                return experiment
            time.sleep(poll)
        raise TimeoutError(f"experiment {experiment_id} is not final after {timeout} s")

    def wait(self, experiment_id: str, timeout: float = 600.0, poll: float = 1.0) -> Experiment:
        """Polls until the experiment is final."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            experiment = self.experiment(experiment_id)
            if experiment.final:
                return experiment
            time.sleep(poll)
        raise TimeoutError(f"experiment {experiment_id} is not final after {timeout} s")

    def _control(self, verb: str, experiment_id: Optional[str], series: Optional[str]) -> int:
        if (experiment_id is None) == (series is None):
            raise ValueError("name an experiment id or a series")
        path = f"/api/v1/experiments/{experiment_id}/{verb}" if experiment_id else f"/api/v1/series/{urllib.parse.quote(series)}/{verb}"
        return self.request("POST", path)["changed"]

    def abort(self, experiment_id: Optional[str] = None, series: Optional[str] = None) -> int:
        return self._control("abort", experiment_id, series)

    def suspend(self, experiment_id: Optional[str] = None, series: Optional[str] = None) -> int:
        return self._control("suspend", experiment_id, series)

    def resume(self, experiment_id: Optional[str] = None, series: Optional[str] = None) -> int:
        return self._control("resume", experiment_id, series)

    def share_experiment(self, experiment_id: str, user: str) -> Dict[str, Any]:
        return self.request("POST", f"/api/v1/experiments/{experiment_id}/shares", {"user": user})

    def unshare_experiment(self, experiment_id: str, user: str) -> None:
        self.request("DELETE", f"/api/v1/experiments/{experiment_id}/shares/{user}")

    # -- results ------------------------------------------------------------------------------

    def results(self, limit: int = 50) -> List[ResultHeadline]:
        return [ResultHeadline.from_json(r) for r in self.request("GET", "/api/v1/results", params={"limit": limit})]

    def result(self, result_id: str) -> Result:
        return Result.from_json(self.request("GET", f"/api/v1/results/{result_id}"))

    def result_summary(self, result_id: str) -> str:
        return self.request("GET", f"/api/v1/results/{result_id}/summary", raw=True)

    def compare(self, ids: List[str]) -> Comparison:
        answer = self.request("POST", "/api/v1/results/compare", {"ids": list(ids)})
        return Comparison(answer["baseline"], answer["level"], answer["results"], answer["text"])

    def export(self, ids: Optional[List[str]] = None, format: str = "json") -> str:
        return self.request("GET", "/api/v1/results/export", params={"ids": ",".join(ids or []) or None, "format": format}, raw=True)

    def share_result(self, result_id: str, user: str) -> Dict[str, Any]:
        return self.request("POST", f"/api/v1/results/{result_id}/shares", {"user": user})

    def unshare_result(self, result_id: str, user: str) -> None:
        self.request("DELETE", f"/api/v1/results/{result_id}/shares/{user}")

    def delete_result(self, result_id: str) -> None:
        self.request("DELETE", f"/api/v1/results/{result_id}")

    # -- boards, messages (operators) ------------------------------------------------------------

    def boards(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/api/v1/boards")

    def disable_board(self, name: str, note: Optional[str] = None) -> Dict[str, Any]:
        return self.request("POST", f"/api/v1/boards/{name}/disable", {"note": note} if note else None)

    def enable_board(self, name: str, note: Optional[str] = None) -> Dict[str, Any]:
        return self.request("POST", f"/api/v1/boards/{name}/enable", {"note": note} if note else None)

    def set_board_health(self, name: str, health: str, note: Optional[str] = None) -> Dict[str, Any]:
        return self.request("PUT", f"/api/v1/boards/{name}/health", {"health": health, "note": note})

    def messages(self, limit: int = 100) -> List[Dict[str, Any]]:
        return self.request("GET", "/api/v1/messages", params={"limit": limit})

    def post_message(self, text: str, to: Optional[str] = None) -> Dict[str, Any]:
        return self.request("POST", "/api/v1/messages", {"text": text, "to": to})

    # -- users (admins) ----------------------------------------------------------------------------

    def users(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/api/v1/users")

    def add_user(self, name: str, role: str = "user") -> Dict[str, Any]:
        return self.request("POST", "/api/v1/users", {"name": name, "role": role})

    def issue_token(self, name: str, label: Optional[str] = None) -> str:
        return self.request("POST", f"/api/v1/users/{name}/tokens", {"label": label})["token"]
