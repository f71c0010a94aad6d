"""Rollups kept incrementally equal a full recomputation, after random appends, purges and erasures.

Two oracles: a rebuild of the rollups from scratch (same fold, other batch boundaries and no refold),
and a naive count over the entries as the store holds them (purged payloads gone).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

from inferlog.monitor.engine import Monitor
from inferlog.monitor.sketch import BucketState
from inferlog.monitor.source import Scope
from inferlog.privacy.policy import parse_policy
from inferlog.record import FeedbackEntry, Model, uuid7
from inferlog.record.model import InferenceRecord
from inferlog.retention import Governance, erase
from inferlog.retention.purge import apply_retention
from inferlog.store import Store
from inferlog.store.base import RollupFilter
from inferlog.testing import make_record, prepare

OLD = dt.datetime(2025, 1, 10, 9, 0, tzinfo=dt.UTC)  # past retention when the test applies it
NEW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
MODELS = (Model(name="scorer", version="1"), Model(name="scorer", version="2"))
SUBJECTS = [f"s{i}" for i in range(8)]


def _batch(rng: random.Random, start: dt.datetime, n: int) -> list[Any]:
    entries: list[Any] = []
    for _ in range(n):
        ts = start + dt.timedelta(seconds=rng.randrange(3 * 3600))
        entry = make_record(
            system="credit", model=rng.choice(MODELS), ts=ts, subject=rng.choice(SUBJECTS),
            input={"income": rng.gauss(50, 10), "job": rng.choice("abc"), "age": rng.choice([30, None, "x"])},
            output={"prediction": rng.choice([0, 1])}, latency_ms=rng.random() * 20,
            status=rng.choice(["ok"] * 9 + ["error"]),
        )  # fmt: skip
        entries.append(entry)
        if rng.random() < 0.3:
            entries.append(
                FeedbackEntry(
                    id=uuid7(),
                    system="credit",
                    ts=ts + dt.timedelta(minutes=rng.randrange(1, 90)),
                    inference_id=entry.id,
                    label=rng.choice([0, 1]),
                    override=rng.choice([None, None, 0, 1]),
                )
            )
    return entries


def _summary(state: BucketState) -> tuple[Any, ...]:
    features = tuple(
        (name, f.numbers, tuple(sorted(f.cats.counts.items())), f.cats.other, f.nulls)
        for name, f in sorted(state.features.items())
    )
    confusion = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in state.confusion.items()))
    return (
        state.volume, state.errors, state.payloads, state.rows, features,
        tuple(sorted(state.out_cats.counts.items())), confusion, state.reg_n, round(state.reg_abs, 6),
        round(state.reg_sq, 6), state.reviewed, state.overridden,
        0 if state.latency is None else state.latency.n, 0 if state.delay is None else state.delay.n,
    )  # fmt: skip


def _snapshot(store: Store) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {
        tuple(row.key): _summary(BucketState.from_bytes(row.data))
        for level in (60, 3600, 86400)
        for row in store.rollups(RollupFilter(level))
    }


def _naive(store: Store) -> dict[tuple[Any, ...], tuple[int, int, int, int]]:
    """Per minute key: (volume, errors, entries whose payload fed it, labelled pairs), read off the entries."""
    entries = []
    after = 0
    while batch := store.scan(after=after, limit=1000):
        entries.extend(batch)
        after = batch[-1].seq
    counts: dict[tuple[Any, ...], Counter[str]] = {}
    inferences = {s.id: s for s in entries if isinstance(s.entry, InferenceRecord)}

    def key(entry: InferenceRecord) -> tuple[Any, ...]:
        bucket = int(entry.ts.timestamp()) // 60 * 60
        return (60, entry.system, entry.model.name, entry.model.version, bucket)

    for stored in entries:
        entry = stored.entry
        if isinstance(entry, InferenceRecord):
            c = counts.setdefault(key(entry), Counter())
            c["volume"] += 1
            c["errors"] += entry.status == "error"
            c["payloads"] += stored.body is not None
        elif isinstance(entry, FeedbackEntry) and stored.body is not None:
            target = inferences.get(entry.inference_id)
            if target is None or target.body is None or target.seq > stored.seq:
                continue
            assert isinstance(target.entry, InferenceRecord)
            counts[key(target.entry)]["payloads"] += 1  # the feedback's payload fed the bucket too
            if target.entry.status == "ok" and entry.label is not None:
                counts[key(target.entry)]["labeled"] += 1
    return {k: (c["volume"], c["errors"], c["payloads"], c["labeled"]) for k, c in counts.items()}


def test_incremental_rollups_equal_a_rebuild_and_a_naive_count(any_store: Store) -> None:
    """Random appends, two erasures and a retention run: incremental == rebuilt == counted from the entries."""
    rng = random.Random(12)
    monitor = Monitor(any_store, batch=97)  # odd batches: buckets are folded in several pieces
    policy = parse_policy('[defaults]\nretention = "6mo"\n')
    for round_ in range(3):
        any_store.append(prepare(*_batch(rng, OLD + dt.timedelta(days=round_), 60)))
        any_store.append(prepare(*_batch(rng, NEW, 80)))
        monitor.catch_up()
        erase(Governance(any_store, policy, actor="dpo"), SUBJECTS[round_])
        if round_ == 1:
            apply_retention(Governance(any_store, policy, actor="ops", now=NEW))
        any_store.append(prepare(*_batch(rng, NEW + dt.timedelta(hours=1), 30)))
        monitor.catch_up()
    incremental = _snapshot(any_store)
    naive = _naive(any_store)
    minutes = {
        k: (s[0], s[1], s[2], sum(n for _, row in s[6] for _, n in row))
        for k, s in incremental.items()
        if k[0] == 60
    }
    assert minutes == naive
    assert any(v[2] < v[0] for v in naive.values())  # purges did reach payloads
    assert any(
        k[4] < int(NEW.timestamp()) - 86400 * 300 and v[2] == 0 for k, v in naive.items()
    )  # retention did
    Monitor(any_store).rebuild()
    assert _snapshot(any_store) == incremental


def test_two_monitors_folding_at_once_count_every_entry_once(any_store: Store) -> None:
    """Two monitors (a server and a CLI) folding while records arrive: no entry is folded twice or missed."""
    import threading

    rng = random.Random(3)
    monitors = [Monitor(any_store, batch=50), Monitor(any_store, batch=70)]
    stop = threading.Event()
    failures: list[BaseException] = []

    def fold(monitor: Monitor) -> None:
        try:
            while not stop.is_set():
                monitor.catch_up()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=fold, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    appended = 0
    for _ in range(10):
        batch = [e for e in _batch(rng, NEW, 40) if isinstance(e, InferenceRecord)]
        any_store.append(prepare(*batch))
        appended += len(batch)
    stop.set()
    for thread in threads:
        thread.join()
    monitors[0].catch_up()
    assert failures == []
    day = int(NEW.timestamp()) // 86400 * 86400
    rows = any_store.rollups(RollupFilter(86400, system="credit", since=day, until=day + 86400))
    assert sum(BucketState.from_bytes(row.data).volume for row in rows) == appended


class _StopsBeforeRefold(Monitor):
    """A monitor that stops right after writing a fold (as a killed process would), before refolding."""

    def _pending_refolds(self) -> None:
        return None


def test_a_refold_interrupted_by_a_stop_is_done_by_the_next_fold(store: Store) -> None:
    """The fold notes each purge before writing; a monitor stopped before the refold leaves the note to the next."""
    rng = random.Random(5)
    store.append(prepare(*_batch(rng, NEW, 100)))
    Monitor(store).catch_up()
    erase(Governance(store, parse_policy(""), actor="dpo"), SUBJECTS[0])
    _StopsBeforeRefold(store).catch_up()
    stale = {k: (s[0], s[1], s[2]) for k, s in _snapshot(store).items() if k[0] == 60}
    naive = {k: v[:3] for k, v in _naive(store).items()}
    assert stale != naive  # the erased payloads still count
    assert store.monitor_values("pending-refold:") != []
    Monitor(store).catch_up()  # nothing new to fold, but the note is there
    assert {k: (s[0], s[1], s[2]) for k, s in _snapshot(store).items() if k[0] == 60} == naive
    assert store.monitor_values("pending-refold:") == []


def test_many_series_from_one_read_equal_each_series(store: Store) -> None:
    """``series_many`` (one read of the rollups for a dashboard's dozen series) gives each metric exactly
    what ``series`` gives it alone, drift metrics against a reference included."""
    rng = random.Random(5)
    store.append(prepare(*_batch(rng, NEW, 400)))
    monitor = Monitor(store)
    monitor.catch_up()
    scope = Scope("credit", "scorer", "1")
    since, until = NEW, NEW + dt.timedelta(hours=3)
    plain = ["volume", "error_rate", "latency_p50", "latency_p95", "accuracy", "f1", "override_rate"]
    together = monitor.series_many(plain, scope, "minute", since, until)
    assert together == {name: monitor.series(name, scope, "minute", since, until) for name in plain}
    assert sum(v or 0 for _, v in together["volume"]) > 100
    reference = f"{since.isoformat()}/{(since + dt.timedelta(hours=1)).isoformat()}"
    drift = ["psi:income", "missing_rate:age"]
    with_ref = monitor.series_many(drift, scope, "hour", since, until, reference=reference)
    alone = {name: monitor.series(name, scope, "hour", since, until, reference=reference) for name in drift}
    assert with_ref == alone
