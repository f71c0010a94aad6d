"""End to end: a real MLServer (from PyPI) serving a scikit-learn model, and `inferlog proxy` in front of it.

Every call is made twice, once straight to MLServer and once through the proxy (a real
``python -m inferlog proxy`` process writing a SQLite log), and the two answers are compared. The
records are read back from the store after the proxy has shut down (and so flushed its spool).
"""

from __future__ import annotations

import json
import os
import random
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.datasets import load_iris

from inferlog.record.ids import is_uuid
from inferlog.record.model import InferenceRecord
from tests.fix_mlserver import MODEL, VERSION, MLServer, ProxyProcess

# Headers that may differ between two answers to the same call: the time it was answered, and the
# id the proxy adds. Everything else (server, content-type, content-length, content-encoding, vary,
# MLServer's ce-* headers) must be the same, and each exactly once.
VARYING = {"date", "x-request-id"}
# MLServer makes up a random response id (body "id", ce-id, ce-requestid) for a request without one.
RANDOM_ID = {"ce-id", "ce-requestid"}


@pytest.fixture
def proxy(mlserver: MLServer, tmp_path: Path) -> Iterator[ProxyProcess]:
    """`inferlog proxy` in front of the MLServer, logging to a SQLite file in tmp_path."""
    running = ProxyProcess(mlserver.url, tmp_path / "log.db", timeout=2.0)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Call:
    """One HTTP call, and what the proxy's record of it must say."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    infer: bool = False
    request_json: Any = None  # what the record's input must be
    expect_status: int | None = None  # pinned for the bad calls, so a passing test proves they were bad


def _infer(rows: list[list[float]], *, version: bool = False, rid: str | None = None, **extra: Any) -> Call:
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}],
        **extra,
    }
    path = f"/v2/models/{MODEL}" + (f"/versions/{VERSION}" if version else "") + "/infer"
    return _json_call(path, body, rid=rid)


def _json_call(path: str, body: Any, *, rid: str | None = None, expect: int | None = None) -> Call:
    headers = {"content-type": "application/json", "x-user": "alice"}
    if rid is not None:
        headers["x-request-id"] = rid
    return Call("POST", path, json.dumps(body).encode(), headers, True, body, expect)


def _calls(n_valid: int) -> list[Call]:
    """``n_valid`` good infer calls in varied shapes, bad ones, and pass-through routes, shuffled (seeded)."""
    rng = random.Random(6)
    x, _ = load_iris(return_X_y=True)
    rows = x.tolist()
    calls: list[Call] = []
    for i in range(n_valid):
        batch = [rows[rng.randrange(len(rows))] for _ in range(rng.choice((1, 1, 2, 3, 5)))]
        extra: dict[str, Any] = {}
        if i % 10 != 3:  # MLServer answers an id-less request with a random id: some of those too
            extra["id"] = f"req-{i}"
        if i % 7 == 0:
            extra["outputs"] = [{"name": "predict"}]
        if i % 11 == 0:
            extra["parameters"] = {"content_type": "np"}
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if i % 9 == 0 else None
        calls.append(_infer(batch, version=i % 4 == 0, rid=rid, **extra))
    big = [rows[i % len(rows)] for i in range(400)]  # an answer big enough for MLServer to gzip
    calls += [_infer(big, id="big-1"), _infer(big, version=True, id="big-2")]
    good = {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
    bad: list[tuple[str, Any, int]] = [
        (f"/v2/models/{MODEL}/infer", {"id": "b1", "inputs": [good | {"datatype": "WRONG"}]}, 422),
        (f"/v2/models/{MODEL}/infer", {"id": "b2", "inputs": [good | {"datatype": "BYTES",
                                                                     "data": ["a", "b", "c", "d"]}]}, 500),
        (f"/v2/models/{MODEL}/infer", {"id": "b3", "inputs": [good | {"data": [5.1, 3.5, 1.4]}]}, 500),
        (f"/v2/models/{MODEL}/infer", {"id": "b4", "inputs": [good | {"shape": [1, 3],
                                                                     "data": [5.1, 3.5, 1.4]}]}, 500),
        (f"/v2/models/{MODEL}/versions/{VERSION}/infer", {"id": "b5", "inputs": "nope"}, 422),
        ("/v2/models/nope/infer", {"id": "b6", "inputs": [good]}, 404),
        (f"/v2/models/{MODEL}/versions/v9/infer", {"id": "b7", "inputs": [good]}, 404),
    ]  # fmt: skip
    for path, body, status in bad:
        calls += [_json_call(path, body, expect=status) for _ in range(3)]
    not_json = Call("POST", f"/v2/models/{MODEL}/infer", b"not json", {"content-type": "application/json"},
                    True, {"body": "not json"}, 422)  # fmt: skip
    calls += [not_json, not_json]
    for path in ("/v2/health/ready", "/v2/health/live", f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/ready",
                 "/v2", "/v2/models/nope", "/v2/models/nope/ready"):  # fmt: skip
        calls += [Call("GET", path), Call("GET", path)]
    rng.shuffle(calls)
    return calls


def _send(client: httpx.Client, base: str, call: Call) -> httpx.Response:
    return client.request(call.method, base + call.path, content=call.body, headers=call.headers)


def _comparable(call: Call, response: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    """Status, body (JSON when JSON) and headers, less what legitimately differs between two answers."""
    skip = VARYING | (RANDOM_ID if _random_id(call) else set())
    headers = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in skip)
    try:
        body: Any = response.json()
    except ValueError:
        return response.status_code, response.content, headers
    if _random_id(call) and isinstance(body, dict):
        body.pop("id", None)
    return response.status_code, body, headers


def _random_id(call: Call) -> bool:
    return call.infer and isinstance(call.request_json, dict) and "id" not in call.request_json


def _check_answers(call: Call, direct: httpx.Response, proxied: httpx.Response) -> None:
    assert _comparable(call, proxied) == _comparable(call, direct), call
    if not _random_id(call):
        assert proxied.content == direct.content
    if call.expect_status is not None:
        assert direct.status_code == call.expect_status, (call, direct.text)
    names = [k.lower() for k, _ in proxied.headers.multi_items()]
    assert names.count("date") == 1
    assert names.count("server") == 1
    assert names.count("x-request-id") == 1
    sent = call.headers.get("x-request-id")
    assert proxied.headers["x-request-id"] == (sent or proxied.headers["x-request-id"])
    assert is_uuid(proxied.headers["x-request-id"])


def _check_record(call: Call, answer: httpx.Response, rec: InferenceRecord) -> None:
    """The record of one infer call says exactly what was sent and what MLServer answered."""
    assert rec.request_id == rec.id == answer.headers["x-request-id"]
    assert rec.source == "oip"
    assert rec.system == "iris"
    assert rec.input == call.request_json
    assert rec.latency_ms is not None
    assert rec.latency_ms > 0
    assert rec.attributes["http_status"] == answer.status_code
    assert rec.attributes["oip_path"] == call.path
    url_name, _, rest = call.path.removeprefix("/v2/models/").partition("/")
    url_version = rest.split("/")[1] if rest.startswith("versions/") else ""
    if answer.status_code == 200:
        assert rec.status == "ok"
        assert rec.error is None
        assert (rec.model.name, rec.model.version) == (MODEL, VERSION)
        assert rec.output == answer.json()
        tensor = rec.output["outputs"][0]
        assert tensor["datatype"] == "INT64"
        assert tensor["shape"] == [len(call.request_json["inputs"][0]["data"]), 1]
        assert rec.input["inputs"][0]["datatype"] == "FP64"
    else:
        assert rec.status == "error"
        assert rec.error is not None
        assert rec.error.type == f"HTTP {answer.status_code}"
        assert (rec.model.name, rec.model.version) == (url_name, url_version)
        try:
            said = answer.json()
        except ValueError:
            said = {"body": answer.text}
        assert rec.output == said
        if isinstance(said, dict) and "error" in said:
            assert rec.error.message == said["error"]
    assert rec.actor == call.headers.get("x-user")
    if url_name == MODEL:
        assert rec.attributes["model_platform"] == "sklearn"
        assert rec.attributes["model_versions"] == [VERSION]


def test_every_answer_matches_mlserver_and_every_infer_call_is_one_record(
    mlserver: MLServer, proxy: ProxyProcess
) -> None:
    """200 good infer calls, bad shapes and types, unknown models, non-JSON and pass-through routes:
    the proxy's answer is MLServer's (status, body, headers), and each infer call is exactly one
    record whose id is the X-Request-ID, with the right model, version, input and output tensors."""
    calls = _calls(200)
    answers: list[tuple[Call, httpx.Response]] = []
    with httpx.Client(timeout=30) as client:
        for call in calls:
            direct = _send(client, mlserver.url, call)
            proxied = _send(client, proxy.url, call)
            _check_answers(call, direct, proxied)
            answers.append((call, proxied))
        gzipped = [r for c, r in answers if r.headers.get("content-encoding") == "gzip"]
        assert len(gzipped) == 2, "the big answers come gzipped, through the proxy as directly"

    concurrent = [_infer([[6.7, 3.0, 5.2, 2.3]] * (1 + i % 3), id=f"par-{i}") for i in range(40)]

    def both(call: Call) -> tuple[Call, httpx.Response]:
        with httpx.Client(timeout=30) as client:
            direct = _send(client, mlserver.url, call)
            proxied = _send(client, proxy.url, call)
        _check_answers(call, direct, proxied)
        return call, proxied

    with ThreadPoolExecutor(8) as pool:
        answers += list(pool.map(both, concurrent))

    proxy.stop()
    records = {r.id: r for r in proxy.records()}
    infers = [(c, r) for c, r in answers if c.infer]
    assert len(records) == len(infers), "exactly one record per infer call, none for other routes"
    for call, answer in infers:
        _check_record(call, answer, records[answer.headers["x-request-id"]])
    statuses = sorted({r.status_code for _, r in infers})
    assert statuses == [200, 404, 422, 500]
    assert sum(1 for _, r in infers if r.status_code == 200) == 200 + 2 + 40


def test_paused_and_stopped_upstream_are_504_and_502_and_error_records(
    mlserver: MLServer, proxy: ProxyProcess
) -> None:
    """A frozen MLServer gives the caller 504, a killed one 502; each call is still exactly one record."""
    assert mlserver.proc is not None
    call = _infer([[5.1, 3.5, 1.4, 0.2]], version=True, id="s1")
    got: list[httpx.Response] = []
    with httpx.Client(timeout=30) as client:
        got.append(_send(client, proxy.url, call))
        os.killpg(mlserver.proc.pid, signal.SIGSTOP)
        try:
            got.append(_send(client, proxy.url, call))
        finally:
            os.killpg(mlserver.proc.pid, signal.SIGCONT)
        got.append(_send(client, proxy.url, call))
        mlserver.stop()
        got.append(_send(client, proxy.url, call))
        health = client.get(proxy.url + "/v2/health/ready")
    assert [r.status_code for r in got] == [200, 504, 200, 502]
    assert got[1].json() == {"error": "upstream timed out"}
    assert got[3].json() == {"error": "upstream unreachable"}
    assert health.status_code == 502
    assert all(r.headers.get("date") for r in got)

    proxy.stop()
    records = {r.id: r for r in proxy.records()}
    assert len(records) == 4
    for answer in got:
        rec = records[answer.headers["x-request-id"]]
        assert rec.input == call.request_json
        assert rec.model.name == MODEL
        assert rec.model.version == VERSION
        assert rec.attributes["http_status"] == answer.status_code
        if answer.status_code == 200:
            assert rec.status == "ok"
            assert rec.output == answer.json()
            continue
        assert rec.status == "error"
        assert rec.output is None
        assert rec.error is not None
        assert rec.latency_ms is not None
        if answer.status_code == 504:
            assert "timed out" in rec.error.message
            assert rec.latency_ms >= 2000 * 0.9
        else:
            assert "unreachable" in rec.error.message
