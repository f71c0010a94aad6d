"""Benchmark 7: OTLP intake — spans/s over ``POST /v1/traces`` against raw writes, and the in-process processor's cost per span.

Intake: N chat spans (GenAI conventions, messages on the span, ~1.3 KB of attributes each) made by the
OpenTelemetry SDK and encoded as its OTLP/HTTP exporter does (protobuf, 512 spans a request, encoded
before the clock starts) are POSTed one request at a time to a real ``inferlog serve`` subprocess, on a
fresh SQLite file and on a fresh PostgreSQL database. Spans/s = N / time to the last answer. Raw: the
very rows the server stored (canonical body and indexed columns) written straight to the same database,
in transactions of 512: ``executemany`` into SQLite (WAL, synchronous=FULL, the same indexes), ``COPY``
into PostgreSQL.

Caller cost: the time one thread spends to start a span with those attributes and end it, per call
(``perf_counter_ns``, after a warm-up, GC on), with (a) no processor, (b) ``InferlogSpanProcessor``
writing into a SQLite log's spool (its committer and shipper running), (c) the SDK's
``BatchSpanProcessor`` with its OTLP/HTTP protobuf exporter sending to a running ``inferlog serve``
(default queue of 2,048, batches of 512). The variants take turns in rounds. The cost per span is the
variant minus (a). What reached each log is counted: the batch processor drops spans when its queue is
full.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from common import Summary, fmt, load_average, machine_info, table, time_each, verdict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import inferlog
from inferlog.apikeys import create_key
from inferlog.query import iter_entries
from inferlog.record.model import InferenceRecord
from inferlog.sdk.integrations.otel import InferlogSpanProcessor
from inferlog.store import open_store
from inferlog.store.base import Query
from ingest import RAW_COLUMNS, raw_ingest
from server import PG, _database, _drop, _raw_copy

BATCH = 512  # the SDK BatchSpanProcessor's export batch
INGEST_TARGET = 0.5  # the sustained-ingest target, applied to spans
SERVICE = "chatbot"


def attributes(i: int) -> dict[str, Any]:
    """One chat call as OpenTelemetry's GenAI instrumentation records it, messages on the span."""
    question = f"Customer {i} asks: what is the status of order {100000 + i}? " * 4
    answer = f"Order {100000 + i} shipped yesterday and arrives on Friday; tracking follows by e-mail. " * 3
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.response.id": f"chatcmpl-{i}",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120 + i % 50,
        "gen_ai.usage.output_tokens": 40 + i % 20,
        "gen_ai.conversation.id": f"conv-{i // 8}",
        "gen_ai.input.messages": (
            '[{"role":"system","parts":[{"type":"text","content":"You answer order questions."}]},'
            f'{{"role":"user","parts":[{{"type":"text","content":"{question}"}}]}}]'
        ),
        "gen_ai.output.messages": (
            f'[{{"role":"assistant","parts":[{{"type":"text","content":"{answer}"}}],"finish_reason":"stop"}}]'
        ),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(db: str) -> Iterator[tuple[str, str]]:
    """``inferlog serve`` on ``db`` in a subprocess: (base url, ingest key for every system)."""
    store = open_store(db)
    key, _ = create_key(store, "ingest", ["*"], "bench")
    store.close()
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferlog", "--db", db, "serve", "--port", str(port), "--max-body-mb", "64"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, key
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


def request_bodies(n: int) -> list[bytes]:
    """N chat spans made by the SDK, in protobuf requests of BATCH spans (as its exporter sends them)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    bodies = []
    for start in range(0, n, BATCH):
        exporter.clear()
        for i in range(start, min(n, start + BATCH)):
            tracer.start_span(f"chat {i}", attributes=attributes(i)).end()
        bodies.append(bytes(encode_spans(exporter.get_finished_spans()).SerializeToString()))
    provider.shutdown()
    return bodies


def post_all(base: str, key: str, bodies: Sequence[bytes]) -> float:
    """Seconds to POST every body (one at a time) and have each answered 200 with nothing refused."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
        start = time.perf_counter()
        for body in bodies:
            response = client.post("/v1/traces", content=body)
            if response.status_code != 200 or response.content:
                raise RuntimeError(f"OTLP post answered {response.status_code}: {response.content[:200]!r}")
        return time.perf_counter() - start


@dataclass
class Intake:
    backend: str
    spans: int
    otlp_rate: float
    raw_rate: float
    body_bytes: float

    @property
    def ratio(self) -> float:
        return self.otlp_rate / self.raw_rate


def sqlite_intake(tmp: Path, bodies: Sequence[bytes], n: int) -> Intake:
    db = tmp / "otlp-intake.db"
    with serving(f"sqlite:///{db}") as (base, key):
        seconds = post_all(base, key, bodies)
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            f"SELECT {', '.join(RAW_COLUMNS)} FROM entries WHERE kind = 'inference' ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    if len(rows) != n:
        raise RuntimeError(f"the server stored {len(rows)} of {n} spans")
    raw = raw_ingest(tmp / "otlp-raw.db", rows)
    return Intake("SQLite", n, n / seconds, raw.rate, sum(len(r[-1]) for r in rows) / n)


def postgres_intake(bodies: Sequence[bytes], n: int) -> Intake:
    name = _database()
    try:
        url = f"{PG}/{name}"
        with serving(url) as (base, key):
            seconds = post_all(base, key, bodies)
        store = open_store(url)
        try:
            records = [
                s.entry
                for s in iter_entries(store, Query(kind="inference", limit=5000))
                if isinstance(s.entry, InferenceRecord)
            ]
        finally:
            store.close()
        if len(records) != n:
            raise RuntimeError(f"the server stored {len(records)} of {n} spans")
        copy_rate = _raw_copy(url, records)
    finally:
        _drop(name)
    return Intake("PostgreSQL", n, n / seconds, copy_rate, 0.0)


# -- the caller's cost per span --------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    samples: list[int]
    delivered: str

    @property
    def summary(self) -> Summary:
        return Summary.of(self.samples)


def _span_call(provider: TracerProvider) -> Callable[[], None]:
    tracer = provider.get_tracer("bench")
    pool = [attributes(i) for i in range(256)]
    counter = iter(range(10**9))

    def call() -> None:
        i = next(counter)
        tracer.start_span("chat", attributes=pool[i % 256]).end()

    return call


def caller_cost(tmp: Path, n: int, warmup: int, rounds: int) -> tuple[list[Variant], int]:
    """Per-call samples of the three variants (rounds interleaved), and what each one delivered."""
    samples: dict[str, list[int]] = {"none": [], "inferlog": [], "batch": []}
    per_round = n // rounds
    log = inferlog.open(f"sqlite:///{tmp / 'caller.db'}", system=SERVICE, spool_dir=tmp / "caller-spool")
    ours = InferlogSpanProcessor(log)
    bare = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    mine = _provider(ours)
    served_db = tmp / "caller-served.db"
    with serving(f"sqlite:///{served_db}") as (base, key):
        exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers={"Authorization": f"Bearer {key}"})
        batch = _provider(BatchSpanProcessor(exporter))
        calls = {"none": _span_call(bare), "inferlog": _span_call(mine), "batch": _span_call(batch)}
        for call in calls.values():
            time_each(call, 1, warmup)  # warm-up only
        for _ in range(rounds):
            for name, call in calls.items():
                samples[name] += time_each(call, per_round, 0)
                if name == "inferlog":
                    log.flush(timeout=600)
                else:
                    time.sleep(0.5)  # let the batch worker catch up between rounds, as inferlog's flush does
        batch.shutdown()  # flushes what the queue still holds
    log.close()
    spans_made = warmup + 1 + per_round * rounds  # time_each's warm-up, its one timed call, the rounds
    landed_ours = _count(f"sqlite:///{tmp / 'caller.db'}")
    landed_batch = _count(f"sqlite:///{served_db}")
    variants = [
        Variant("no span processor (the span alone)", samples["none"], "—"),
        Variant("`InferlogSpanProcessor` → spool → SQLite", samples["inferlog"], f"{landed_ours:,} of {spans_made:,}"),
        Variant("`BatchSpanProcessor` + OTLP/HTTP exporter → `inferlog serve`", samples["batch"],
                f"{landed_batch:,} of {spans_made:,}"),
    ]  # fmt: skip
    return variants, spans_made


def _provider(processor: SpanProcessor) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(processor)
    return provider


def _count(db: str) -> int:
    store = open_store(db)
    try:
        return int(store.stats(Query(kind="inference"))["entries"])
    finally:
        store.close()


@dataclass
class OtlpResults:
    intake: list[Intake]
    variants: list[Variant]
    spans_made: int
    facts: dict[str, str]


def run(tmp: Path, *, n: int, caller_n: int, warmup: int, rounds: int) -> OtlpResults:
    bodies = request_bodies(n)
    intake = [sqlite_intake(tmp, bodies, n), postgres_intake(bodies, n)]
    variants, made = caller_cost(tmp, caller_n, warmup, rounds)
    facts = machine_info(tmp)
    facts["load at end"] = load_average()
    return OtlpResults(intake, variants, made, facts)


def section(res: OtlpResults) -> str:
    none, ours, batch = (v.summary for v in res.variants)
    added_ours, added_batch = ours.minus(none), batch.minus(none)
    ratio = added_batch.mean / added_ours.mean if added_ours.mean > 0 else 0.0
    lines = [
        "## 7. OTLP intake",
        "",
        f"{res.intake[0].spans:,} chat spans (GenAI conventions, messages on the span; canonical body "
        f"≈ {fmt(res.intake[0].body_bytes, 0)} bytes a record) made by the OpenTelemetry SDK and encoded as its "
        f"OTLP/HTTP exporter sends them (protobuf, {BATCH} spans a request, encoded beforehand), POSTed one request "
        "at a time to `inferlog serve` (a subprocess); against the very rows the server stored written straight "
        f"to the same kind of database in transactions of {BATCH} (SQLite `executemany`, PostgreSQL `COPY`), in "
        "the same run.",
        "",
        f"Measured {res.facts['date']} on {res.facts['CPU']} ({res.facts['cores']} cores), {res.facts['Python']}; "
        f"load average at the end {res.facts['load at end']}.",
        "",
        table(
            ["backend", "OTLP spans/s", "raw rows/s", "OTLP ÷ raw", "target", "verdict"],
            [
                [
                    i.backend,
                    fmt(i.otlp_rate),
                    fmt(i.raw_rate),
                    f"{100 * i.ratio:.0f} %",
                    "≥ 50 %",
                    verdict(i.ratio >= INGEST_TARGET),
                ]
                for i in res.intake
            ],
        ),
        "",
        "What one span costs the thread that ends it (start a span with those attributes, end it), µs per "
        f"call, {res.variants[0].summary.n:,} calls per variant in alternating rounds:",
        "",
        table(
            ["variant", "calls", "p50", "p90", "p99", "mean", "max", "reached the log"],
            [
                [
                    v.name,
                    f"{v.summary.n:,}",
                    fmt(v.summary.p50),
                    fmt(v.summary.p90),
                    fmt(v.summary.p99),
                    fmt(v.summary.mean),
                    fmt(v.summary.max),
                    v.delivered,
                ]
                for v in res.variants
            ],
        ),
        "",
        f"Added by the processor (variant minus the span alone): `InferlogSpanProcessor` {fmt(added_ours.p50)} µs "
        f"p50 / {fmt(added_ours.mean)} µs mean; `BatchSpanProcessor` + OTLP {fmt(added_batch.p50)} µs p50 / "
        f"{fmt(added_batch.mean)} µs mean, so on the caller's thread the inferlog processor costs "
        f"{1 / ratio if ratio > 0 else float('inf'):.1f}× the batch processor on the mean. That is the price of "
        "its promise: it maps the span and writes the record durably into the spool before `span.end()` returns, "
        "while the batch processor only queues the span for its worker to encode and send later — and drops what "
        "does not fit in its queue, as the last column shows.",
        "",
    ]
    return "\n".join(lines)
