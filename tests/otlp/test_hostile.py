"""``POST /v1/traces`` under hostile input: every odd body is a clear 4xx or a counted refusal, never a 500.

Each case sends one good chat span beside the hostile one (when the hostility is in a span), so the
test also proves that what was good in the request is kept: a bad span never costs the others.
"""

from __future__ import annotations

import copy
import gzip
import zlib
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest
from fastapi import FastAPI
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from inferlog.record.model import InferenceRecord
from inferlog.store.base import Query
from tests.otlp.spans import chat_spans, json_request, protobuf_body
from tests.server.conftest import Server

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def _post(server: Server, body: bytes, headers: dict[str, str], query: str = "") -> Any:
    return server.client.post(
        f"/v1/traces{query}", content=body, headers={**headers, **server.as_("ingest_all")}
    )


def _records(server: Server) -> list[InferenceRecord]:
    page = server.store.query(Query(kind="inference", limit=100))
    return [stored.entry for stored in page.entries if isinstance(stored.entry, InferenceRecord)]


def _chat_request() -> tuple[dict[str, Any], dict[str, Any]]:
    """A JSON request holding only the chat span, and that span."""
    request = json_request(chat_spans())
    scope = request["resourceSpans"][0]["scopeSpans"][0]
    chat = next(s for s in scope["spans"] if s["name"].startswith("chat"))
    scope["spans"] = [chat]
    return request, chat


def _attr(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def _str(text: str) -> dict[str, Any]:
    return {"stringValue": text}


def _oi(key: str, value: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A mutation that swaps the GenAI message attributes for one OpenInference attribute (so its rules run)."""

    def mutate(span: dict[str, Any]) -> None:
        span["attributes"] = [a for a in span["attributes"] if not a["key"].endswith(".messages")]
        span["attributes"].append(_attr(key, value))

    return mutate


# Each mutation spoils a copy of the chat span (given a fresh span id); the good span rides along.
SPAN_MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "trace id of 15 bytes": lambda s: s.update(traceId="ab" * 15),
    "trace id of 17 bytes": lambda s: s.update(traceId="ab" * 17),
    "span id not a string": lambda s: s.update(spanId=12345),
    "parent id of 3 bytes": lambda s: s.update(parentSpanId="abcdef"),
    "parent id not hex": lambda s: s.update(parentSpanId="zz" * 8),
    "start time past the year 9999": lambda s: s.update(startTimeUnixNano=str(2**64 - 1)),
    "start time zero": lambda s: s.update(startTimeUnixNano="0"),
    "start time negative": lambda s: s.update(startTimeUnixNano="-5"),
    "start time a float": lambda s: s.update(startTimeUnixNano=1.5e18),
    "start time of 5000 digits": lambda s: s.update(startTimeUnixNano="9" * 5000),
    "start time with underscores": lambda s: s.update(startTimeUnixNano="1_700_000_000_000_000_000"),
    "start time in other digits": lambda s: s.update(startTimeUnixNano="١٧٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠٠"),
    "end before start": lambda s: s.update(endTimeUnixNano=str(int(s["startTimeUnixNano"]) - 1)),
    "event time past 2**64": lambda s: s.update(events=[{"name": "e", "timeUnixNano": str(2**64)}]),
    "events not a list": lambda s: s.update(events={"name": "e"}),
    "event not an object": lambda s: s.update(events=["e"]),
    "kind out of range": lambda s: s.update(kind=99),
    "kind a float": lambda s: s.update(kind=1.0),
    "status a string": lambda s: s.update(status="ERROR"),
    "status code unknown": lambda s: s.update(status={"code": "STATUS_CODE_WEIRD"}),
    "name a number": lambda s: s.update(name=7),
    "attributes an object": lambda s: s.update(attributes={"gen_ai.system": "x"}),
    "attribute without a key": lambda s: s["attributes"].append({"value": _str("x")}),
    "attribute value with two fields": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"stringValue": "a", "intValue": "1"})
    ),
    "attribute value of an unknown field": lambda s: s["attributes"].append(_attr("gen_ai.x", {"weird": 1})),
    "int attribute past int64": lambda s: s["attributes"].append(_attr("gen_ai.x", {"intValue": str(2**63)})),
    "int attribute of 5000 digits": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"intValue": "9" * 5000})
    ),
    "bool attribute a string": lambda s: s["attributes"].append(_attr("gen_ai.x", {"boolValue": "true"})),
    "bytes attribute not base64": lambda s: s["attributes"].append(_attr("gen_ai.x", {"bytesValue": "!!"})),
    "array nested 100 deep": lambda s: s["attributes"].append(_attr("gen_ai.x", _nested_array(100))),
    "kvlist nested 100 deep": lambda s: s["attributes"].append(_attr("gen_ai.x", _nested_kvlist(100))),
    "array values not a list": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"arrayValue": {"values": 1}})
    ),
    "kvlist values not a list": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"kvlistValue": {"values": "x"}})
    ),
    "messages JSON nested 10000 deep": lambda s: s["attributes"].append(
        _attr("gen_ai.input.messages", _str("[" * 10_000 + "]" * 10_000))
    ),
    "OpenInference message a string": _oi("llm.input_messages.0.message", _str("hello")),
    "OpenInference messages a string": _oi("llm.input_messages.x", _str("hello")),
    "OpenInference message content an image string": _oi(
        "llm.input_messages.0.message.contents.0.message_content.image", _str("x")
    ),
    "OpenInference message content of type image, a string": _oi(
        "llm.input_messages.0.message.contents.0.message_content.type", _str("image")
    ),
    "OpenInference tool call a string": _oi(
        "llm.output_messages.0.message.tool_calls.0.tool_call", _str("f")
    ),
    "OpenInference tool call function a string": _oi(
        "llm.output_messages.0.message.tool_calls.0.tool_call.function", _str("f")
    ),
    "OpenInference prompt a string": lambda s: s["attributes"].append(
        _attr("llm.prompts.0.prompt", _str("p"))
    ),
    "OpenInference tool a string": lambda s: s["attributes"].append(_attr("llm.tools.0.tool", _str("t"))),
    "OpenInference choice a number": lambda s: s["attributes"].append(
        _attr("llm.choices.0.choice", {"intValue": "1"})
    ),
    "flattened index in superscript digits": _oi("llm.input_messages.².message.content", _str("x")),
    "flattened index of 5000 digits": _oi("llm.input_messages." + "9" * 5000 + ".message.content", _str("x")),
    "flattened name 20000 levels deep": _oi("llm.input_messages." + "a." * 20_000 + "b", _str("x")),
    "reranker fields a list": lambda s: s["attributes"].append(_attr("reranker.0", _str("r"))),
    "OpenInference tools an object": lambda s: s["attributes"].append(_attr("llm.tools.x.tool", _str("t"))),
    "flattened path both leaf and branch": lambda s: s["attributes"].extend(
        [_attr("llm.prompts.0", _str("a")), _attr("llm.prompts.0.prompt.text", _str("b"))]
    ),
    "reranker documents a string": lambda s: s["attributes"].append(
        _attr("reranker.output_documents.0.document", _str("d"))
    ),
    "gen_ai.choice event message not an object": lambda s: s.update(
        events=[{"name": "gen_ai.choice", "attributes": [_attr("message", _str("[1]"))]}]
    ),
    "user message event with odd tool calls": lambda s: s.update(
        events=[
            {"name": "gen_ai.user.message", "attributes": [_attr("tool_calls", _str('[{"function": 1}, 2]'))]}
        ]
    ),
    "a million-character attribute key": lambda s: s["attributes"].append(
        _attr("gen_ai." + "k" * 40_000, _str("x"))
    ),
    "usage tokens a huge int": lambda s: s["attributes"].append(
        _attr("gen_ai.usage.input_tokens", {"intValue": str(2**63 - 1)})
    ),
    "usage tokens NaN": lambda s: s["attributes"].append(
        _attr("gen_ai.usage.output_tokens", {"doubleValue": "NaN"})
    ),
    "double attribute Infinity": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"doubleValue": "Infinity"})
    ),
    "double attribute 1e400 as a string": lambda s: s["attributes"].append(
        _attr("gen_ai.x", {"doubleValue": "1e400"})
    ),
    "a NUL in the span name": lambda s: s.update(name="chat\x00evil"),
    "a NUL in an attribute key": lambda s: s["attributes"].append(_attr("gen_ai.\x00", _str("x"))),
    "a NUL in the model name": lambda s: s["attributes"].append(_attr("gen_ai.request.model", _str("m\x00"))),
    "terminal escapes in the model name": lambda s: s["attributes"].append(
        _attr("gen_ai.request.model", _str("\x1b]0;pwned\x07m"))
    ),
    "a session id of 600 characters": lambda s: s["attributes"].append(
        _attr("gen_ai.conversation.id", _str("s" * 600))
    ),
    "a session id that is an array": lambda s: s["attributes"].append(
        _attr("gen_ai.conversation.id", {"arrayValue": {"values": [_str("a")]}})
    ),
    "a model name that is an object": lambda s: s["attributes"].append(
        _attr("gen_ai.request.model", {"kvlistValue": {"values": [_attr("a", _str("b"))]}})
    ),
}


def _nested_array(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = _str("leaf")
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


def _nested_kvlist(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = _str("leaf")
    for _ in range(depth):
        value = {"kvlistValue": {"values": [_attr("k", value)]}}
    return value


@pytest.mark.parametrize("case", list(SPAN_MUTATIONS))
def test_a_hostile_span_never_costs_the_good_one(server: Server, case: str) -> None:
    """Each hostile span is stored or counted in partial_success (never a 500); the good span beside it is kept."""
    request, chat = _chat_request()
    bad = copy.deepcopy(chat)
    bad["spanId"] = "1234567890abcdef"
    SPAN_MUTATIONS[case](bad)
    request["resourceSpans"][0]["scopeSpans"][0]["spans"] = [chat, bad]
    response = _post(server, msgspec.json.encode(request), JS)
    assert response.status_code == 200, response.text
    stored = {r.span_id for r in _records(server)}
    assert chat["spanId"] in stored
    partial = response.json().get("partialSuccess")
    if partial is not None:
        assert partial["rejectedSpans"] == "1"
        assert partial["errorMessage"]
    else:
        assert bad["spanId"] in stored


# Whole requests of the wrong shape: 400 with a google.rpc.Status message; nothing is stored.
BAD_REQUESTS: dict[str, bytes] = {
    "empty body": b"",
    "a JSON string": b'"resourceSpans"',
    "null": b"null",
    "resourceSpans an object": b'{"resourceSpans": {}}',
    "resourceSpans of strings": b'{"resourceSpans": ["x"]}',
    "resourceSpans of numbers": b'{"resourceSpans": [1]}',
    "scopeSpans of strings": b'{"resourceSpans": [{"scopeSpans": ["scope"]}]}',
    "scopeSpans of numbers": b'{"resourceSpans": [{"scopeSpans": [1]}]}',
    "scopeSpans an object": b'{"resourceSpans": [{"scopeSpans": {"spans": []}}]}',
    "scope a string": b'{"resourceSpans": [{"scopeSpans": [{"scope": "s", "spans": []}]}]}',
    "resource a list": b'{"resourceSpans": [{"resource": [1], "scopeSpans": []}]}',
    "a lone surrogate": b'{"resourceSpans": [{"scopeSpans": [{"scope": {"name": "\\ud800"}}]}]}',
    "a lone low surrogate": b'{"resourceSpans": [], "x": "\\udc00"}',
    "NaN": b'{"resourceSpans": NaN}',
    "1e400": b'{"resourceSpans": [], "x": 1e400}',
    "a byte order mark": b'\xef\xbb\xbf{"resourceSpans": []}',
    "not UTF-8": b'{"resourceSpans": [], "x": "\xff"}',
    "JSON nested 30000 deep": b"[" * 30_000 + b"]" * 30_000,
    "objects nested 10000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "trailing garbage": b'{"resourceSpans": []} x',
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_json_request_of_the_wrong_shape_is_400(server: Server, case: str) -> None:
    """Bodies that are not an OTLP JSON request are 400 with a message, and store nothing."""
    response = _post(server, BAD_REQUESTS[case], JS)
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    assert _records(server) == []


def _protobuf_nested(depth: int) -> bytes:
    """A protobuf ``AnyValue`` array nested ``depth`` deep, as one span attribute of a chat span."""
    request = ExportTraceServiceRequest.FromString(protobuf_body(chat_spans()))
    span = request.resource_spans[0].scope_spans[0].spans[1]
    value = span.attributes.add(key="gen_ai.x").value
    for _ in range(depth):
        value = value.array_value.values.add()
    value.string_value = "leaf"
    return bytes(request.SerializeToString())


def test_protobuf_nesting_past_protobufs_own_limit_is_400(server: Server) -> None:
    """Values nested 30 deep are stored; 60 or 3000 deep pass protobuf's recursion limit: 400, nothing stored."""
    for depth in (60, 3000):
        response = _post(server, _protobuf_nested(depth), PB)
        assert response.status_code == 400, depth
        assert "ExportTraceServiceRequest" in Status.FromString(response.content).message
    assert _records(server) == []
    assert _post(server, _protobuf_nested(30), PB).status_code == 200
    chat = next(r for r in _records(server) if r.attributes["operation"] == "chat")
    value = chat.attributes["otel"]["gen_ai.x"]
    for _ in range(30):
        (value,) = value
    assert value == "leaf"


def _chat_protobuf_with_name(name: bytes) -> bytes:
    """The chat request in protobuf with the span name's bytes replaced (same length)."""
    body = protobuf_body(chat_spans())
    assert len(name) == len(b"chat gpt-4o-mini")
    return body.replace(b"chat gpt-4o-mini", name)


ODD_PROTOBUF: dict[str, bytes] = {
    "random bytes": bytes(range(256)) * 4,
    "a field of wire type 7": b"\x0f",
    "a length past the end": b"\x0a\xff\xff\xff\xff\x0f",
    "invalid UTF-8 in a string": _chat_protobuf_with_name(b"chat gpt-4o-min\xff"),
    "a lone surrogate in UTF-8": _chat_protobuf_with_name(b"chat gpt-4o-\xed\xa0\x80x"),
    "messages nested 100000 deep": b"\x0a\x80\x80\x04" * 2,
}


@pytest.mark.parametrize("case", list(ODD_PROTOBUF))
def test_odd_protobuf_is_400(server: Server, case: str) -> None:
    """Protobuf bodies that do not parse are 400 (a google.rpc.Status), and store nothing."""
    response = _post(server, ODD_PROTOBUF[case], PB)
    assert response.status_code == 400, response.content
    assert _records(server) == []


def test_protobuf_ids_of_the_wrong_length_are_refused_one_by_one(server: Server) -> None:
    """A protobuf span whose trace id is 15 bytes, or whose parent id is 3, is counted; the good span is kept."""
    request = ExportTraceServiceRequest.FromString(protobuf_body(chat_spans()))
    spans = request.resource_spans[0].scope_spans[0].spans
    good = spans[1]
    short = spans.add()
    short.CopyFrom(good)
    short.trace_id = b"\x01" * 15
    odd_parent = spans.add()
    odd_parent.CopyFrom(good)
    odd_parent.span_id = b"\x02" * 8
    odd_parent.parent_span_id = b"\x03" * 3
    late = spans.add()
    late.CopyFrom(good)
    late.span_id = b"\x04" * 8
    late.start_time_unix_nano = 2**64 - 1
    response = _post(server, bytes(request.SerializeToString()), PB)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert good.span_id.hex() in {r.span_id for r in _records(server)}


def test_a_span_with_many_attributes_in_json_is_kept_whole(server: Server) -> None:
    """Two thousand attributes in a JSON span, and an event with as many, are stored (no quadratic blow-up, no loss)."""
    request, chat = _chat_request()
    chat["attributes"] += [_attr(f"app.k{i}", {"intValue": str(i)}) for i in range(2000)]
    chat["events"] = [
        {"name": "e", "timeUnixNano": "1", "attributes": [_attr(f"k{i}", _str("v")) for i in range(2000)]}
    ]
    cast(FastAPI, server.client.app).state.inferlog.max_body_bytes = 4 * 1024 * 1024
    response = _post(server, msgspec.json.encode(request), JS)
    assert response.status_code == 200, response.text
    (record,) = _records(server)
    assert len(record.attributes["otel"]) == 2000
    assert len(record.attributes["events"][0]["attributes"]) == 2000


def test_hostile_system_names_are_refused_or_made_valid(server: Server) -> None:
    """A ?system= of 10,000 characters is refused; undecodable bytes arrive as U+FFFD, never a lone surrogate."""
    request, _chat = _chat_request()
    body = msgspec.json.encode(request)
    long = _post(server, body, JS, "?system=" + "s" * 10_000)
    assert long.status_code == 200, long.text  # OTLP's way: every span counted as refused, saying why
    assert long.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "system" in long.json()["partialSuccess"]["errorMessage"]
    assert _records(server) == []
    for query in ("?system=%ED%A0%80", "?system=%FF"):
        response = _post(server, body, JS, query)
        assert response.status_code == 200, (query, response.text)
    (record,) = _records(server)  # the second request's span is a duplicate of the first's
    assert record.system == "\ufffd" * 3


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(b"{}") + b"trailing bytes"),
        ("gzip", gzip.compress(b'{"resourceSpans": []}') + gzip.compress(b"\0" * 10_000_000)),
        ("gzip", b""),
        ("deflate", zlib.compress(b"\0" * 10_000_000)),
        ("deflate", b"\x78\x9c"),
        ("br", b"{}"),
        ("gzip, gzip", gzip.compress(gzip.compress(b"{}"))),
    ],
)
def test_odd_compression_is_a_4xx(server: Server, coding: str, body: bytes) -> None:
    """Trailing bytes after the gzip stream, a second member bomb, empty or unknown codings: 4xx, never a 500."""
    response = _post(server, body, {**JS, "Content-Encoding": coding})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]
    assert _records(server) == []


def test_accepted_spans_survive_a_later_hostile_request(server: Server) -> None:
    """Spans accepted before a hostile request are all still there after it."""
    request, _chat = _chat_request()
    assert _post(server, msgspec.json.encode(request), JS).status_code == 200
    for body in BAD_REQUESTS.values():
        _post(server, body, JS)
    assert len(_records(server)) == 1
