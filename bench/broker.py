"""Benchmark 10: JetStream -> ``inferlog worker`` x 1, 2, 3 -> PostgreSQL, against raw COPY of the same rows.

(This file is ``broker.py``, not ``nats.py``: bench/ is on ``sys.path`` first, and a ``nats`` module
here would shadow the nats-py client that inferlog imports. ``run.py --only nats`` runs it.)

Setup, per run: our own ``nats-server -js`` (temp storage, free port) and a stream preloaded with N
records (the same ~1 KB records as the server benchmark), published through the SDK's transport
before any clock starts. For k = 1, 2, 3 workers: a fresh PostgreSQL database, k ``inferlog worker``
processes on a durable consumer of their own (each reads the whole stream), one elected checkpoint
signer among them (integrity on: leaf hashes, Merkle tree, tiles, signed checkpoints every 1000).
The start is gated on the log's own sequencer lock, held by this process while the workers start: when
all of them are up and have fetched a first batch, the lock is released and the clock starts; it stops
when the ledger holds N entries. Raw: the same rows written with COPY in transactions of 1000 into a
plain table with the same indexes, measured in the same run (``server._raw_copy``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from common import OtherLoad, fmt, machine_info, table, verdict

import server
from inferlog.integrity.signing_keys import init_signer
from inferlog.sdk.nats import NatsTransport
from inferlog.store.migrations.postgres import LOCK_NAMESPACE, LOCK_SEQUENCER
from inferlog.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.*

from tests.fix_nats import NatsServer
from tests.helpers import free_port, wait_for
from tests.worker.jetstream import consumer_state

TARGET = 0.5  # of raw COPY, with 2 workers
WORKERS = (1, 2, 3)
BATCH = 500


@dataclass
class Round:
    workers: int
    rate: float
    seconds: float
    prepare_s: float  # summed over the workers: outside the lock
    append_s: float  # summed over the workers: the transaction under the sequencer
    batches: int
    cpu_s: float  # user + system CPU of the worker processes


@dataclass
class BrokerResults:
    n: int
    copy_rate: float
    publish_rate: float
    rounds: list[Round] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def ratio(self, k: int) -> float:
        return next(r.rate for r in self.rounds if r.workers == k) / self.copy_rate


def _metric(port: int, name: str) -> float:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _size(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT size FROM inferlog.ledger_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def _round(tmp: Path, nats_url: str, n: int, k: int, key: Path, durable: str | None = None) -> Round:
    durable = durable or f"bench-{k}"
    name = server._database()
    url = f"{server.PG}/{name}"
    try:
        PostgresStore(url).close()  # the schema, before the clock
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), INFERLOG_CHECKPOINT_EVERY="1000")
        ports = [free_port() for _ in range(k)]
        gate = psycopg.connect(url, autocommit=True)
        gate.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_SEQUENCER))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "inferlog",
                    "--db",
                    url,
                    "worker",
                    "--nats",
                    nats_url,
                    "--durable",
                    durable,
                    "--batch-size",
                    str(BATCH),
                    "--metrics-host",
                    "127.0.0.1",
                    "--metrics-port",
                    str(port),
                    "--signer-key",
                    str(key),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp / f"worker-{k}-{i}.log", "ab"),  # noqa: SIM115
            )
            for i, port in enumerate(ports)
        ]
        try:
            first = min(n, k * BATCH)
            wait_for(
                lambda: consumer_state(nats_url, durable)["ack_pending"] >= first,
                f"{k} workers holding their first batch",
                seconds=120,
                interval=0.1,
            )
            cpu0 = [_cpu_seconds(p.pid) for p in procs]
            start = time.perf_counter()
            gate.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, LOCK_SEQUENCER))
            while _size(url) < n:
                time.sleep(0.02)
            seconds = time.perf_counter() - start
            cpu = sum(_cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0, strict=True))
            prepare = sum(_metric(p, "inferlog_worker_prepare_seconds_sum") for p in ports)
            append = sum(_metric(p, "inferlog_worker_append_seconds_sum") for p in ports)
            batches = int(sum(_metric(p, "inferlog_worker_batch_size_count") for p in ports))
        finally:
            gate.close()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(60)
        return Round(k, n / seconds, seconds, prepare, append, batches, cpu)
    finally:
        server._drop(name)


def run(tmp: Path, *, n: int) -> BrokerResults:
    facts = machine_info(tmp)
    other = OtherLoad()
    broker = NatsServer(tmp / "nats-store", tmp / "nats-server.log")
    broker.start()
    try:
        records = server._records(n)
        transport = NatsTransport(broker.url)
        try:
            start = time.perf_counter()
            for i in range(0, n, 1000):
                transport.send(records[i : i + 1000])
            publish_rate = n / (time.perf_counter() - start)
        finally:
            transport.close()
        key = tmp / "bench-signer.key"
        init_signer(key)
        rounds = []
        for k in WORKERS:
            print(f"  {k} worker(s) ...", flush=True)
            rounds.append(_round(tmp, broker.url, n, k, key))
    finally:
        broker.stop()
    name = server._database()
    try:
        copy_rate = server._raw_copy(f"{server.PG}/{name}", records)
    finally:
        server._drop(name)
    facts["other"] = f"{other.cores():.2f} cores"
    facts["load at end"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return BrokerResults(n, copy_rate, publish_rate, rounds, facts)


def section(res: BrokerResults) -> str:
    f = res.facts
    rows = []
    for r in res.rounds:
        rows.append([
            str(r.workers), f"{r.rate:,.0f}", f"{100 * r.rate / res.copy_rate:.0f} %", fmt(r.seconds, 1),
            fmt(1000 * r.prepare_s / r.batches, 1), fmt(1000 * r.append_s / r.batches, 1),
            f"{r.cpu_s / r.seconds:.2f}",
        ])  # fmt: skip
    two = res.ratio(2)
    headers = ["workers", "records/s", "÷ raw COPY", "wall s", "prepare ms/batch", "append ms/batch (with lock wait)",
               "worker CPU (cores)"]  # fmt: skip
    verdicts = [
        [
            "JetStream → 2 workers → PostgreSQL ÷ raw COPY",
            f"{100 * two:.0f} %",
            "≥ 50 %",
            verdict(two >= TARGET),
        ]
    ]
    return "\n".join(
        [
            "## 10. JetStream → workers → PostgreSQL",
            "",
            f"Measured {f['date']} on {f['CPU']} ({f['cores']} cores), {f['Python']}, {f['OS']}; other "
            f"processes used {f['other']} on average during the run (load average at the end {f['load at end']}). "
            f"`bench/run.py --only nats`; {res.n:,} records (~1 KB) preloaded into a JetStream stream (published "
            f"by the SDK's transport at {res.publish_rate:,.0f}/s, acknowledged); k `inferlog worker` processes, "
            f"batches of {BATCH}, integrity on (leaf hashes, Merkle tree and tiles in each append, one elected "
            "signer signing every 1000 entries), started behind the sequencer lock so the clock runs only while "
            f"all consume. Raw COPY of the same rows in the same run: {res.copy_rate:,.0f} rows/s.",
            "",
            table(headers, rows),
            "",
            table(["measure", "value", "target", "verdict"], verdicts),
            "",
            _reading(res),
        ]
    )


def _reading(res: BrokerResults) -> str:
    """Where the time goes, from the workers' own metrics."""
    one = next(r for r in res.rounds if r.workers == 1)
    prepare_us = 1e6 * one.prepare_s / (one.batches * BATCH)
    append_us = 1e6 * one.append_s / (one.batches * BATCH)
    raw_us = 1e6 / res.copy_rate
    ceiling = raw_us / append_us
    return (
        f"Reading: per record, one worker spends {prepare_us:.0f} µs preparing (decode, policy admission, "
        f"canonical body, commitment, leaf hash: Python, outside any lock, so it runs in parallel across "
        f"workers) and {append_us:.0f} µs in the append (one transaction under the sequencer: the id look-up, "
        f"COPY, the id index, tiles, the compact range), against {raw_us:.0f} µs per row for raw COPY. The "
        "append is serial by design (one Merkle order per log), so however many workers run, the log takes "
        f"at most ~{1e6 / append_us:,.0f} records/s here, {100 * ceiling:.0f} % of raw COPY: that, not the "
        "workers' Python, is the ceiling once two or more workers prepare in parallel. On this 2-core machine "
        "the workers, PostgreSQL and nats-server (and, during this run, other processes) share two cores, so "
        "more workers also steal CPU from PostgreSQL (see the CPU column). What would meet the target: an "
        "append whose time under the lock is within 2× raw COPY, i.e. move the row transfer out of the lock "
        "(each worker COPYs its prepared rows into an unlogged staging table first; under the lock one "
        "`INSERT … SELECT` assigns seqs and the tree is extended from the leaf hashes already in hand), and "
        "workers on hosts of their own so that preparing never competes with PostgreSQL for a core."
    )
