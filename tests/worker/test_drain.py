"""SIGTERM drains a worker process: the batch in hand is appended and acknowledged, then it exits 0."""

from __future__ import annotations

from pathlib import Path

from inferlog.store import Store
from tests.fix_nats import NatsServer
from tests.helpers import wait_for
from tests.worker.conftest import StartWorker
from tests.worker.jetstream import consumer_state
from tests.worker.processes import WorkerProcess
from tests.worker.test_worker import _ids_in, _publish_records


def test_sigterm_finishes_the_batch_then_exits(
    nats_server: NatsServer, pg_url: str, pg_store: Store, start_worker: StartWorker, tmp_path: Path
) -> None:
    """After SIGTERM nothing is left delivered-but-unacknowledged, and what was appended was acknowledged."""
    ids = _publish_records(nats_server.url, 6000)
    worker = WorkerProcess(nats_server.url, pg_url, tmp_path / "worker.log", "--batch-size", "100")
    wait_for(lambda: pg_store.size() >= 300, "the worker under way", seconds=60)
    assert worker.terminate(60) == 0
    state = consumer_state(nats_server.url)
    assert state["ack_pending"] == 0  # the batch in hand was acknowledged, no later one fetched
    assert pg_store.size() + state["pending"] == 6000  # appended == acknowledged, the rest waits
    assert state["pending"] > 0  # it stopped early: the drain was a drain, not a finish
    assert "drained" in worker.log_file.read_text()
    start_worker(nats_server.url)  # another worker takes the rest, nothing twice
    wait_for(lambda: pg_store.size() == 6000, "the rest appended", seconds=60)
    assert sorted(_ids_in(pg_store)) == sorted(ids)
