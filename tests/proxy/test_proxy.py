"""The OIP proxy between a real client and a real (in-process, uvicorn-served) scikit-learn OIP server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

import inferlog
from inferlog.errors import NotDurable
from inferlog.proxy import create_proxy
from inferlog.record.model import InferenceRecord
from inferlog.sdk.client import Log
from tests.helpers import free_port, inferences, wait_for


class Served:
    """An ASGI app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def model_server() -> Starlette:
    """A tiny OIP v2 server with a real logistic regression on iris."""
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x, y)

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    async def meta(request: Request) -> JSONResponse:
        if request.path_params["name"] != "iris":
            return JSONResponse({"error": "unknown model"}, 404)
        return JSONResponse(
            {
                "name": "iris",
                "versions": ["1"],
                "platform": "sklearn_joblib",
                "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
                "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}],
            }
        )

    async def infer(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            tensor = body["inputs"][0]
            data = np.asarray(tensor["data"], dtype=float).reshape(tensor["shape"])
            if data.ndim != 2 or data.shape[1] != 4:
                raise ValueError(f"expected shape [n, 4], got {list(data.shape)}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        labels = clf.predict(data).tolist()
        out: dict[str, Any] = {
            "model_name": "iris",
            "model_version": "1",
            "outputs": [{"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": labels}],
        }
        if "id" in body:
            out["id"] = body["id"]
        return JSONResponse(out, headers={"x-model": "iris"})

    async def moved(request: Request) -> RedirectResponse:
        return RedirectResponse("/v2/health/ready", 307)

    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(1.0)
        return JSONResponse({"model_name": "slow", "outputs": []})

    return Starlette(
        routes=[
            Route("/v2/models/slow/infer", slow, methods=["POST"]),
            Route("/v2/health/ready", ready),
            Route("/v2/moved", moved),
            Route("/v2/models/{name}", meta),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
            Route("/v2/models/{name}/versions/{v}/infer", infer, methods=["POST"]),
        ]
    )


class Rig:
    def __init__(self, upstream: Served, proxy: Served, log: Log) -> None:
        self.upstream = upstream
        self.proxy = proxy
        self.log = log

    def records(self) -> list[InferenceRecord]:
        self.log.flush()
        page = self.log.query(kind="inference", limit=1000)
        return inferences(page)


def _rig(tmp_path: Path, fail_closed: bool = False) -> Iterator[Rig]:
    upstream = Served(model_server())
    log = inferlog.open(
        f"sqlite:///{tmp_path / 'log.db'}",
        system="iris",
        spool_dir=tmp_path / "spool",
        fail_closed=fail_closed,
    )
    proxy = Served(create_proxy(upstream.url, log, identity_header="X-User", timeout=5.0))
    try:
        yield Rig(upstream, proxy, log)
    finally:
        proxy.stop()
        upstream.stop()
        log.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A model server, a proxy in front of it, and the Log the proxy writes."""
    yield from _rig(tmp_path)


def _infer_body(rows: list[list[float]]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [len(rows), 4], "datatype": "FP64", "data": rows}]}


def test_responses_match_direct_and_each_infer_is_one_record(rig: Rig) -> None:
    """Through the proxy every answer equals the direct one, and each infer call is exactly one typed record."""
    x, _ = load_iris(return_X_y=True)
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/models/iris", None),
        ("GET", "/v2/models/nope", None),
    ]
    infers = 0
    for i in range(0, 30, 3):
        calls.append(("POST", "/v2/models/iris/infer", _infer_body(x[i : i + 3].tolist())))
        infers += 1
    calls.append(("POST", "/v2/models/iris/versions/1/infer", _infer_body([[1.0, 2.0, 3.0, 4.0]])))
    calls.append(
        (
            "POST",
            "/v2/models/iris/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
        )
    )
    infers += 2
    with httpx.Client() as c:
        for method, path, body in calls:
            direct = c.request(method, rig.upstream.url + path, json=body)
            proxied = c.request(method, rig.proxy.url + path, json=body, headers={"X-User": "alice"})
            assert proxied.status_code == direct.status_code
            assert proxied.content == direct.content
            assert proxied.headers.get("content-type") == direct.headers.get("content-type")
            assert proxied.headers.get("x-model") == direct.headers.get("x-model")
            assert proxied.headers["x-request-id"]
    records = rig.records()
    assert len(records) == infers
    assert len({r.request_id for r in records}) == infers
    ok = [r for r in records if r.status == "ok"]
    assert all((r.model.name, r.model.version) == ("iris", "1") for r in ok)
    assert all(r.model.name == "iris" for r in records)
    assert all(r.actor == "alice" for r in records)
    assert all(r.source == "oip" for r in records)
    assert all(r.attributes["model_platform"] == "sklearn_joblib" for r in records)
    first = ok[0]
    assert first.input == _infer_body(x[0:3].tolist())
    assert first.output["outputs"][0]["datatype"] == "INT64"
    assert first.output["outputs"][0]["data"] == [0, 0, 0]
    (bad,) = [r for r in records if r.status == "error"]
    assert bad.error is not None
    assert bad.error.type == "HTTP 400"
    assert "shape" in bad.error.message


def test_caller_request_id_is_kept_and_used_as_record_id(rig: Rig) -> None:
    """A lowercase-UUID X-Request-ID comes back unchanged and becomes the record id."""
    rid = str(uuid.uuid4())
    done = httpx.post(
        rig.proxy.url + "/v2/models/iris/infer",
        json=_infer_body([[5.1, 3.5, 1.4, 0.2]]),
        headers={"X-Request-ID": rid},
    )
    assert done.status_code == 200
    assert done.headers["x-request-id"] == rid
    (rec,) = rig.records()
    assert rec.id == rid
    assert rec.request_id == rid


def test_stopped_upstream_is_502_and_an_error_record(rig: Rig) -> None:
    """With the model server gone the caller gets 502 and the log an error record."""
    rig.upstream.stop()
    done = httpx.post(rig.proxy.url + "/v2/models/iris/infer", json=_infer_body([[5.1, 3.5, 1.4, 0.2]]))
    assert done.status_code == 502
    (rec,) = rig.records()
    assert rec.status == "error"
    assert rec.error is not None
    assert "unreachable" in rec.error.message


def test_fail_closed_answers_503_when_not_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fail-closed proxy whose log cannot make a record durable answers 503, not the model's result."""
    for rig in _rig(tmp_path, fail_closed=True):

        def broken(payload: bytes) -> None:
            raise NotDurable("disk full")

        monkeypatch.setattr(rig.log._spool, "append", broken)
        done = httpx.post(rig.proxy.url + "/v2/models/iris/infer", json=_infer_body([[5.1, 3.5, 1.4, 0.2]]))
        assert done.status_code == 503
        assert "label" not in done.text
        ready = httpx.get(rig.proxy.url + "/v2/health/ready")
        assert ready.status_code == 200


def test_upstream_timeout_is_504_and_an_error_record(rig: Rig) -> None:
    """A model slower than the proxy's timeout gives the caller 504 and the log an error record."""
    quick = Served(create_proxy(rig.upstream.url, rig.log, timeout=0.2))
    try:
        done = httpx.post(quick.url + "/v2/models/slow/infer", json=_infer_body([[1.0, 2.0, 3.0, 4.0]]))
    finally:
        quick.stop()
    assert done.status_code == 504
    (rec,) = rig.records()
    assert rec.status == "error"
    assert rec.model.name == "slow"
    assert rec.error is not None
    assert "timed out" in rec.error.message


def test_redirects_are_passed_back_not_followed(rig: Rig) -> None:
    """An upstream redirect reaches the caller as it is (status and Location), like every other answer."""
    done = httpx.get(rig.proxy.url + "/v2/moved")
    assert done.status_code == 307
    assert done.headers["location"] == "/v2/health/ready"


def test_a_blocked_record_does_not_stall_other_proxied_calls(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one call's record() is blocked (a full spool waiting for room), other proxied calls are answered."""
    release = threading.Event()
    entered = threading.Event()
    append = rig.log._spool.append

    def full_for_one_call(payload: bytes) -> Any:
        if b"blocked-call" in payload:  # this record waits, as record() does on a full spool
            entered.set()
            release.wait(60)
        return append(payload)

    monkeypatch.setattr(rig.log._spool, "append", full_for_one_call)
    url = rig.proxy.url + "/v2/models/iris/infer"
    answers: dict[str, httpx.Response] = {}

    def blocked_call() -> None:
        answers["blocked"] = httpx.post(
            url,
            json=_infer_body([[5.1, 3.5, 1.4, 0.2]]),
            headers={"x-request-id": "blocked-call"},
            timeout=120,
        )

    caller = threading.Thread(target=blocked_call)
    caller.start()
    try:
        assert entered.wait(30), "the first call's record() never ran"
        other = httpx.post(url, json=_infer_body([[6.7, 3.0, 5.2, 2.3]]), timeout=30)
        answered_while_blocked = not release.is_set()
    finally:
        release.set()
        caller.join(60)
    assert other.status_code == 200
    assert answered_while_blocked
    assert answers["blocked"].status_code == 200
    records = rig.records()
    assert len(records) == 2
    assert "blocked-call" in {rec.request_id for rec in records}


def test_records_carry_the_registered_digest_and_uri(rig: Rig) -> None:
    """An infer call names a model and version only: the proxy's records get the registered digest and URI."""
    digest = "sha256:" + "f" * 64
    with httpx.Client() as c:
        assert c.post(
            rig.proxy.url + "/v2/models/iris/infer", json=_infer_body([[1.0, 2.0, 3.0, 4.0]])
        ).is_success
        rig.log.register_model("iris", "1", digest=digest, uri="mlflow://runs/iris-1")
        assert c.post(
            rig.proxy.url + "/v2/models/iris/infer", json=_infer_body([[1.0, 2.0, 3.0, 4.0]])
        ).is_success
    before, after = rig.records()
    assert (before.model.digest, before.model.uri) == (None, None)
    assert (after.model.name, after.model.version) == ("iris", "1")
    assert (after.model.digest, after.model.uri) == (digest, "mlflow://runs/iris-1")


def test_the_metadata_schema_is_recorded_once_per_model_version(rig: Rig) -> None:
    """The upstream's OIP metadata gives iris 1 one ``model.schema`` entry (source oip), however many calls."""
    with httpx.Client() as c:
        for _ in range(3):
            assert c.post(
                rig.proxy.url + "/v2/models/iris/infer", json=_infer_body([[1.0, 2.0, 3.0, 4.0]])
            ).is_success
    assert len(rig.records()) == 3
    (schema,) = rig.log.model_schemas()
    assert (schema.name, schema.version, schema.source, schema.changed) == ("iris", "1", "oip", False)
    assert schema.inputs == [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}]
    assert schema.outputs == [{"name": "label", "datatype": "INT64", "shape": [-1]}]
    admin = rig.log.query(kind="admin", limit=100)
    assert [getattr(e.entry, "action", None) for e in admin.entries] == ["model.schema"]
