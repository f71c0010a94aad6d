"""The pure span -> record mapping and the OTLP decoders, on the conventions instrumentations actually use."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest

from inferlog.errors import RecordInvalid
from inferlog.ingest.otlp import MAX_VALUE_DEPTH, Event, Span, decode_json, decode_protobuf
from inferlog.ingest.otlp_map import is_ai, to_record
from inferlog.pipeline import Pipeline
from inferlog.record.model import InferenceRecord
from tests.otlp.spans import chat_spans, json_request, protobuf_body

START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def span(attributes: dict[str, Any], events: tuple[Event, ...] = (), **fields: Any) -> Span:
    defaults: dict[str, Any] = {
        "trace_id": "1" * 32, "span_id": "2" * 16, "parent_id": None, "name": "op", "kind": "internal",
        "start_ns": START, "end_ns": START + 250_000_000,
    }  # fmt: skip
    return Span(attributes=attributes, events=events, **(defaults | fields))


def mapped(attributes: dict[str, Any], events: tuple[Event, ...] = (), **fields: Any) -> InferenceRecord:
    record = to_record(span(attributes, events, **fields), system="s")
    Pipeline().prepare(record)  # every mapped record is one the log can store
    return record


def test_openinference_llm_span_with_tool_calls() -> None:
    """OpenInference's flattened messages, tool calls, token counts and invocation parameters map to the GenAI form."""
    record = mapped({
        "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": '{"model": "gpt-4o", "temperature": 0}',
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "Weather?",
        "llm.input_messages.1.message.role": "tool", "llm.input_messages.1.message.tool_call_id": "c1",
        "llm.input_messages.1.message.content": "sunny",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c2",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}',
        "llm.token_count.prompt": 10, "llm.token_count.completion": 3, "llm.token_count.total": 13,
        "llm.cost.total": 0.0001, "session.id": "s1", "user.id": "u1", "metadata": '{"tenant": "acme"}',
    })  # fmt: skip
    assert (record.model.name, record.model.version, record.model.provider) == (
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "openai",
    )
    assert record.input == {"messages": [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
    ]}  # fmt: skip
    assert record.output == {"messages": [{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c2", "name": "get_weather", "arguments": {"city": "Paris"}},
    ]}]}  # fmt: skip
    assert record.parameters == {"model": "gpt-4o", "temperature": 0}
    assert record.attributes["usage"] == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert record.attributes["cost"] == {"total": 0.0001}
    assert (record.session_id, record.subject) == ("s1", "u1")
    assert record.attributes["otel"] == {"metadata": '{"tenant": "acme"}'}  # unread, kept verbatim
    assert record.latency_ms == 250.0


def test_openinference_tool_retriever_and_chain_spans() -> None:
    """TOOL, RETRIEVER and CHAIN spans are records named after what they act on, with their documents and values."""
    tool = mapped({"openinference.span.kind": "TOOL", "tool.name": "get_weather", "input.value": '{"city": "Paris"}',
                   "input.mime_type": "application/json", "output.value": "sunny"})  # fmt: skip
    assert tool.attributes["operation"] == "execute_tool"
    assert tool.model.name == "get_weather"
    assert tool.attributes["tool"] == {"name": "get_weather"}
    assert (tool.input, tool.output) == ({"value": {"city": "Paris"}}, {"value": "sunny"})
    retriever = mapped({
        "openinference.span.kind": "RETRIEVER", "input.value": "paris weather",
        "retrieval.documents.0.document.id": "d1", "retrieval.documents.0.document.content": "Paris is sunny",
        "retrieval.documents.0.document.score": 0.9, "retrieval.documents.1.document.id": "d2",
    }, name="retrieve")  # fmt: skip
    assert retriever.attributes["operation"] == "retrieval"
    assert retriever.model.name == "retrieve"
    assert retriever.output == {
        "documents": [{"id": "d1", "content": "Paris is sunny", "score": 0.9}, {"id": "d2"}]
    }
    chain = mapped(
        {"openinference.span.kind": "CHAIN", "input.value": "q", "output.value": "a"}, name="RunnableSequence"
    )
    assert chain.attributes["operation"] == "chain"


def test_legacy_flattened_prompts_and_usage_names() -> None:
    """Pre-1.37 instrumentations: gen_ai.prompt.N / gen_ai.completion.N and prompt_tokens / completion_tokens."""
    record = mapped({
        "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-3", "gen_ai.response.model": "claude-3-20240229",
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Hi",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Hello", "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 4, "gen_ai.usage.completion_tokens": 2,
    })  # fmt: skip
    assert record.attributes["operation"] == "llm"
    assert record.model.provider == "anthropic"
    assert record.input == {"messages": [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]}
    assert record.output == {
        "messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "stop"}
        ]
    }
    assert record.attributes["usage"] == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}


def test_message_events_and_exceptions() -> None:
    """Per-message span events become messages; an exception event gives the error; other events are kept."""
    events = (
        Event("gen_ai.system.message", START, {"content": "Be brief."}),
        Event("gen_ai.user.message", START, {"content": "Hi"}),
        Event("gen_ai.choice", START, {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hey"}}),
        Event("exception", START, {"exception.type": "TimeoutError", "exception.message": "slow", "exception.stacktrace": "..."}),
        Event("first_token", START + 1, {}),
    )  # fmt: skip
    record = mapped({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}, events, status="error")
    assert [m["role"] for m in record.input["messages"]] == ["system", "user"]
    assert record.output["messages"][0]["parts"] == [{"type": "text", "content": "Hey"}]
    assert record.output["messages"][0]["finish_reason"] == "stop"
    assert record.status == "error"
    assert record.error is not None
    assert (record.error.type, record.error.message) == ("TimeoutError", "slow")
    assert [e["name"] for e in record.attributes["events"]] == ["first_token"]


def test_content_not_captured_is_said() -> None:
    """A chat span without any message says content_captured: false (not sent, rather than lost)."""
    record = mapped({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})
    assert record.input is None
    assert record.attributes["content_captured"] is False


def test_what_is_an_ai_span() -> None:
    """gen_ai.* / llm.* / openinference.span.kind make an AI span; an HTTP or database span is not one."""
    assert is_ai(span({"gen_ai.system": "openai"}))
    assert is_ai(span({"openinference.span.kind": "CHAIN"}))
    assert is_ai(span({"llm.model_name": "x"}))
    assert not is_ai(span({"http.request.method": "GET", "url.full": "https://api.openai.com/v1"}))
    assert not is_ai(span({"db.system": "postgresql"}))


def test_spans_that_cannot_be_records() -> None:
    """No start time, an end before the start, or a session id over 512 characters: RecordInvalid naming the field."""
    with pytest.raises(RecordInvalid, match="startTimeUnixNano"):
        to_record(span({"gen_ai.operation.name": "chat"}, start_ns=0), system="s")
    with pytest.raises(RecordInvalid, match="endTimeUnixNano"):
        to_record(span({"gen_ai.operation.name": "chat"}, end_ns=START - 1), system="s")
    with pytest.raises(RecordInvalid, match="session_id"):
        to_record(span({"gen_ai.operation.name": "chat", "session.id": "x" * 513}), system="s")


def test_protobuf_and_json_decode_to_the_same_spans() -> None:
    """The SDK's request in protobuf and in OTLP JSON decodes to identical spans, ids as lowercase hex."""
    spans = chat_spans()
    from_proto = decode_protobuf(protobuf_body(spans))
    from_json = decode_json(msgspec.json.encode(json_request(spans)))
    assert from_proto == from_json
    assert len(from_proto.spans) == 3
    assert all(len(s.trace_id) == 32 and s.trace_id == s.trace_id.lower() for s in from_proto.spans)


def _json_span(value: Any) -> bytes:
    span_obj = {"traceId": "1" * 32, "spanId": "2" * 16, "name": "chat", "startTimeUnixNano": str(START),
                "attributes": [{"key": "v", "value": value}]}  # fmt: skip
    return msgspec.json.encode({"resourceSpans": [{"scopeSpans": [{"spans": [span_obj]}]}]})


def test_json_any_values() -> None:
    """intValue as a string, bytes as base64, nested arrays and key-value lists, NaN as null."""
    cases = [
        ({"intValue": "-9007199254740993"}, -9007199254740993),
        ({"intValue": 5}, 5),
        ({"bytesValue": base64.b64encode(b"\x00\x01").decode()}, "AAE="),
        ({"doubleValue": "NaN"}, None),
        ({"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": True}]}}, ["a", True]),
        ({"kvlistValue": {"values": [{"key": "k", "value": {"doubleValue": 1.5}}]}}, {"k": 1.5}),
        ({}, None),
    ]
    for value, expected in cases:
        (decoded,) = decode_json(_json_span(value)).spans
        assert decoded.attributes["v"] == expected, value


def test_bad_json_values_refuse_the_span_not_the_request() -> None:
    """A wrong AnyValue or a value nested past the limit refuses that span with a reason; the body is not a 400."""
    deep: dict[str, Any] = {"stringValue": "x"}
    for _ in range(MAX_VALUE_DEPTH + 2):
        deep = {"arrayValue": {"values": [deep]}}
    for value in ({"intValue": "1.5"}, {"intValue": str(2**63)}, {"stringValue": 5}, {"oops": 1}, deep):
        decoded = decode_json(_json_span(value))
        assert decoded.spans == []
        assert len(decoded.rejected) == 1, value


def test_lone_surrogates_in_json_refuse_the_request() -> None:
    """JSON with half a surrogate pair is not valid text: the whole body is refused (400), nothing half-taken."""
    body = _json_span({"stringValue": "ok"}).replace(b'"ok"', b'"\\ud800"')
    with pytest.raises(RecordInvalid, match="surrogate"):
        decode_json(body)
