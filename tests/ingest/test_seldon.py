"""Seldon Core 2 Kafka messages: pure topic parsing and joining, and POST /v1/ingest/seldon over SQLite."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from inferlog.apikeys import create_key
from inferlog.errors import ProtobufMissing, RecordInvalid
from inferlog.ingest import oip_proto, seldon
from inferlog.lineage import register_model
from inferlog.record.model import InferenceRecord
from inferlog.server import create_app
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import inferences

# An hour ago (a server accepts times within INFERLOG_MAX_RECORD_AGE), fixed for the whole module.
KAFKA_MS = (int(time.time()) - 3600) * 1000

XID = "carjjolvqj3j2pfbut10"  # Seldon's request ids are XIDs (formats.md §3)
INPUTS = "seldon.seldon-mesh.model.iris.inputs"
OUTPUTS = "seldon.seldon-mesh.model.iris.outputs"
ERRORS = "seldon.seldon-mesh.errors.errors"
REQUEST = {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}
RESPONSE = {
    "model_name": "iris_1",
    "model_version": "1",
    "id": "7e2a2f0c-5a3b-4c1e-9f6d-3b8e0c1d2a4f",
    "parameters": {},
    "outputs": [{"name": "predict", "shape": [1, 1], "datatype": "INT64", "data": [2]}],
}


def kafka_headers(rid: str, stream: str) -> dict[str, str]:
    """The Kafka headers Seldon's gateways put on a message, as a bridge would pass them over HTTP."""
    return {
        "x-request-id": rid,
        "x-forwarded-for": "10.0.0.7",
        "x-user": "alice",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "seldon-infer-type": "json/inferModelRequest" if stream == "inputs" else "json/inferModelResponse",
    }


def test_topics_parse_with_dotted_prefixes_and_names() -> None:
    """Model and pipeline topics give namespace, kind, name and stream; dotted prefixes and names parse."""
    t = seldon.parse_topic(INPUTS)
    assert (t.prefix, t.namespace, t.kind, t.name, t.stream) == (
        "seldon",
        "seldon-mesh",
        "model",
        "iris",
        "inputs",
    )
    t = seldon.parse_topic("seldon.default.pipeline.mypipeline.outputs")
    assert (t.kind, t.name, t.stream) == ("pipeline", "mypipeline", "outputs")
    t = seldon.parse_topic("acme.prod.seldon.ml-team.model.fraud.v2.inputs")
    assert (t.prefix, t.namespace, t.name) == ("acme.prod.seldon", "ml-team", "fraud.v2")


def test_errors_topic_names_its_model_in_a_header() -> None:
    """`<prefix>.<ns>.errors.errors` takes the model from seldon-pipeline-errors, and needs it."""
    t = seldon.parse_topic(ERRORS, {"Seldon-Pipeline-Errors": "iris"})
    assert (t.namespace, t.kind, t.name, t.stream) == ("seldon-mesh", "model", "iris", "errors")
    with pytest.raises(RecordInvalid, match="seldon-pipeline-errors"):
        seldon.parse_topic(ERRORS, {})


@pytest.mark.parametrize("topic", ["seldon.ns.model.iris", "iris.inputs", "seldon.ns.thing.iris.inputs", ""])
def test_other_topics_are_refused(topic: str) -> None:
    """A topic that is not one of Seldon's is invalid, naming the topic field."""
    with pytest.raises(RecordInvalid, match="topic"):
        seldon.parse_topic(topic)


def test_value_format_from_the_header_or_the_bytes() -> None:
    """seldon-infer-type decides; without it a JSON value is JSON and anything else is taken for protobuf."""
    msg = seldon.parse(INPUTS, kafka_headers(XID, "inputs"), json.dumps(REQUEST).encode())
    assert seldon.value_format(msg) == "json"
    msg = seldon.parse(INPUTS, {"x-request-id": XID}, json.dumps(REQUEST).encode())
    assert seldon.value_format(msg) == "json"
    msg = seldon.parse(INPUTS, {"x-request-id": XID}, b"\x0a\x04iris\x1a\x02id")
    assert seldon.value_format(msg) == "proto"
    msg = seldon.parse(INPUTS, {"x-request-id": XID, "seldon-infer-type": "proto/InferModelRequest"}, b"{}")
    assert seldon.value_format(msg) == "proto"


def test_join_makes_one_full_record() -> None:
    """Inputs and outputs become one record: tensors as sent, model from the topic, latency from Kafka times."""
    req = seldon.parse(
        INPUTS, kafka_headers(XID, "inputs"), b"", partition=2, offset=40, timestamp_ms=1_790_000_000_000
    )
    resp = seldon.parse(
        OUTPUTS, kafka_headers(XID, "outputs"), b"", key="0.iris." + XID, timestamp_ms=1_790_000_000_012
    )
    rec = seldon.join(
        seldon.Half(message=req, body=REQUEST), seldon.Half(message=resp, body=RESPONSE), system="iris"
    )
    assert rec.id == seldon.record_id("seldon-mesh", "model", "iris", XID)
    assert rec.request_id == XID
    assert rec.input == REQUEST
    assert rec.output == RESPONSE
    assert (rec.model.name, rec.model.version) == ("iris", "1")
    assert rec.latency_ms == pytest.approx(12.0)
    assert rec.source == "seldon"
    assert rec.status == "ok"
    assert rec.attributes["namespace"] == "seldon-mesh"
    assert rec.attributes["kafka"]["inputs"] == {
        "topic": INPUTS,
        "partition": 2,
        "offset": 40,
        "timestamp_ms": 1_790_000_000_000,
    }
    assert rec.attributes["kafka"]["outputs"]["key"] == "0.iris." + XID
    assert rec.attributes["headers"]["x-user"] == "alice"
    assert "seldon_half" not in rec.attributes


def test_record_ids_are_scoped_to_the_resource() -> None:
    """The same x-request-id on two models (a pipeline's steps) gives two records, not one."""
    assert seldon.record_id("ns", "model", "a", XID) != seldon.record_id("ns", "model", "b", XID)
    assert seldon.record_id("ns", "model", "a", XID) != seldon.record_id("ns", "pipeline", "a", XID)
    assert seldon.record_id("ns", "model", "a", XID) != seldon.record_id("other", "model", "a", XID)


@dataclass
class Sink:
    client: TestClient
    store: SQLiteStore
    key: str

    def send(
        self,
        topic: str,
        rid: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **params: str,
    ) -> int:
        stream = topic.rsplit(".", 1)[-1]
        if body is None:
            body = json.dumps(REQUEST if stream == "inputs" else RESPONSE).encode()
        sent = {
            **(kafka_headers(rid, stream) if headers is None else headers),
            "x-kafka-topic": topic,
            "x-kafka-partition": "0",
            "x-kafka-offset": "17" if stream == "inputs" else "18",
            "x-kafka-timestamp": str(KAFKA_MS if stream == "inputs" else KAFKA_MS + 250),
            "x-kafka-key": f"0.iris.{rid}",
            "Authorization": f"Bearer {self.key}",
        }
        done = self.client.post("/v1/ingest/seldon", params=params, headers=sent, content=body)
        code: int = done.status_code
        return code

    def records(self) -> list[InferenceRecord]:
        page = self.store.query(Query(kind="inference", limit=1000))
        return inferences(page)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    """The real app over a SQLite file, with a long pending timeout."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'server.db'}")
    key = create_key(store, "ingest", ["iris"], "seldon bridge")[0]
    app = create_app(store)
    app.state.kserve_timeout = 3600.0
    with TestClient(app) as client:
        yield Sink(client, store, key)
    store.close()


@pytest.mark.parametrize(
    "order",
    [
        (INPUTS, OUTPUTS),
        (OUTPUTS, INPUTS),
        (INPUTS, INPUTS, OUTPUTS),
        (OUTPUTS, INPUTS, OUTPUTS, INPUTS),
        (OUTPUTS, OUTPUTS, INPUTS, INPUTS),
    ],
)
def test_each_order_and_redelivery_gives_exactly_one_record(sink: Sink, order: tuple[str, ...]) -> None:
    """Inputs first, outputs first and redelivered messages all end as exactly one joined record."""
    for topic in order:
        assert sink.send(topic, XID) == 202
    (rec,) = sink.records()
    assert rec.id == seldon.record_id("seldon-mesh", "model", "iris", XID)
    assert rec.input == REQUEST
    assert rec.output == RESPONSE
    assert (rec.model.name, rec.model.version) == ("iris", "1")
    assert rec.system == "iris"
    assert rec.latency_ms == pytest.approx(250.0)
    assert rec.attributes["kafka"]["inputs"]["offset"] == 17
    assert "seldon_half" not in rec.attributes


def test_many_interleaved_inferences_on_two_models(sink: Sink) -> None:
    """Interleaved halves of many inferences, the same request ids on two models, give one record each."""
    other_in = "seldon.seldon-mesh.model.income.inputs"
    other_out = "seldon.seldon-mesh.model.income.outputs"
    rids = [f"cbq{i:017d}" for i in range(8)]
    sends = list(itertools.chain.from_iterable(((INPUTS, r), (other_in, r)) for r in rids))
    sends += [(t, r) for r in reversed(rids) for t in (other_out, OUTPUTS)]
    for topic, rid in sends:
        assert sink.send(topic, rid) == 202
    records = sink.records()
    assert len(records) == 16
    assert sorted((r.model.name, r.request_id) for r in records) == sorted(
        (m, r) for m in ("income", "iris") for r in rids
    )
    assert all(r.output == RESPONSE for r in records)


def test_errors_topic_joins_as_an_error_record(sink: Sink) -> None:
    """A model error on errors.errors completes the inference as an error record carrying the text."""
    assert sink.send(INPUTS, XID) == 202
    headers = {"x-request-id": XID, "seldon-pipeline-errors": "iris"}
    assert sink.send(ERRORS, XID, b"model iris: shape mismatch", headers) == 202
    (rec,) = sink.records()
    assert rec.status == "error"
    assert rec.error is not None
    assert rec.error.message == "model iris: shape mismatch"
    assert rec.input == REQUEST
    assert rec.output is None


def test_a_lone_half_is_recorded_after_the_timeout(sink: Sink) -> None:
    """Inputs whose outputs never come are recorded alone once the timeout passes; a late half is linked to them."""
    assert sink.send(INPUTS, XID) == 202
    assert sink.records() == []
    keeper = sink.client.app.state.kserve_pending  # type: ignore[attr-defined]
    assert keeper.sweep(now=time.time() + 7200) == 1
    (rec,) = sink.records()
    assert rec.attributes["seldon_half"] == "request"
    assert rec.output is None
    assert sink.send(OUTPUTS, XID) == 202
    late = [r for r in sink.records() if r.id != rec.id]
    assert [r.attributes["continues"] for r in late] == [rec.id]


@pytest.fixture(scope="module")
def oracle(mlserver_python: Path) -> dict[str, Any]:
    """OIP protobuf messages serialized by Seldon's generated classes, with MLServer's REST JSON of them."""
    done = subprocess.run(
        [str(mlserver_python), str(Path(__file__).with_name("_seldon_proto_oracle.py"))],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _bytes(oracle: dict[str, Any], name: str) -> bytes:
    return base64.b64decode(oracle[name]["bytes"])


def test_protobuf_values_read_as_mlserver_reads_them(oracle: dict[str, Any]) -> None:
    """Typed contents, parameters, BYTES and requested outputs come out as MLServer's own REST JSON;
    raw little-endian and length-prefixed contents become data too."""
    request = oip_proto.request_json(_bytes(oracle, "request"))
    assert request.pop("model_name") == "iris"  # kept for the record; a REST request has no such field
    assert request == oracle["request"]["mlserver"]
    assert oip_proto.response_json(_bytes(oracle, "response")) == oracle["response"]["mlserver"]
    raw = oip_proto.request_json(_bytes(oracle, "raw_request"))
    assert raw["inputs"] == [
        {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [0.5, 1.0, -2.25, 3.0]},
        {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["abc", "z"]},
    ]
    with pytest.raises(RecordInvalid):
        oip_proto.request_json(b"\xff\xff\xff")


def test_protobuf_halves_join_through_the_app(sink: Sink, oracle: dict[str, Any]) -> None:
    """A protobuf inputs message (with the header) and outputs message (Confluent-framed, no header) join."""
    proto_in = {"x-request-id": XID, "seldon-infer-type": "proto/InferModelRequest"}
    assert sink.send(INPUTS, XID, _bytes(oracle, "request"), proto_in) == 202
    framed = b"\x00\x00\x00\x00\x07\x00" + _bytes(oracle, "response")  # magic, schema id 7, index [0]
    assert sink.send(OUTPUTS, XID, framed, {"x-request-id": XID}) == 202
    (rec,) = sink.records()
    assert rec.input == {**oracle["request"]["mlserver"], "model_name": "iris"}
    assert rec.output == oracle["response"]["mlserver"]
    assert (rec.model.name, rec.model.version) == ("iris", "1")


def test_without_protobuf_installed_values_are_refused_with_415(
    sink: Sink, oracle: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no protobuf package a protobuf value is answered 415 (naming the extra), and nothing is kept."""

    def missing() -> None:
        raise ProtobufMissing(
            "reading protobuf values needs the protobuf package: pip install 'inferlog[seldon]'"
        )

    monkeypatch.setattr(oip_proto, "_classes", missing)
    proto_in = {"x-request-id": XID, "seldon-infer-type": "proto/InferModelRequest"}
    done = sink.client.post(
        "/v1/ingest/seldon",
        headers={**proto_in, "x-kafka-topic": INPUTS, "Authorization": f"Bearer {sink.key}"},
        content=_bytes(oracle, "request"),
    )
    assert done.status_code == 415
    assert "inferlog[seldon]" in done.json()["message"]
    assert sink.send(OUTPUTS, XID) == 202
    keeper = sink.client.app.state.kserve_pending  # type: ignore[attr-defined]
    keeper.sweep(now=time.time() + 7200)
    (rec,) = sink.records()
    assert rec.attributes["seldon_half"] == "response", "the refused inputs were not kept"


def test_bad_messages_are_refused(sink: Sink) -> None:
    """No topic, a foreign topic or no x-request-id is 422; no key is 401, and a key in the URL is not taken."""
    assert sink.send("not.a.topic", XID) == 422
    assert sink.send(INPUTS, XID, headers={"seldon-infer-type": "json/inferModelRequest"}) == 422
    done = sink.client.post("/v1/ingest/seldon", headers={"x-request-id": XID}, content=b"{}")
    assert done.status_code == 401
    done = sink.client.post(
        "/v1/ingest/seldon",
        params={"key": sink.key, "topic": INPUTS},
        headers={"x-request-id": XID},
        content=b"{}",
    )
    assert done.status_code == 401
    assert sink.send(INPUTS, XID, system="other") == 403
    assert sink.records() == []


def test_topic_may_be_a_query_parameter(sink: Sink) -> None:
    """?topic= stands in for the x-kafka-topic header."""
    for topic in (INPUTS, OUTPUTS):
        stream = topic.rsplit(".", 1)[-1]
        done = sink.client.post(
            "/v1/ingest/seldon",
            params={"topic": topic},
            headers={**kafka_headers(XID, stream), "Authorization": f"Bearer {sink.key}"},
            content=json.dumps(REQUEST if stream == "inputs" else RESPONSE).encode(),
        )
        assert done.status_code == 202
    (rec,) = sink.records()
    assert rec.output == RESPONSE


def test_joined_records_carry_the_registered_digest_and_uri(sink: Sink) -> None:
    """A Seldon message names no artifact: the record gets the digest and URI registered for its model version."""
    digest = "sha256:" + "e" * 64
    assert sink.send(INPUTS, "before") == 202
    assert sink.send(OUTPUTS, "before") == 202
    (before,) = sink.records()
    register_model(
        sink.store, before.model.name, before.model.version, digest=digest, uri="s3://iris", actor="ops"
    )
    app = sink.client.app
    assert isinstance(app, FastAPI)
    app.state.inferlog.lineage.refresh()  # registered outside this server: its copy reloads now
    assert sink.send(INPUTS, "after") == 202
    assert sink.send(OUTPUTS, "after") == 202
    after = [r for r in sink.records() if r.id != before.id]
    assert [(r.model.digest, r.model.uri) for r in after] == [(digest, "s3://iris")]
    assert (before.model.digest, before.model.uri) == (None, None)
