"""Real OTLP requests made by the OpenTelemetry SDK: spans recorded in memory, encoded as exporters do.

``protobuf_body`` is exactly what ``OTLPSpanExporter`` (HTTP, protobuf) sends; ``json_body`` is the
same request in the OTLP JSON mapping (hex ids, lowerCamelCase, 64-bit integers as strings).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

CHAT_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 64,
    "gen_ai.response.id": "chatcmpl-123",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.conversation.id": "conv-1",
    "user.id": "user-7",
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"Capital of France?"}]}]',
    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"Paris."}],"finish_reason":"stop"}]',
}


def finished_spans(
    build: Callable[[Tracer], None], service: str = "chatbot", max_attributes: int = 128
) -> list[ReadableSpan]:
    """The spans ``build`` makes with a real SDK tracer, once they have ended."""
    exporter = InMemorySpanExporter()
    limits = SpanLimits(max_span_attributes=max_attributes, max_attribute_length=None)
    provider = TracerProvider(resource=Resource.create({"service.name": service}), span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build(provider.get_tracer("tests.otlp", "1.0"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def chat_spans(service: str = "chatbot", **extra: Any) -> list[ReadableSpan]:
    """An agent span with one chat span below it (GenAI conventions), plus an HTTP span below the chat."""

    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}

    def build(tracer: Tracer) -> None:
        with (
            tracer.start_as_current_span("invoke_agent planner", attributes=agent),
            tracer.start_as_current_span("chat gpt-4o-mini", attributes={**CHAT_ATTRIBUTES, **extra}),
            tracer.start_as_current_span("POST", attributes={"http.request.method": "POST"}),
        ):
            pass

    return finished_spans(build, service)


def protobuf_body(spans: Sequence[ReadableSpan]) -> bytes:
    return bytes(encode_spans(spans).SerializeToString())


def json_request(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The OTLP JSON form of the request (ids turned from proto3 JSON's base64 into OTLP's hex)."""
    data: dict[str, Any] = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def json_body(spans: Sequence[ReadableSpan]) -> bytes:
    return msgspec.json.encode(json_request(spans))
