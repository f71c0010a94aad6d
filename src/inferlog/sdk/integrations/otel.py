"""An OpenTelemetry span processor that keeps an app's AI spans in an inferlog log (no collector).

Two lines for an app already traced with the OpenTelemetry SDK::

    from inferlog.sdk.integrations.otel import InferlogSpanProcessor
    trace.get_tracer_provider().add_span_processor(InferlogSpanProcessor(system="chatbot"))

Each AI-operation span (GenAI or OpenInference conventions; the same rule and mapping as the server's
``POST /v1/traces``, see docs/llm-traces.md) becomes an inference record *when it ends*, written into
the log's durable spool on the thread that ended it: there is no in-memory queue to overflow, unlike
the SDK's ``BatchSpanProcessor``, which drops spans when its queue is full. The price is paid on that
thread: the mapping plus a ``record()`` (docs/benchmarks.md, "OTLP intake", measures it against the
batch processor). The spool's own contract applies: when it is full ``record()`` blocks briefly, then
raises with ``fail_closed=True`` or counts and logs the record it could not keep.
Spans that are not AI operations are left out.

The policy file applies as for any record: message text is redacted before the spool, user ids
pseudonymized, ``input``/``output`` sealed.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from inferlog.errors import RecordInvalid
from inferlog.ingest.otlp import Event, Span
from inferlog.ingest.otlp_map import is_ai, to_record
from inferlog.record.model import InferenceRecord
from inferlog.sdk.capture import record_for_caller
from inferlog.sdk.client import Log

log = logging.getLogger("inferlog")

_STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


class InferlogSpanProcessor(SpanProcessor):
    """Writes each AI span into an inferlog :class:`~inferlog.sdk.client.Log` when it ends.

    Pass an open ``log``, or let the processor open one with ``inferlog.open(**options)`` (then it
    closes it at ``shutdown``). Counters: ``kept`` (records written), ``skipped`` (not AI spans),
    ``refused`` (AI spans that could not become a record, e.g. an id over 512 characters; logged).
    """

    def __init__(self, log: Log | None = None, **options: Any) -> None:
        if log is None:
            from inferlog.sdk import open as open_log

            log = open_log(**options)
            self._owned = True
        else:
            self._owned = False
        self.log = log
        self.kept = 0
        self.skipped = 0
        self.refused = 0
        self._count = threading.Lock()  # spans end on many threads: the counters add up exactly

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.keep(span)

    def keep(self, span: ReadableSpan) -> str | None:
        """Record ``span`` if it is an AI operation; returns the record's id (None if left out or refused)."""
        converted = span_of(span)
        if not is_ai(converted):
            with self._count:
                self.skipped += 1
            return None
        try:
            record = to_record(converted, system=self.log.system)
        except RecordInvalid as exc:
            if self.log.fail_closed:
                raise
            with self._count:
                self.refused += 1
            log.error("inferlog: span %s (%s) not recorded: %s", converted.span_id, converted.name, exc)
            return None
        kept = record_for_caller(self.log, **fields_of(record))
        if kept is not None:
            with self._count:
                self.kept += 1
        return kept

    def shutdown(self) -> None:
        if self._owned:
            self.log.close()
        else:
            self.log.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Deliver what is spooled to the store (the spans are already durable in the spool)."""
        return self.log.flush(timeout=timeout_millis / 1000)


class InferlogSpanExporter(SpanExporter):
    """The same, as an exporter, for code that takes one. Use it with ``SimpleSpanProcessor``:
    behind a ``BatchSpanProcessor`` the SDK's queue would drop spans when full before they reach it."""

    def __init__(self, log: Log | None = None, **options: Any) -> None:
        self.processor = InferlogSpanProcessor(log, **options)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.processor.keep(span)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.processor.force_flush(timeout_millis)


def fields_of(record: InferenceRecord) -> dict[str, Any]:
    """``Log.record`` keyword arguments for a mapped record (the Log sets ``system`` itself)."""
    return {
        "model": record.model,
        "input": record.input,
        "output": record.output,
        "latency_ms": record.latency_ms,
        "status": record.status,
        "error": record.error,
        "parameters": record.parameters,
        "attributes": record.attributes,
        "subject": record.subject,
        "actor": record.actor,
        "request_id": record.request_id,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_id": record.parent_id,
        "session_id": record.session_id,
        "id": record.id,
        "ts": record.ts,
        "source": "otlp",
    }


def span_of(span: ReadableSpan) -> Span:
    """An SDK span as the mapping reads it: the same :class:`Span` an OTLP request of it decodes to."""
    context = span.context
    parent = span.parent
    scope = span.instrumentation_scope
    return Span(
        trace_id=f"{context.trace_id:032x}" if context is not None else "0" * 32,
        span_id=f"{context.span_id:016x}" if context is not None else "0" * 16,
        parent_id=f"{parent.span_id:016x}" if parent is not None and parent.span_id else None,
        name=span.name,
        kind=span.kind.name.lower(),
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        attributes=_plain(span.attributes),
        events=tuple(Event(e.name, e.timestamp, _plain(e.attributes)) for e in span.events),
        status=_STATUS.get(span.status.status_code, "unset"),
        status_message=span.status.description or "",
        resource=_plain(span.resource.attributes),
        scope=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
    )


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: _value(value) for key, value in (attributes or {}).items()}


def _value(value: Any) -> Any:
    """An attribute value as OTLP carries it: sequences as lists, bytes as base64, non-finite floats as None."""
    if isinstance(value, str | bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_value(item) for item in value]
    return str(value)
