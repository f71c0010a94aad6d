"""Benchmark 4: the server on PostgreSQL — HTTP ingest against raw COPY, and query latency at scale.

HTTP ingest: a real ``inferlog serve`` subprocess on a fresh PostgreSQL database; this process POSTs
NDJSON batches of 1000 records (pre-encoded, so the client's cost is small) and waits for each
answer. Raw: the same rows (canonical body and indexed columns) written with ``COPY`` in transactions
of 1000 into a plain table with the same indexes, in the same run.

Queries: the store is filled with N records across 4 models x 3 versions and 30 days, then timed
through ``PostgresStore``: a point lookup by id (random ids), and a filtered page of 100 (model,
version, the last 7 days). Each query alone, after warm-up; p50 and p99.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import psycopg
from common import Summary, fmt, table, verdict

from inferlog.apikeys import create_key
from inferlog.pipeline import Pipeline
from inferlog.record.model import InferenceRecord, Model
from inferlog.store.base import Query
from inferlog.store.postgres import PostgresStore
from inferlog.testing import make_record

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.helpers

from tests.helpers import free_port, wait_until_serving

PG = "postgresql://postgres@127.0.0.1:5432"
BATCH = 1000
HTTP_TARGET = 0.5
POINT_TARGET_MS = 5.0
PAGE_TARGET_MS = 50.0
MODELS = [Model(f"model-{m}", f"{v}.0") for m in range(4) for v in range(3)]


@dataclass
class ServerResults:
    n_http: int
    http_rate: float
    copy_rate: float
    n_query: int
    point_ms: Summary
    page_ms: Summary
    page_rows: float

    @property
    def ratio(self) -> float:
        return self.http_rate / self.copy_rate


def _database() -> str:
    name = f"inferlog_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _records(n: int, days: int = 30) -> list[InferenceRecord]:
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(7)
    return [
        make_record(
            model=MODELS[k % len(MODELS)],
            ts=now - dt.timedelta(seconds=rng.uniform(0, days * 86400)),
            input={f"f{i}": rng.random() for i in range(30)},
            output={"probability": rng.random()},
            attributes={"endpoint": "/v1/score", "region": "eu-west-1", "tokens": k % 512},
        )
        for k in range(n)
    ]


def http_ingest(n: int) -> tuple[float, float]:
    """(records/s through HTTP into PostgreSQL, records/s raw COPY of the same rows)."""
    name = _database()
    try:
        url = f"{PG}/{name}"
        store = PostgresStore(url)
        token, _ = create_key(store, "ingest", ["*"], "bench")
        store.close()
        port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inferlog",
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--max-body-mb",
                "64",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(f"{base}/healthz", "inferlog serve to come up", proc)
            records = _records(n)
            bodies = [
                b"\n".join(msgspec.json.encode(r) for r in records[i : i + BATCH]) for i in range(0, n, BATCH)
            ]
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as client:
                start = time.perf_counter()
                for body in bodies:
                    response = client.post(
                        "/v1/records", content=body, headers={"Content-Type": "application/x-ndjson"}
                    )
                    response.raise_for_status()
                http_rate = n / (time.perf_counter() - start)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        copy_rate = _raw_copy(url, records)
    finally:
        _drop(name)
    return http_rate, copy_rate


def _raw_copy(url: str, records: list[InferenceRecord]) -> float:
    pipeline = Pipeline()
    rows = []
    for r in records:
        body = pipeline.prepare(r).body.decode()
        rows.append((r.id, "inference", r.system, r.ts, dt.datetime.now(dt.UTC), r.model.name, r.model.version,
                     r.status, r.latency_ms, body))  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE raw_entries (id uuid PRIMARY KEY, kind text, system text, ts timestamptz, "
            "logged_at timestamptz, model_name text, model_version text, status text, latency_ms float8, body text)"
        )
        for sql in (
            "CREATE INDEX ON raw_entries (system, ts)",
            "CREATE INDEX ON raw_entries (model_name, model_version, ts)",
            "CREATE INDEX ON raw_entries (ts)",
        ):
            conn.execute(sql)
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with (
                conn.transaction(),
                conn.cursor().copy(
                    "COPY raw_entries (id, kind, system, ts, logged_at, model_name, model_version, status, latency_ms, body) "
                    "FROM STDIN"
                ) as copy,
            ):
                for row in rows[i : i + BATCH]:
                    copy.write_row(row)
        return len(rows) / (time.perf_counter() - start)


def query_latency(n: int, samples: int = 300) -> tuple[Summary, Summary, float]:
    name = _database()
    try:
        store = PostgresStore(f"{PG}/{name}")
        pipeline = Pipeline()
        ids: list[str] = []
        chunk = 10_000
        for start in range(0, n, chunk):
            records = _records(min(chunk, n - start))
            store.append([pipeline.prepare(r) for r in records])
            ids += [r.id for r in records[:: max(1, len(records) // 200)]]
        with psycopg.connect(f"{PG}/{name}", autocommit=True) as conn:
            conn.execute("ANALYZE")
        rng = random.Random(11)
        for entry_id in ids[:50]:  # warm-up
            store.get(entry_id)
        point = []
        for _ in range(samples):
            entry_id = rng.choice(ids)
            t = time.perf_counter_ns()
            store.get(entry_id)
            point.append(time.perf_counter_ns() - t)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        page = []
        rows = 0
        for k in range(samples):
            model = MODELS[k % len(MODELS)]
            query = Query(model=model.name, version=model.version, since=since, limit=100, order="desc")
            t = time.perf_counter_ns()
            got = store.query(query)
            page.append(time.perf_counter_ns() - t)
            rows += len(got)
        store.close()
    finally:
        _drop(name)
    # Summary takes nanoseconds and reports microseconds: hand it microseconds to read milliseconds.
    return Summary.of([x // 1000 for x in point]), Summary.of([x // 1000 for x in page]), rows / samples


def run(*, n_http: int, n_query: int) -> ServerResults:
    http_rate, copy_rate = http_ingest(n_http)
    point, page, page_rows = query_latency(n_query)
    return ServerResults(n_http, http_rate, copy_rate, n_query, point, page, page_rows)


def section(res: ServerResults) -> str:
    return "\n".join(
        [
            "## 4. The server on PostgreSQL",
            "",
            f"HTTP ingest: {res.n_http:,} ~1 KB records POSTed as NDJSON batches of {BATCH} to a real `inferlog serve` "
            "(one client, sequential), against raw `COPY` of the same rows into a plain table with comparable "
            "indexes, in the same run. Queries: through `PostgresStore` on a database of "
            f"{res.n_query:,} records (4 models x 3 versions over 30 days), {res.point_ms.n} samples each, ms.",
            "",
            table(
                ["measure", "value", "target", "verdict"],
                [
                    ["HTTP ingest, records/s", fmt(res.http_rate), "", ""],
                    ["raw COPY, records/s", fmt(res.copy_rate), "", ""],
                    [
                        "HTTP / raw",
                        f"{res.ratio:.0%}",
                        f"≥ {HTTP_TARGET:.0%}",
                        verdict(res.ratio >= HTTP_TARGET),
                    ],
                    [
                        "point lookup by id p50 / p99 (ms)",
                        f"{fmt(res.point_ms.p50)} / {fmt(res.point_ms.p99)}",
                        f"p99 < {POINT_TARGET_MS:g}",
                        verdict(res.point_ms.p99 < POINT_TARGET_MS),
                    ],
                    [
                        f"filtered page of 100 p50 / p99 (ms; {res.page_rows:.0f} rows on average)",
                        f"{fmt(res.page_ms.p50)} / {fmt(res.page_ms.p99)}",
                        f"p99 < {PAGE_TARGET_MS:g}",
                        verdict(res.page_ms.p99 < PAGE_TARGET_MS),
                    ],
                ],
            ),
            "",
        ]
    )
