"""Closing a SQLite store while another thread reads from it: the reader stops cleanly, nothing crashes.

A connection closed under a running query is a use-after-free inside SQLite; the full suite once died
of a segfault when a CLI command closed its store while the model registry's background load read it.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from inferlog.errors import UsageError
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.record.model import InferenceRecord, Model
from inferlog.store.base import Query
from inferlog.store.sqlite import SQLiteStore


def test_close_waits_for_reads_in_other_threads(tmp_path: Path) -> None:
    """Readers in four threads query until the store closes under them: each ends on 'store is closed'."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    records = [
        InferenceRecord(
            id=uuid7(), system="s", ts=dt.datetime.now(dt.UTC), model=Model("m", "1"), input={"i": i}
        )
        for i in range(2000)
    ]
    store.append(Pipeline().prepare_all(records))
    started = threading.Barrier(5)
    outcomes: list[str] = []

    def read() -> None:
        started.wait()
        try:
            while True:
                assert len(store.query(Query(limit=500))) == 500
        except UsageError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=read, name=f"reader-{n}") for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    store.close()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == ["this store is closed"] * 4
