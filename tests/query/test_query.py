"""Reading helpers: time and attribute parsing, paging with the cursor, following a growing log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

import inferlog
from inferlog.errors import UsageError
from inferlog.ingest import Ingestor
from inferlog.query import build_query, follow, iter_entries, last_entries, parse_since
from inferlog.record.ids import uuid7
from inferlog.record.model import InferenceRecord
from inferlog.store import Store, open_store
from inferlog.store.base import Query

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def record(system: str = "a", version: str = "1") -> InferenceRecord:
    return InferenceRecord(
        id=uuid7(), system=system, ts=dt.datetime.now(dt.UTC), model=inferlog.Model("m", version)
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A log of 7 inferences: seq 1-5 and 7 from system a, seq 6 from system b."""
    handle = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    Ingestor(handle).append([record() for _ in range(5)] + [record("b"), record()])
    yield handle
    handle.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - dt.timedelta(seconds=90)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("1h", NOW - dt.timedelta(hours=1)),
        ("1.5h", NOW - dt.timedelta(minutes=90)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("2026-01-31T10:00:00Z", dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ("2026-01-31T12:00:00+02:00", dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ("2026-01-31T10:00:00", dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ("2026-01-31", dt.datetime(2026, 1, 31, tzinfo=dt.UTC)),
    ],
)
def test_parse_since_reads_durations_and_iso_times(text: str, expected: dt.datetime) -> None:
    """Durations count back from now; ISO times keep their zone, and a time without one is UTC."""
    parsed = parse_since(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["", "yesterday", "-1h", "1y", "31/01/2026"])
def test_parse_since_refuses_other_text(text: str) -> None:
    """Anything else is a UsageError that shows the accepted forms."""
    with pytest.raises(UsageError, match="30m, 1h, 7d"):
        parse_since(text, now=NOW)


def test_build_query_types_attribute_values() -> None:
    """--attr values that read as JSON numbers/booleans/strings keep that type; others are text."""
    query = build_query(attr=["n=3", "x=1.5", "ok=true", 'code="3"', "region=eu-west", "raw=[1]"])
    assert dict(query.attributes) == {
        "n": 3, "x": 1.5, "ok": True, "code": "3", "region": "eu-west", "raw": "[1]",
    }  # fmt: skip


def test_build_query_copies_filters_and_paging() -> None:
    """Plain filters, cursor, limit, order and times land on the Query; None means unfiltered."""
    query = build_query(
        system="s", model="m", version=None, since="1h", until="2026-06-01T12:00:00Z", cursor=40,
        limit=5, order="desc", now=NOW,
    )  # fmt: skip
    assert (query.system, query.model, query.version) == ("s", "m", None)
    assert (query.since, query.until) == (NOW - dt.timedelta(hours=1), NOW)
    assert (query.after, query.limit, query.order) == (40, 5, "desc")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attr": ["novalue"]}, "key=value"),
        ({"attr": ["a=1", "a=2"]}, "filtered twice"),
        ({"since": "1h", "until": "2h"}, "before --until"),
        ({"colour": "red"}, "unknown query option"),
        ({"limit": 0}, "limit: must be"),
    ],
)
def test_build_query_refuses_nonsense(options: dict[str, Any], message: str) -> None:
    """Malformed attributes, an empty time window, unknown options and bad limits are UsageErrors."""
    with pytest.raises(UsageError, match=message):
        build_query(now=NOW, **options)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_iter_entries_reads_every_page(store: Store, order: Literal["asc", "desc"]) -> None:
    """Paging two at a time visits every matching entry exactly once, in the query's order."""
    seqs = [e.seq for e in iter_entries(store, Query(system="a", limit=2, order=order))]
    expected = [1, 2, 3, 4, 5, 7]
    assert seqs == (expected if order == "asc" else expected[::-1])


def test_last_entries_are_oldest_first_and_give_the_head(store: Store) -> None:
    """last_entries returns the newest matching entries in seq order and the seq to follow from."""
    latest, head = last_entries(store, Query(system="a"), 3)
    assert [e.seq for e in latest] == [4, 5, 7]
    assert head == 7
    assert last_entries(store, Query(), 0) == ([], 7)


def test_follow_yields_entries_appended_between_polls(store: Store) -> None:
    """follow yields what exists after the cursor, then entries appended while it waits, each once."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:
            Ingestor(store).append([record(), record("b"), record()])

    stream = follow(store, Query(system="a", after=4, limit=2), interval=0.25, sleep=sleep,
                    stop=lambda: len(waits) >= 2)  # fmt: skip
    assert [e.seq for e in stream] == [5, 7, 8, 10]
    assert waits == [0.25, 0.25]


def test_follow_stops_when_asked(store: Store) -> None:
    """With stop() already true, follow yields nothing and never sleeps."""

    def sleep(seconds: float) -> None:  # pragma: no cover - must not run
        raise AssertionError("slept")

    assert list(follow(store, Query(), stop=lambda: True, sleep=sleep)) == []
