"""Metric sources for the alert tests: numbers computed from events kept in memory, or read from a store.

Neither is a database double: :class:`EventSource` is the arithmetic of a window over a list, and
:func:`store_source` reads a real store's inference entries (what ``--source`` loads in the CLI tests).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from inferlog.monitor.source import Scope
from inferlog.record.model import InferenceRecord
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.protocols import EntryReader

T0 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)


@dataclass
class Event:
    ts: dt.datetime
    system: str
    ok: bool = True
    model: str = "scorer"
    version: str = "1"


@dataclass
class EventSource:
    """``volume`` and ``error_rate`` of the events in a window; other metrics from ``fixed`` (None if unset).

    ``calls`` records every question asked; ``barrier``, when set, holds each ``metric`` call until
    as many evaluators as it counts have asked (so racing evaluators measure before either writes).
    """

    events: list[Event] = field(default_factory=list)
    fixed: dict[str, float | None] = field(default_factory=dict)
    calls: list[tuple[str, Scope, dt.datetime, dt.datetime, str | None]] = field(default_factory=list)
    barrier: threading.Barrier | None = None
    fail: set[str] = field(default_factory=set)

    def add(self, ts: dt.datetime, system: str = "credit", *, ok: bool = True, count: int = 1) -> None:
        self.events.extend(Event(ts, system, ok) for _ in range(count))

    def metric(
        self, name: str, scope: Scope, since: dt.datetime, until: dt.datetime, *, reference: str | None = None
    ) -> float | None:
        self.calls.append((name, scope, since, until, reference))
        if self.barrier is not None:
            self.barrier.wait()
        if name in self.fail:
            raise RuntimeError(f"cannot compute {name}")
        if name in self.fixed:
            return self.fixed[name]
        inside = [
            e
            for e in self.events
            if e.system == scope.system
            and since <= e.ts < until
            and (scope.model is None or e.model == scope.model)
            and (scope.version is None or e.version == scope.version)
        ]
        if name == "volume":
            return float(len(inside))
        if name == "error_rate":
            return sum(not e.ok for e in inside) / len(inside) if inside else None
        return None


class StoreSource:
    """``volume`` and ``error_rate`` read from a store's inference entries (a full read of the window)."""

    def __init__(self, store: EntryReader) -> None:
        self.store = store

    def metric(
        self, name: str, scope: Scope, since: dt.datetime, until: dt.datetime, *, reference: str | None = None
    ) -> float | None:
        total = errors = 0
        query = Query(
            system=scope.system, kind="inference", model=scope.model, version=scope.version,
            since=since, until=until, limit=MAX_PAGE,
        )  # fmt: skip
        while True:
            page = self.store.query(query)
            for stored in page:
                if isinstance(stored.entry, InferenceRecord):
                    total += 1
                    errors += stored.entry.status == "error"
            if page.next_cursor is None:
                break
            query = query.next(page.next_cursor)
        if name == "volume":
            return float(total)
        if name == "error_rate":
            return errors / total if total else None
        raise ValueError(f"this test source has no metric {name}")


def store_source(store: Any, policy: Any, keystore: Any) -> StoreSource:
    """The ``--source tests.monitor.alerting:store_source`` factory."""
    return StoreSource(store)
