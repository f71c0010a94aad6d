"""``POST /v1/traces`` in process: encodings, partial success, errors and back-pressure as exporters expect."""

from __future__ import annotations

import gzip
import sqlite3
from typing import Any, cast

import msgspec
import pytest
from fastapi import FastAPI
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.trace import Tracer

from inferlog.errors import ProtobufMissing
from inferlog.ingest.otlp_map import record_id
from inferlog.record.model import InferenceRecord
from inferlog.server.routes.otlp import InFlight
from inferlog.store.base import Query
from tests.otlp.spans import (
    CHAT_ATTRIBUTES,
    chat_spans,
    finished_spans,
    json_body,
    json_request,
    protobuf_body,
)
from tests.server.conftest import Server

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def _post(server: Server, body: bytes, headers: dict[str, str], who: str = "ingest_all") -> Any:
    return server.client.post("/v1/traces", content=body, headers={**headers, **server.as_(who)})


def _app(server: Server) -> FastAPI:
    return cast(FastAPI, server.client.app)


def _records(server: Server) -> list[InferenceRecord]:
    page = server.store.query(Query(kind="inference", limit=100))
    return [stored.entry for stored in page.entries if isinstance(stored.entry, InferenceRecord)]


def test_protobuf_chat_span_becomes_a_complete_record(server: Server) -> None:
    """The SDK's protobuf request: the AI spans become records with model, messages, usage and tree; HTTP spans are left out."""
    spans = chat_spans()
    response = _post(server, protobuf_body(spans), PB)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    records = {r.attributes["operation"]: r for r in _records(server)}
    assert set(records) == {"chat", "invoke_agent"}  # the HTTP span is not an AI operation
    chat, agent = records["chat"], records["invoke_agent"]
    by_name = {s.name: s for s in spans}
    chat_span = by_name["chat gpt-4o-mini"]
    assert chat.id == record_id(f"{chat_span.context.trace_id:032x}", f"{chat_span.context.span_id:016x}")
    assert chat.system == "chatbot"  # the resource's service.name, for a key of every system
    assert (chat.model.name, chat.model.version, chat.model.provider) == (
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai",
    )  # fmt: skip
    assert chat.input == {
        "messages": [{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
    }
    assert chat.output == {
        "messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}
        ]
    }
    assert chat.parameters == {"temperature": 0.2, "max_tokens": 64}
    assert chat.attributes["usage"] == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    assert chat.attributes["finish_reasons"] == ["stop"]
    assert (chat.session_id, chat.subject, chat.request_id) == ("conv-1", "user-7", "chatcmpl-123")
    assert chat.trace_id == agent.trace_id == f"{chat_span.context.trace_id:032x}"
    assert chat.parent_id == agent.span_id
    assert agent.parent_id is None
    assert agent.model.name == "planner"
    assert chat.source == "otlp"
    assert chat.latency_ms is not None
    assert chat.latency_ms >= 0


def test_json_and_protobuf_make_the_same_records(server: Server) -> None:
    """The same spans in OTLP JSON after protobuf are duplicates of the same records, not new ones."""
    spans = chat_spans()
    assert _post(server, protobuf_body(spans), PB).status_code == 200
    before = {r.id: msgspec.json.encode(r) for r in _records(server)}
    response = _post(server, json_body(spans), JS)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    after = {r.id: msgspec.json.encode(r) for r in _records(server)}
    assert after == before


def test_gzip_body_is_read(server: Server) -> None:
    """A gzip-compressed body (the exporters' compression option) is accepted."""
    response = _post(server, gzip.compress(protobuf_body(chat_spans())), {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert len(_records(server)) == 2


def test_wrong_content_type_is_415_with_a_status(server: Server) -> None:
    """A body that is neither protobuf nor JSON is refused with 415 and a google.rpc.Status naming the types."""
    response = _post(server, b"resourceSpans=1", {"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]
    assert _records(server) == []


def test_truncated_protobuf_is_400(server: Server) -> None:
    """A protobuf request cut in the middle is a 400 (not retried by exporters), and nothing is stored."""
    body = protobuf_body(chat_spans())
    response = _post(server, body[: len(body) // 2], PB)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    assert _records(server) == []


def test_broken_gzip_and_json_are_400(server: Server) -> None:
    """A body that does not inflate, and JSON that is not an OTLP request, are 400 with a message."""
    bad_gzip = _post(server, b"\x1f\x8b\x08\x00garbage", {**PB, "Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    assert "gzip" in Status.FromString(bad_gzip.content).message  # the error body is a google.rpc.Status
    for body in (b"{not json", b"[1, 2]", b'{"resourceSpans": 7}'):
        response = _post(server, body, JS)
        assert response.status_code == 400, body
        assert response.json()["message"]


def test_invalid_ids_are_refused_one_by_one(server: Server) -> None:
    """Spans with a short, non-hex or zero trace id are counted in partial_success; the good span is kept."""
    request = json_request(chat_spans())
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    chat = next(s for s in spans if s["name"].startswith("chat"))
    good = dict(chat)
    broken = [dict(chat, traceId="abc"), dict(chat, traceId="zz" * 16), dict(chat, spanId="0" * 16)]
    request["resourceSpans"][0]["scopeSpans"][0]["spans"] = [good, *broken]
    response = _post(server, msgspec.json.encode(request), JS)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    assert "traceId" in partial["errorMessage"]
    assert "spanId" in partial["errorMessage"]
    assert [r.span_id for r in _records(server)] == [good["spanId"]]


def test_partial_success_in_protobuf(server: Server) -> None:
    """A protobuf request with a span the log refuses answers partial_success in protobuf, counting it."""
    spans = chat_spans(**{"gen_ai.conversation.id": "c" * 600})  # over the 512-character limit of an id
    response = _post(server, protobuf_body(spans), PB)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "session_id" in answer.partial_success.error_message
    assert [r.attributes["operation"] for r in _records(server)] == ["invoke_agent"]


def test_ten_thousand_attributes_are_all_kept(server: Server) -> None:
    """A span with 10,000 attributes is accepted whole: every attribute no rule reads is under attributes.otel."""
    attributes = {**CHAT_ATTRIBUTES, **{f"app.key{i}": i for i in range(10_000)}}

    def build(tracer: Tracer) -> None:
        tracer.start_span("chat", attributes=attributes).end()

    spans = finished_spans(build, max_attributes=20_000)  # the SDK keeps 128 unless told otherwise
    _app(server).state.inferlog.max_body_bytes = 4 * 1024 * 1024
    response = _post(server, protobuf_body(spans), PB)
    assert response.status_code == 200, response.text
    (record,) = _records(server)
    assert len(record.attributes["otel"]) == 10_000
    assert record.attributes["otel"]["app.key9999"] == 9999


def test_huge_values_within_the_limit_are_kept_and_over_it_are_413(server: Server) -> None:
    """A 40 kB message is stored whole; a request over the body limit is 413 (a Status, no retry), nothing stored."""
    text = "x" * 40_000
    messages = f'[{{"role":"user","parts":[{{"type":"text","content":"{text}"}}]}}]'
    response = _post(server, protobuf_body(chat_spans(**{"gen_ai.input.messages": messages})), PB)
    assert response.status_code == 200
    chat = next(r for r in _records(server) if r.attributes["operation"] == "chat")
    assert chat.input["messages"][0]["parts"][0]["content"] == text
    big = "y" * 100_000  # the test server's limit is 64 KiB
    response = _post(server, protobuf_body(chat_spans(**{"gen_ai.input.messages": big})), PB)
    assert response.status_code == 413
    assert len(_records(server)) == 2


def test_a_gzip_bomb_is_413(server: Server) -> None:
    """A small gzip body that inflates past the body limit is refused with 413 before it is decoded."""
    response = _post(server, gzip.compress(b"\0" * 10_000_000), {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_auth_comes_from_the_authorization_header(server: Server) -> None:
    """No key is 401; a reader key is 403; the ingest key in Authorization (as OTEL_EXPORTER_OTLP_HEADERS sets it) is 200."""
    body = protobuf_body(chat_spans())
    assert server.client.post("/v1/traces", content=body, headers=PB).status_code == 401
    assert _post(server, body, PB, who="reader").status_code == 403
    assert _post(server, body, PB, who="ingest_all").status_code == 200


def test_system_from_key_query_or_header(server: Server) -> None:
    """A key of one system writes there; ?system= and x-inferlog-system name it; a system outside the key is 403."""
    body = protobuf_body(chat_spans(service="not-a-system-of-the-key"))
    assert _post(server, body, PB, who="ingest").status_code == 200  # the key's only system: credit
    assert {r.system for r in _records(server)} == {"credit"}
    response = _post(server, body, {**PB, "x-inferlog-system": "fraud"}, who="ingest")
    assert response.status_code == 403
    other = protobuf_body(chat_spans())
    response = server.client.post(
        "/v1/traces?system=support", content=other, headers={**PB, **server.as_("ingest_all")}
    )
    assert response.status_code == 200
    assert {r.system for r in _records(server)} == {"credit", "support"}


def test_too_many_in_flight_is_429_with_retry_after(server: Server) -> None:
    """When the server is full of OTLP requests the next hears 429 with Retry-After; once free, it is accepted."""
    gate = InFlight(limit=1)
    _app(server).state.otlp_in_flight = gate
    body = protobuf_body(chat_spans())
    with gate.held():
        response = _post(server, body, PB)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert _records(server) == []
    assert _post(server, body, PB).status_code == 200
    assert len(_records(server)) == 2


def test_store_unavailable_is_503_with_retry_after(sqlite_server: Server) -> None:
    """A locked store answers 503 with Retry-After (exporters retry it); the retry after the lock is gone lands."""
    server = sqlite_server
    store: Any = server.store
    store._writer.execute("PRAGMA busy_timeout = 50")
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    body = protobuf_body(chat_spans())
    try:
        response = _post(server, body, PB)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert _post(server, body, PB).status_code == 200
    assert len(_records(server)) == 2


def test_protobuf_without_opentelemetry_proto_is_415(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server installed without inferlog[otlp] answers protobuf with 415 naming the extra; JSON still works."""
    from inferlog.ingest import otlp

    def missing() -> None:
        raise ProtobufMissing(
            "reading OTLP protobuf needs the opentelemetry-proto package: pip install 'inferlog[otlp]'"
        )

    monkeypatch.setattr(otlp, "_request_class", missing)
    spans = chat_spans()
    response = _post(server, protobuf_body(spans), PB)
    assert response.status_code == 415
    assert "inferlog[otlp]" in Status.FromString(response.content).message
    assert _post(server, json_body(spans), JS).status_code == 200
