"""The in-process span processor: two lines in an app traced with OpenTelemetry, every AI span in the log."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

import inferlog
from inferlog.record.model import InferenceRecord
from inferlog.sdk.integrations.otel import InferlogSpanExporter, InferlogSpanProcessor
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore
from tests.otlp.expect import check_openai_records
from tests.otlp.instrument import INSTRUMENTATIONS, call_openai, instrumented
from tests.otlp.spans import CHAT_ATTRIBUTES


def _records(url: str) -> list[InferenceRecord]:
    store = SQLiteStore(url)
    try:
        page = store.query(Query(kind="inference", limit=1000))
    finally:
        store.close()
    return [s.entry for s in page.entries if isinstance(s.entry, InferenceRecord)]


@pytest.mark.parametrize("instrumentation", sorted(INSTRUMENTATIONS))
def test_two_lines_keep_an_instrumented_openai_app(
    instrumentation: str, fake_openai: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openai traced by each instrumentation: chats, a tool call, a stream, an error and an embedding land whole."""
    monkeypatch.setenv("INFERLOG_DB", sqlite_url)
    monkeypatch.setenv("INFERLOG_SPOOL_DIR", str(tmp_path / "spool"))
    provider = TracerProvider()
    # The two lines an app adds (here on its own provider rather than the global one):
    processor = InferlogSpanProcessor(system="assistant")
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    with instrumented(instrumentation, provider, monkeypatch):
        agent_attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "assistant"}
        with tracer.start_as_current_span("invoke_agent assistant", attributes=agent_attributes) as agent:
            call_openai(fake_openai)
    provider.shutdown()  # the processor owns the log it opened: this closes it
    records = _records(sqlite_url)
    check_openai_records(records, f"{agent.get_span_context().span_id:016x}")
    assert {r.system for r in records} == {"assistant"}
    assert processor.kept == 7
    assert processor.refused == 0


def test_no_span_is_dropped_when_many_end_at_once(log: inferlog.Log, sqlite_url: str) -> None:
    """4 threads end 2,500 AI spans each as fast as they can: all 10,000 are in the log (no queue to overflow)."""
    provider = TracerProvider()
    processor = InferlogSpanProcessor(log)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("burst")

    def burst() -> None:
        for _ in range(2_500):
            tracer.start_span("chat", attributes=CHAT_ATTRIBUTES).end()

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.flush(timeout=120)
    assert processor.kept == 10_000
    assert log.counters.dropped == 0
    assert log.stats(kind="inference")["entries"] == 10_000


def test_non_ai_spans_are_left_out_and_the_exporter_form_works(log: inferlog.Log, sqlite_url: str) -> None:
    """An HTTP span is skipped; the exporter variant (for SimpleSpanProcessor) records the AI span the same way."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = InferlogSpanExporter(log)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("GET /chat", attributes={"http.request.method": "GET"}):
        tracer.start_span("chat", attributes=CHAT_ATTRIBUTES).end()
    assert log.flush(timeout=30)
    (record,) = _records(sqlite_url)
    assert record.model.version == "gpt-4o-mini-2024-07-18"
    assert record.parent_id is not None  # the HTTP span's id: where the tree leaves the log
    assert exporter.processor.skipped == 1
