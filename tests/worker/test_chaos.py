"""The chaos test: producers keep recording through a worker SIGKILL, a broker restart and database
backends terminated; afterwards every acknowledged record is in the log exactly once, seq is gap-free,
``inferlog verify`` passes against the signed checkpoints, and the consumer's lag is back to 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from inferlog.integrity.signing_keys import init_signer
from inferlog.store import Store
from tests.fix_nats import NatsServer
from tests.fix_postgres import admin_connect
from tests.helpers import wait_for
from tests.worker.jetstream import consumer_state
from tests.worker.processes import WorkerProcess

PRODUCERS = 2
PER_PRODUCER = 3000
PAUSE = 0.002  # seconds per record: the producers outlast the faults


def _terminate_backends(pg_url: str) -> int:
    database = pg_url.rsplit("/", 1)[-1]
    with admin_connect() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_chaos(nats_server: NatsServer, pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    """SIGKILL a worker mid-batch, restart NATS, terminate PostgreSQL backends: nothing lost, nothing twice."""
    key = tmp_path / "signer.key"
    init_signer(key)
    env = {"INFERLOG_CHECKPOINT_EVERY": "500", "INFERLOG_CHECKPOINT_SECONDS": "1"}
    args = ("--batch-size", "200", "--ack-wait", "3", "--signer-key", str(key))

    def worker(n: int) -> WorkerProcess:
        return WorkerProcess(nats_server.url, pg_url, tmp_path / f"worker-{n}.log", *args, env=env)

    def _producer_args(p: int) -> list[str]:
        ids = tmp_path / f"ids-{p}.txt"
        return [nats_server.url, str(tmp_path / "spool"), str(ids), str(PER_PRODUCER), str(PAUSE)]

    workers = [worker(i) for i in range(3)]
    producers = [
        subprocess.Popen([sys.executable, "-m", "tests.worker.producer", *_producer_args(p)])
        for p in range(PRODUCERS)
    ]
    try:
        wait_for(lambda: pg_store.size() >= 600, "the workers under way", seconds=60)
        wait_for(lambda: (workers[0].metric("inferlog_worker_batch_size_count") or 0) >= 2, "worker 0 busy")
        workers[
            0
        ].kill()  # mid-batch (it holds one batch, and one fetched ahead): they come back to the others
        wait_for(lambda: pg_store.size() >= 1500, "progress after the kill", seconds=60)
        nats_server.restart()
        wait_for(lambda: pg_store.size() >= 2500, "progress after the broker restart", seconds=90)
        assert _terminate_backends(pg_url) >= 3  # the workers' pools and the signer's session
        workers[0] = worker(3)
        for producer in producers:
            assert producer.wait(180) == 0  # each delivered all it acknowledged to the stream
        acknowledged = []
        for p in range(PRODUCERS):
            acknowledged += (tmp_path / f"ids-{p}.txt").read_text().split()
        assert len(acknowledged) == PRODUCERS * PER_PRODUCER
        wait_for(
            lambda: pg_store.size() >= len(acknowledged), "every acknowledged record in the log", seconds=180
        )
        wait_for(
            lambda: consumer_state(nats_server.url) == {"pending": 0, "ack_pending": 0}, "lag 0", seconds=60
        )
        wait_for(
            lambda: workers[1].metric("inferlog_worker_consumer_lag") == 0, "the lag metric at 0", seconds=30
        )
        wait_for(
            lambda: sum(w.metric("inferlog_worker_signer") or 0 for w in workers) == 1,
            "exactly one elected signer among the live workers",
            seconds=30,
        )
        for w in workers:
            assert w.terminate(60) == 0
    finally:
        for producer in producers:
            if producer.poll() is None:
                producer.kill()
        for w in workers:
            w.stop()

    with psycopg.connect(pg_url) as conn:
        count, distinct, top = conn.execute(
            "SELECT count(*), count(DISTINCT id), max(seq) FROM inferlog.entries WHERE kind = 'inference'"
        ).fetchone() or (0, 0, 0)
        (everything,) = conn.execute("SELECT count(*) FROM inferlog.entries").fetchone() or (0,)
        stored = {
            row[0] for row in conn.execute("SELECT id::text FROM inferlog.entries WHERE kind = 'inference'")
        }
    assert count == distinct == len(acknowledged)  # exactly once
    assert stored == set(acknowledged)  # every acknowledged record, and nothing else
    assert everything == top == pg_store.size()  # seq gap-free (only inferences were written)
    sizes = [c.size for c in pg_store.checkpoints()]
    assert sizes == sorted(set(sizes))  # one root per size
    assert len(sizes) >= 3  # signed on the cadence (every 500 entries or 1 s), not only at the end
    assert sizes[-1] == pg_store.size()  # and the last one covers everything
    verify = subprocess.run(
        [sys.executable, "-m", "inferlog", "--db", pg_url, "verify", "--key", str(tmp_path / "signer.pub")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("OK "), verify.stdout  # every signed checkpoint's root recomputed
