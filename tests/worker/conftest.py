"""In-process workers for the broker tests: each runs in a thread, drained and joined after the test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from inferlog.broker.wire import NatsTarget
from inferlog.store import Store, open_store
from inferlog.worker import Worker, WorkerOptions

StartWorker = Callable[..., Worker]


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    yield store
    store.close()


@pytest.fixture
def start_worker(pg_store: Store) -> Iterator[StartWorker]:
    """``start_worker(nats_url, cls=Worker, **options)``: a worker running in a thread of this test."""
    running: list[tuple[Worker, threading.Thread]] = []

    def start(nats_url: str, *, cls: type[Worker] = Worker, **kwargs: Any) -> Worker:
        options = {"fetch_wait": 0.2, "housekeeping_every": 0.2, **kwargs.pop("options", {})}
        worker = cls(pg_store, NatsTarget.parse(nats_url), options=WorkerOptions(**options), **kwargs)
        thread = threading.Thread(target=worker.run, name=f"test-worker-{len(running)}", daemon=True)
        thread.start()
        running.append((worker, thread))
        return worker

    yield start
    for worker, _ in running:
        worker.drain()
    for worker, thread in running:
        thread.join(30)
        worker.close()
