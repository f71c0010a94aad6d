"""The KServe InferenceLogger sink: pure parsing and joining, and the real app over a SQLite store."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.ingest import kserve
from inferlog.lineage import register_model
from inferlog.record.model import InferenceRecord
from inferlog.server import create_app
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import inferences

OIP_REQUEST = {
    "id": "42",
    "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}],
}
OIP_RESPONSE = {
    "model_name": "sklearn-iris",
    "model_version": "v3",
    "id": "42",
    "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [1]}],
}


def headers(ce_id: str, half: str, when: str) -> dict[str, str]:
    """Exactly what KServe's agent sends (formats.md §2), in Go's canonical header case."""
    return {
        "Ce-Specversion": "1.0",
        "Ce-Id": ce_id,
        "Ce-Type": f"org.kubeflow.serving.inference.{half}",
        "Ce-Source": "sklearn-iris-predictor-00001-deployment-5d7c9b",
        "Ce-Time": when,
        "Ce-Recordedtime": when,
        "Ce-Inferenceservicename": "sklearn-iris",
        "Ce-Namespace": "models",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": '{"X-Request-Id":["abc"]}',
        "Content-Type": "application/json",
    }


# An hour ago: a server accepts times within INFERLOG_MAX_RECORD_AGE (a fixed date would age out).
_HOUR_AGO = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
REQ_TIME = _HOUR_AGO.strftime("%Y-%m-%dT%H:%M:%S.000Z")
RESP_TIME = _HOUR_AGO.strftime("%Y-%m-%dT%H:%M:%S.250Z")


def test_binary_parse_is_case_insensitive() -> None:
    """Headers in any case give the same event, with extensions and the body kept."""
    h = headers("a1", "request", REQ_TIME)
    lower = kserve.parse_binary({k.lower(): v for k, v in h.items()}, b"{}")
    canon = kserve.parse_binary(h, b"{}")
    assert lower == canon
    assert canon.half == "request"
    assert canon.extensions["inferenceservicename"] == "sklearn-iris"
    assert "specversion" not in canon.extensions


def test_record_id_is_deterministic_uuidv8() -> None:
    """The same (source, id) always gives the same version-8, RFC-variant UUID; another id does not."""
    a = kserve.record_id("pod", "1")
    assert a == kserve.record_id("pod", "1")
    assert a != kserve.record_id("pod", "2")
    assert a[14] == "8"
    assert a[19] in "89ab"
    assert a == a.lower()


def test_join_builds_one_full_record() -> None:
    """The joined record has the OIP tensors as-is, the model from the response, latency and attributes."""
    req = kserve.parse_binary(headers("x", "request", REQ_TIME), json.dumps(OIP_REQUEST).encode())
    resp = kserve.parse_binary(headers("x", "response", RESP_TIME), json.dumps(OIP_RESPONSE).encode())
    rec = kserve.join(req, resp, system="iris")
    assert rec.input == OIP_REQUEST
    assert rec.output == OIP_RESPONSE
    assert (rec.model.name, rec.model.version) == ("sklearn-iris", "v3")
    assert rec.latency_ms == pytest.approx(250.0)
    assert rec.source == "kserve"
    assert rec.attributes["namespace"] == "models"
    assert rec.attributes["metadata"] == {"X-Request-Id": ["abc"]}
    assert rec.attributes["times"] == {"request": REQ_TIME, "response": RESP_TIME}
    assert "kserve_half" not in rec.attributes


def test_lone_half_and_non_json_body() -> None:
    """A lone request is marked, named from ce-inferenceservicename, and a non-JSON body is base64."""
    h = headers("y", "request", REQ_TIME) | {"Content-Type": "application/x-www-form-urlencoded"}
    rec = kserve.join(kserve.parse_binary(h, b"\xff\x00raw"), None, system="iris")
    assert rec.attributes["kserve_half"] == "request"
    assert rec.model.name == "sklearn-iris"
    assert rec.latency_ms is None
    assert rec.input == {
        "content_type": "application/x-www-form-urlencoded",
        "body_base64": base64.b64encode(b"\xff\x00raw").decode(),
    }


def test_structured_mode_parses() -> None:
    """A structured CloudEvent with data or data_base64 gives the same body and extensions."""
    doc = {
        "specversion": "1.0",
        "id": "s1",
        "type": "org.kubeflow.serving.inference.response",
        "source": "pod",
        "time": RESP_TIME,
        "datacontenttype": "application/json",
        "inferenceservicename": "iris",
        "data": OIP_RESPONSE,
    }
    event = kserve.parse_structured(json.dumps(doc).encode())
    assert json.loads(event.data) == OIP_RESPONSE
    assert event.extensions == {"inferenceservicename": "iris"}
    b64 = dict(doc)
    del b64["data"]
    b64["data_base64"] = base64.b64encode(json.dumps(OIP_RESPONSE).encode()).decode()
    assert json.loads(kserve.parse_structured(json.dumps(b64).encode()).data) == OIP_RESPONSE


def test_wrong_type_is_refused() -> None:
    """An event that is not a KServe inference event is invalid."""
    from inferlog.errors import RecordInvalid

    with pytest.raises(RecordInvalid):
        kserve.parse_binary({"ce-id": "1", "ce-type": "com.example.other"}, b"")


@dataclass
class Sink:
    client: TestClient
    store: SQLiteStore
    key: str

    def send(self, ce_id: str, half: str, **params: str) -> int:
        body = OIP_REQUEST if half == "request" else OIP_RESPONSE
        when = REQ_TIME if half == "request" else RESP_TIME
        done = self.client.post(
            "/v1/ingest/kserve",
            params={"key": self.key, **params},
            headers=headers(ce_id, half, when),
            content=json.dumps(body).encode(),
        )
        code: int = done.status_code
        return code

    def records(self) -> list[InferenceRecord]:
        page = self.store.query(Query(kind="inference", limit=1000))
        return inferences(page)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    """The real app over a SQLite file, with a short pending timeout."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    key = create_key(store, "ingest", ["iris"], "kserve logger")[0]
    app = create_app(store)
    app.state.kserve_pending_path = tmp_path / "pending.db"
    app.state.kserve_timeout = 3600.0
    with TestClient(app) as client:
        yield Sink(client, store, key)
        keeper = getattr(app.state, "kserve_pending", None)
        if keeper is not None:
            keeper.close()
    store.close()


@pytest.mark.parametrize(
    "order",
    [
        ("request", "response"),
        ("response", "request"),
        ("request", "request", "response"),
        ("response", "request", "response", "request"),
    ],
)
def test_each_order_gives_exactly_one_record(sink: Sink, order: tuple[str, ...]) -> None:
    """Request first, response first and redeliveries all end as exactly one joined record."""
    for half in order:
        assert sink.send("inf-1", half) == 202
    (rec,) = sink.records()
    assert rec.id == kserve.record_id("sklearn-iris-predictor-00001-deployment-5d7c9b", "inf-1")
    assert rec.input == OIP_REQUEST
    assert rec.output == OIP_RESPONSE
    assert rec.model.name == "sklearn-iris"
    assert rec.system == "iris"
    assert rec.latency_ms == pytest.approx(250.0)
    assert "kserve_half" not in rec.attributes


def test_many_interleaved_inferences(sink: Sink) -> None:
    """Interleaved halves of many inferences give one record each, none mixed up."""
    ids = [f"inf-{i}" for i in range(10)]
    halves = list(itertools.chain.from_iterable((i, "request") for i in ids)) + [
        x for i in reversed(ids) for x in (i, "response")
    ]
    for ce_id, half in zip(halves[::2], halves[1::2], strict=True):
        assert sink.send(ce_id, half) == 202
    records = sink.records()
    assert sorted(r.request_id or "" for r in records) == sorted(ids)


def test_structured_mode_through_the_app(sink: Sink) -> None:
    """Structured-mode halves join like binary ones."""
    for half, when, body in (("request", REQ_TIME, OIP_REQUEST), ("response", RESP_TIME, OIP_RESPONSE)):
        doc = {
            "specversion": "1.0",
            "id": "st-1",
            "type": f"org.kubeflow.serving.inference.{half}",
            "source": "pod-a",
            "time": when,
            "datacontenttype": "application/json",
            "inferenceservicename": "sklearn-iris",
            "data": body,
        }
        done = sink.client.post(
            "/v1/ingest/kserve",
            params={"key": sink.key},
            headers={"Content-Type": "application/cloudevents+json"},
            content=json.dumps(doc).encode(),
        )
        assert done.status_code == 202
    (rec,) = sink.records()
    assert rec.id == kserve.record_id("pod-a", "st-1")
    assert rec.output == OIP_RESPONSE


def test_lone_request_times_out_to_its_own_record(sink: Sink) -> None:
    """A request whose response never comes is recorded alone after the timeout; a late response is linked to it."""
    assert sink.send("lone", "request") == 202
    assert sink.records() == []
    keeper = sink.client.app.state.kserve_pending  # type: ignore[attr-defined]
    assert keeper.sweep(now=time.time() + 7200) == 1
    (rec,) = sink.records()
    assert rec.attributes["kserve_half"] == "request"
    assert rec.output is None
    assert sink.send("lone", "response") == 202
    late = [r for r in sink.records() if r.id != rec.id]
    assert [r.attributes["continues"] for r in late] == [rec.id]


def test_pending_half_survives_a_restart(sink: Sink, tmp_path: Path) -> None:
    """A half is on disk before the 202: a new sink over the same file completes the join."""
    assert sink.send("r1", "request") == 202
    app = sink.client.app
    app.state.kserve_pending.close()  # type: ignore[attr-defined]
    del app.state.kserve_pending  # type: ignore[attr-defined]
    assert sink.send("r1", "response") == 202
    (rec,) = sink.records()
    assert rec.input == OIP_REQUEST


def test_key_is_required_and_may_be_a_query_param(sink: Sink) -> None:
    """Without a key the sink answers 401; with ?key= it accepts."""
    done = sink.client.post("/v1/ingest/kserve", headers=headers("k", "request", REQ_TIME), content=b"{}")
    assert done.status_code == 401
    assert sink.send("k", "request") == 202


def test_system_param_must_be_allowed(sink: Sink) -> None:
    """A ?system= outside the key's systems is forbidden."""
    assert sink.send("s", "request", system="other") == 403


def test_joined_records_carry_the_registered_digest_and_uri(sink: Sink) -> None:
    """A KServe event names no artifact: the record gets the digest and URI registered for its model version."""
    digest = "sha256:" + "d" * 64
    register_model(sink.store, "sklearn-iris", "v3", digest=digest, uri="gs://models/iris/v3", actor="ops")
    app = sink.client.app
    assert isinstance(app, FastAPI)
    assert app.state.inferlog.lineage.wait_loaded(30)  # the copy loads in the background: wait for it
    assert sink.send("inf-lineage", "request") == 202
    assert sink.send("inf-lineage", "response") == 202
    (rec,) = sink.records()
    assert (rec.model.name, rec.model.version) == ("sklearn-iris", "v3")
    assert (rec.model.digest, rec.model.uri) == (digest, "gs://models/iris/v3")
