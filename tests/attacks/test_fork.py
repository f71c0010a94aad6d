"""Forking servers: a child forked while parent threads record and ship must neither hang nor lose.

Prefork servers (gunicorn, uvicorn --workers, multiprocessing pools) fork a process whose threads may
be anywhere: inside the id generator's lock, inside SQLite, inside the PostgreSQL pool. Each child
here records a few entries through the handle it inherited, closes it (flushing) and leaves with
``os._exit``. A child that does not finish within a bounded wait dumps every thread's stack (so the
failure says where it hung) and is killed; the test then fails with that stack, never hangs the suite.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import inferlog
from inferlog.pipeline import Pipeline
from inferlog.record.ids import uuid7
from inferlog.sdk.client import Log
from inferlog.server.metrics import ServerMetrics
from inferlog.store import open_store
from inferlog.testing import make_record

MODEL = inferlog.Model("forked", "1")
CHILD_RECORDS = 3
CHILD_DEADLINE = 60.0  # seconds a child may take before it counts as hung (it normally takes < 1 s)


@dataclass
class Recorder:
    """A parent thread recording as fast as it can, keeping the id of every acknowledged record."""

    log: Log
    ids: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="parent-recorder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        """About 2,000 records a second, the rate the hang was first seen at (bounded: the backlog ships)."""
        while not self.stop.is_set():
            self.ids.append(self.log.record(model=MODEL, input={"who": "parent"}, output=1))
            self.ids.append(self.log.record(model=MODEL, input={"who": "parent"}, output=1))
            time.sleep(0.001)

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=CHILD_DEADLINE)
        assert not self.thread.is_alive(), "the parent's recording thread hung"


def _child(log: Log, folder: Path) -> None:
    """What a forked worker does: record a few entries, close (flush), report its ids, leave."""
    code = 3
    try:
        stacks = (folder / f"{os.getpid()}.stack").open("w")
        faulthandler.dump_traceback_later(CHILD_DEADLINE, exit=True, file=stacks)
        ids = [log.record(model=MODEL, input={"who": "child"}, output=2) for _ in range(CHILD_RECORDS)]
        delivered = log.close(timeout=CHILD_DEADLINE / 2)
        (folder / f"{os.getpid()}.ids").write_text("\n".join(ids))
        code = 0 if delivered else 2
    finally:
        os._exit(code)


def _fork_batch(log: Log, folder: Path, count: int) -> list[int]:
    pids = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            _child(log, folder)
        pids.append(pid)
    return pids


def _reap(pids: list[int], folder: Path) -> None:
    """Wait (bounded) for every child; a hung or failed child fails the test with its stacks."""
    deadline = time.monotonic() + CHILD_DEADLINE + 30
    waiting = set(pids)
    failures: list[str] = []
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                waiting.discard(pid)
                if os.waitstatus_to_exitcode(status) != 0:
                    failures.append(f"child {pid} exited with {os.waitstatus_to_exitcode(status)}")
        if waiting:
            time.sleep(0.01)
    for pid in waiting:  # still running past its own watchdog: kill it, report it
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        failures.append(f"child {pid} hung")
    if failures:
        stacks = "\n".join(
            f"--- {path.name}\n{path.read_text()[:3000]}"
            for path in sorted(folder.glob("*.stack"))
            if path.read_text().strip()
        )
        pytest.fail(f"{len(failures)} forked child(ren) failed: {failures[:10]}\n{stacks}", pytrace=False)


def _child_ids(folder: Path) -> list[str]:
    return [i for path in folder.glob("*.ids") for i in path.read_text().split()]


def _fork_while_recording(url: str, tmp_path: Path, forks: int, batch: int) -> None:
    folder = tmp_path / "children"
    folder.mkdir()
    log = inferlog.open(url, system="fork", spool_dir=tmp_path / "spool", commit_interval=0.001)
    recorder = Recorder(log)
    recorder.start()
    try:
        while len(recorder.ids) < 50:  # the parent's shipper is busy before the first fork
            time.sleep(0.001)
        for start in range(0, forks, batch):
            _reap(_fork_batch(log, folder, min(batch, forks - start)), folder)
    finally:
        recorder.finish()
        assert log.close(timeout=60), f"the parent could not deliver its {len(recorder.ids)} records"
    expected = recorder.ids + _child_ids(folder)
    assert len(_child_ids(folder)) == forks * CHILD_RECORDS
    store = open_store(url)
    try:
        assert store.size() == len(expected) == len(set(expected))
        stored = [s.id for s in store.scan(0, limit=len(expected) + 10)]
        assert sorted(stored) == sorted(expected)
    finally:
        store.close()


@pytest.fixture
def no_fork_warnings() -> Iterator[None]:
    """Python warns about fork() in a threaded process; forking with threads is exactly what is tested."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _salt_and_leaf() -> object:
    return Pipeline().prepare(make_record(system="fork"))


_metrics = ServerMetrics()


def _count_a_request() -> object:
    _metrics.accepted.inc()
    return _metrics.render()


# Work that takes a process-wide lock, by what it is (each once held a lock a child inherited locked).
LOCKED_WORK = {"uuid7": uuid7, "salts": _salt_and_leaf, "server metrics": _count_a_request}


@pytest.mark.parametrize("work", LOCKED_WORK.values(), ids=LOCKED_WORK.keys())
def test_child_forked_while_a_parent_thread_holds_a_lock(
    work: Callable[[], object], no_fork_warnings: None
) -> None:
    """A child forked while a parent thread makes ids, salts or metrics can do the same (its lock is not inherited held)."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            work()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            pid = os.fork()
            if pid == 0:
                faulthandler.dump_traceback_later(10, exit=True)
                work()
                os._exit(0)
            deadline = time.monotonic() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0, "the child hung on a lock it inherited"
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    pytest.fail("a child hung on a lock it inherited", pytrace=False)
                time.sleep(0.001)
    finally:
        stop.set()
        thread.join()


def test_a_thousand_forks_while_recording_on_sqlite(tmp_path: Path, no_fork_warnings: None) -> None:
    """1,000 children forked while the parent records and ships on SQLite all finish, and every record is stored once."""
    _fork_while_recording(f"sqlite:///{tmp_path / 'fork.db'}", tmp_path, forks=1000, batch=20)


def test_a_thousand_forks_while_recording_on_postgresql(
    tmp_path: Path, pg_url: str, no_fork_warnings: None
) -> None:
    """1,000 children forked while the parent records and ships on PostgreSQL all finish, and every record is stored once."""
    _fork_while_recording(pg_url, tmp_path, forks=1000, batch=20)


def test_a_child_that_never_records_does_not_hold_its_dead_parents_spool(
    tmp_path: Path, no_fork_warnings: None
) -> None:
    """A worker forked from a process that then dies does not keep the dead process's spool locked: its records are replayed."""
    spool = tmp_path / "spool"
    read_end, write_end = os.pipe()
    producer = os.fork()
    if producer == 0:  # a server process whose log cannot deliver (nothing listens on port 9)
        code = 3
        try:
            log = inferlog.open("http://127.0.0.1:9", system="fork", spool_dir=spool, api_key="k")
            for _ in range(3):
                log.record(model=MODEL, input={"who": "dead parent"}, output=1)
            if os.fork() == 0:  # the idle worker: waits for the test to let it go
                os.close(write_end)
                os.read(read_end, 1)
                os._exit(0)
            code = 0
        finally:
            os._exit(code)  # dies without close(): its records stay in its spool folder
    os.close(read_end)
    _, status = os.waitpid(producer, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    try:
        with inferlog.open(f"sqlite:///{tmp_path / 'replay.db'}", system="fork", spool_dir=spool) as log:
            assert log.flush(timeout=30), "the dead process's spool was not replayed"
            assert log.counters.replayed == 3
    finally:
        os.close(write_end)  # the idle worker reads EOF and leaves
