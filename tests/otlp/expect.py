"""What the records of ``call_openai`` must say, whichever instrumentation traced it and whichever way they came."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inferlog.record.model import InferenceRecord
from tests.otlp.fake_openai import ANSWERED_BY, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY, TOOL_NAME


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (messages nest them in parts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def parts(value: Any, kind: str) -> list[dict[str, Any]]:
    """Every message part of one type in a record's ``input`` or ``output``."""
    messages = (value or {}).get("messages", [])
    return [part for message in messages for part in message.get("parts", []) if part.get("type") == kind]


def check_openai_records(records: list[InferenceRecord], agent_span_id: str) -> None:
    """The six calls of ``call_openai`` under one agent span: models, messages, tokens, errors and the tree."""
    calls = [r for r in records if r.span_id != agent_span_id]
    (agent,) = [r for r in records if r.span_id == agent_span_id]
    assert len(calls) == 6, [r.attributes.get("span_name") for r in records]
    assert {r.trace_id for r in records} == {agent.trace_id}
    assert {r.parent_id for r in calls} == {agent_span_id}
    assert all(r.source == "otlp" for r in records)
    chats = sorted((r for r in calls if r.attributes["operation"] == "chat"), key=lambda r: r.ts)
    (embedding,) = [r for r in calls if r.attributes["operation"] == "embeddings"]
    assert len(chats) == 5
    plain, asked, answered, streamed, failed = chats

    assert plain.model.name == "gpt-test"
    assert plain.model.version == ANSWERED_BY
    assert plain.model.provider == "openai"
    assert "Capital of France?" in list(strings(plain.input))
    assert "Be brief." in list(strings(plain.input))
    assert REPLY in list(strings(plain.output))
    assert plain.parameters["temperature"] == 0.2
    assert plain.parameters["max_tokens"] == 50
    usage = plain.attributes["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert plain.status == "ok"

    (call,) = parts(asked.output, "tool_call")
    assert call["name"] == TOOL_NAME
    assert "tool_calls" in asked.attributes["finish_reasons"]
    (response,) = parts(answered.input, "tool_call_response")
    assert response["response"] == "18°C, sunny"

    assert REPLY in "".join(strings(streamed.output))
    assert streamed.attributes["usage"]["output_tokens"] == COMPLETION_TOKENS

    assert failed.status == "error"
    assert failed.error is not None
    assert "BadRequestError" in failed.error.type + failed.error.message
    assert failed.model.name == "broken"
    assert "x" in list(strings(failed.input))

    assert embedding.model.version == ANSWERED_BY
    assert embedding.status == "ok"
