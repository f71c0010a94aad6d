"""The SDK's public contract: open, record, feedback, get, query, flush, close."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pytest

import inferlog
from inferlog.errors import NotDurable, RecordInvalid, SpoolFull, UsageError
from inferlog.sdk.client import Log
from inferlog.sdk.transport import StoreTransport
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import capturing_log


def test_record_round_trips_every_field(log: Log, model: inferlog.Model) -> None:
    """A recorded inference reads back with input, output, model and metadata intact (R2, R4, R6)."""
    ts = dt.datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)
    rid = log.record(
        model=model,
        input={"income": 52000.5, "tags": ["a", "b"], "nested": {"x": None}},
        output={"score": 0.81, "probabilities": [0.19, 0.81]},
        latency_ms=12.5,
        parameters={"threshold": 0.5},
        attributes={"endpoint": "/score", "tokens": 42},
        subject="subj-1",
        actor="svc-frontend",
        request_id="req-1",
        trace_id="trace-1",
        session_id="sess-1",
        ts=ts,
    )
    got = log.get(rid)
    assert got is not None
    e = got.entry
    assert isinstance(e, inferlog.InferenceRecord)
    assert (e.input, e.output) == (
        {"income": 52000.5, "tags": ["a", "b"], "nested": {"x": None}},
        {"score": 0.81, "probabilities": [0.19, 0.81]},
    )
    assert e.model == model
    assert (e.ts, e.latency_ms, e.system) == (ts, 12.5, "test-system")
    assert (e.subject, e.actor, e.request_id, e.trace_id, e.session_id) == (
        "subj-1", "svc-frontend", "req-1", "trace-1", "sess-1",
    )  # fmt: skip
    assert e.parameters == {"threshold": 0.5}
    assert e.attributes == {"endpoint": "/score", "tokens": 42}
    assert got.logged_at >= e.ts  # received <= logged (R4)


def test_error_records_keep_type_and_message(log: Log, model: inferlog.Model) -> None:
    """Passing an exception records status=error with its type and message (R3)."""
    rid = log.record(model=model, input=[1], error=TimeoutError("upstream took 30s"), latency_ms=30000)
    got = log.get(rid)
    assert got is not None
    assert isinstance(got.entry, inferlog.InferenceRecord)
    assert got.entry.status == "error"
    assert got.entry.error == inferlog.ErrorInfo("TimeoutError", "upstream took 30s")


def test_numpy_values_are_recorded_as_lists(log: Log, model: inferlog.Model) -> None:
    """numpy arrays and scalars in input/output are stored as plain JSON numbers."""
    rid = log.record(model=model, input=np.array([[1.0, 2.0]]), output=np.float64(0.5))
    got = log.get(rid)
    assert got is not None
    assert isinstance(got.entry, inferlog.InferenceRecord)
    assert (got.entry.input, got.entry.output) == ([[1.0, 2.0]], 0.5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_ms": -3}, "latency_ms"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"status": "fine"}, "status"),
        ({"subject": 42}, "subject"),
        ({"id": "123"}, "id"),
        ({"ts": dt.datetime(2026, 1, 1)}, "ts"),  # noqa: DTZ001 - naive on purpose
        ({"input": object()}, "input"),
        ({"model": "credit-risk"}, "model"),
        ({"source": "carrier-pigeon"}, "source"),
    ],
)
def test_bad_record_is_refused_at_the_call(
    log: Log, model: inferlog.Model, kwargs: dict[str, Any], field: str
) -> None:
    """record() refuses bad values at once, naming the field, and spools nothing."""
    kwargs = {"model": model} | kwargs
    with pytest.raises(RecordInvalid) as info:
        log.record(**kwargs)
    assert info.value.field == field
    assert log.counters.spooled == 0


def test_model_may_be_given_as_mapping(log: Log) -> None:
    """A dict with name and version is accepted as the model."""
    rid = log.record(model={"name": "m", "version": "2"}, output=1)  # type: ignore[arg-type]
    got = log.get(rid)
    assert got is not None
    assert isinstance(got.entry, inferlog.InferenceRecord)
    assert got.entry.model == inferlog.Model("m", "2")


def test_feedback_links_to_inference(log: Log, model: inferlog.Model) -> None:
    """Feedback is its own entry, found by the inference id it refers to (R5, R14)."""
    rid = log.record(model=model, output={"approved": True})
    fid = log.feedback(
        rid, label=False, override={"approved": False}, actor="reviewer-7", comment="income misread"
    )
    page = log.query(kind="feedback", inference_id=rid)
    assert [e.id for e in page] == [fid]
    fb = page[0].entry
    assert isinstance(fb, inferlog.FeedbackEntry)
    assert (fb.label, fb.override, fb.actor, fb.comment) == (
        False,
        {"approved": False},
        "reviewer-7",
        "income misread",
    )
    with pytest.raises(RecordInvalid):
        log.feedback("not-an-id", label=1)


def test_query_sees_own_writes_and_pages(log: Log, model: inferlog.Model) -> None:
    """query() right after record() sees the records, in order, page by page with the cursor."""
    ids = [log.record(model=model, output=i) for i in range(15)]
    first = log.query(limit=10, kind="inference")  # each read adds its access entry to the log
    second = log.query(cursor=first.next_cursor or 0, limit=10, kind="inference")
    assert [e.id for e in first] + [e.id for e in second] == ids
    assert second.next_cursor is None


def test_systems_are_separate_but_queries_see_all(tmp_path: Path, model: inferlog.Model) -> None:
    """Each handle writes its own system; queries see every system unless filtered."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = inferlog.open(url, system="credit", spool_dir=tmp_path / "sa")
    b = inferlog.open(url, system="fraud", spool_dir=tmp_path / "sb")
    a.record(model=model, output=1)
    b.record(model=model, output=2)
    b.flush()
    assert {e.entry.system for e in a.query(kind="inference")} == {"credit", "fraud"}
    assert [e.entry.system for e in a.query(system="fraud", kind="inference")] == ["fraud"]
    a.close()
    b.close()


def test_flush_and_counters(log: Log, model: inferlog.Model) -> None:
    """After flush() everything spooled is shipped and the counters say so."""
    for i in range(50):
        log.record(model=model, output=i)
    assert log.flush(timeout=10)
    counters = log.counters.as_dict()
    assert counters["spooled"] == 50
    assert counters["shipped"] == 50
    assert counters["failed"] == counters["dropped"] == 0
    assert log.pending() == 0
    assert log.stats()["sdk"]["shipped"] == 50


def test_machine_durability_returns_after_sync(tmp_path: Path, model: inferlog.Model) -> None:
    """At machine level, record() returns only once the spool sync covers the record."""
    log = inferlog.open(f"sqlite:///{tmp_path / 'm.db'}", system="s", durability="machine")
    for _ in range(20):
        log.record(model=model, output=1)
        assert log._spool.synced >= log._spool.appended
    log.close()


def test_env_settings_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: inferlog.Model
) -> None:
    """INFERLOG_DB and INFERLOG_SYSTEM apply when open() is not told otherwise."""
    monkeypatch.setenv("INFERLOG_DB", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("INFERLOG_SYSTEM", "from-env")
    log = inferlog.open()
    rid = log.record(model=model)
    got = log.get(rid)
    assert got is not None
    assert got.entry.system == "from-env"
    log.close()
    assert (tmp_path / "env.db").exists()
    monkeypatch.setenv("INFERLOG_DURABILITY", "eventually")
    with pytest.raises(UsageError, match="INFERLOG_DURABILITY"):
        inferlog.open()


def test_closed_log_refuses_records(tmp_path: Path, model: inferlog.Model) -> None:
    """After close(), record() raises with fail_closed, and counts a drop without it."""
    strict = inferlog.open(f"sqlite:///{tmp_path / 'a.db'}", system="s", fail_closed=True)
    strict.close()
    with pytest.raises(NotDurable, match="closed"):
        strict.record(model=model)
    lax = inferlog.open(f"sqlite:///{tmp_path / 'b.db'}", system="s")
    lax.close()
    lax.record(model=model)
    assert lax.counters.dropped == 1


class _BrokenTransport:
    """A transport whose destination is down: every send fails (as a network error would)."""

    def __init__(self) -> None:
        self.attempts = 0

    def send(self, batch: object) -> NoReturn:
        self.attempts += 1
        raise ConnectionError("log server unreachable")

    def close(self) -> None:
        pass


def test_full_spool_raises_when_fail_closed(tmp_path: Path, model: inferlog.Model) -> None:
    """With the destination down and the spool at its bound, fail_closed record() raises SpoolFull."""
    log = Log(
        _BrokenTransport(), system="s", spool_dir=tmp_path / "spool", fail_closed=True,
        spool_segment_bytes=64 * 1024, spool_max_bytes=128 * 1024, block_timeout=0.2,
    )  # fmt: skip
    big = "x" * 4000

    def fill() -> None:
        for _ in range(100):
            log.record(model=model, input=big)

    with pytest.raises(SpoolFull, match="did not drain"):
        fill()
    assert log.counters.spooled >= 16  # what fitted was kept
    assert log.counters.retries >= 1
    log.close(timeout=0.5)
    assert any((tmp_path / "spool").glob("w-*/*.seg"))  # left for replay, not deleted


def test_full_spool_counts_drops_when_fail_open(
    tmp_path: Path, model: inferlog.Model, caplog: pytest.LogCaptureFixture
) -> None:
    """Without fail_closed, records that cannot be spooled are counted as dropped and logged as errors."""
    log = Log(
        _BrokenTransport(), system="s", spool_dir=tmp_path / "spool",
        spool_segment_bytes=64 * 1024, spool_max_bytes=128 * 1024, block_timeout=0.05,
    )  # fmt: skip
    for _ in range(60):
        log.record(model=model, input="x" * 4000)
    assert log.counters.dropped > 0
    assert log.counters.spooled + log.counters.dropped == 60
    assert "NOT logged durably" in caplog.text
    log.close(timeout=0.5)


def test_store_outage_then_recovery_delivers_everything(tmp_path: Path, model: inferlog.Model) -> None:
    """While another process holds the SQLite write lock, records wait in the spool; then all arrive once."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    store = SQLiteStore(url, timeout=0.05)
    log = Log(StoreTransport(store), store=store, system="s", spool_dir=tmp_path / "spool")
    blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    ids = [log.record(model=model, output=i) for i in range(200)]
    assert not log.flush(timeout=0.5)
    assert log.counters.retries >= 1
    blocker.execute("ROLLBACK")
    blocker.close()
    assert log.flush(timeout=30)
    assert [e.id for e in log.query(limit=1000)] == ids
    log.close()


def test_capturing_log_keeps_entries_in_memory(model: inferlog.Model) -> None:
    """inferlog.testing.capturing_log collects records for users' own tests."""
    with capturing_log() as (log, transport):
        rid = log.record(model=model, output=1)
        assert log.flush(timeout=10)
        assert [e.id for e in transport.entries] == [rid]


def test_nan_features_are_recorded_not_lost(log: Log, model: inferlog.Model) -> None:
    """A NaN in the input (a missing feature) does not lose the record: it is stored as null."""
    rid = log.record(model=model, input={"income": float("nan"), "age": 41}, output=float("inf"))
    assert log.flush(timeout=10)
    assert log.counters.failed == 0
    got = log.get(rid)
    assert got is not None
    assert isinstance(got.entry, inferlog.InferenceRecord)
    assert (got.entry.input, got.entry.output) == ({"income": None, "age": 41}, None)


def test_forked_child_records_through_its_own_spool(tmp_path: Path, model: inferlog.Model) -> None:
    """After os.fork(), a child's records go through a fresh spool and shipper and reach the store."""
    import os

    log = inferlog.open(f"sqlite:///{tmp_path / 'fork.db'}", system="s", spool_dir=tmp_path / "spool")
    parent_id = log.record(model=model, output="parent")
    assert log.flush()
    pid = os.fork()
    if pid == 0:  # the child: no threads survived the fork
        try:
            child_id = log.record(model=model, output="child")
            ok = log.flush(timeout=20)
            (tmp_path / "child-id").write_text(child_id if ok else "")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child_id = (tmp_path / "child-id").read_text()
    assert child_id
    assert log.get(child_id) is not None
    assert log.get(parent_id) is not None
    log.close()
