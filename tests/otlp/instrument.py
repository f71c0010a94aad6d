"""The two OpenAI instrumentations the tests drive, switched on for one TracerProvider at a time."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

INSTRUMENTATIONS = {
    "openinference": "openinference.instrumentation.openai",
    "openai-v2": "opentelemetry.instrumentation.openai_v2",
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@contextmanager
def instrumented(name: str, provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``openai`` instrumented by ``name`` (message content on spans), for ``provider``, until the block ends."""
    # The GenAI instrumentation records message content only when asked, and on spans only in this mode.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    instrumentor: Any = importlib.import_module(INSTRUMENTATIONS[name]).OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def call_openai(base_url: str) -> None:
    """A plain chat, a tool call and its answer, a stream, a failing call and an embedding, like an app would."""
    import openai

    with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as client:
        _calls(client)


def _calls(client: Any) -> None:
    import openai

    client.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Capital of France?"},
        ],
        temperature=0.2,
        max_tokens=50,
    )
    asked = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    )
    call = asked.choices[0].message.tool_calls[0]
    client.chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18°C, sunny"},
        ],
        tools=TOOLS,
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    client.embeddings.create(model="emb-test", input=["hello"])
