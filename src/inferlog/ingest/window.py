"""The accepted window: how far from now a record's ``ts`` may be when a server receives it.

A writer names its records' times. Unbounded, an ingest key could write one record per month of the
years 1 to 9999: on PostgreSQL each month is a partition, and making one holds the log's write lock
(hundreds of partitions in a few requests, every other writer waiting). Records a server receives
live must fall within ``[now - max_age, now + max_skew]`` (``INFERLOG_MAX_RECORD_AGE``, default 30
days; ``INFERLOG_MAX_CLOCK_SKEW``, default 10 minutes); older records come in on purpose, through
``inferlog import``, which an operator runs and which does not apply the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inferlog.config import (
    DEFAULT_MAX_CLOCK_SKEW,
    DEFAULT_MAX_RECORD_AGE,
    ENV_MAX_CLOCK_SKEW,
    ENV_MAX_RECORD_AGE,
    duration_setting,
)
from inferlog.errors import RecordInvalid
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import Entry


@dataclass(frozen=True)
class AcceptedWindow:
    """Records may be at most ``max_age`` old and at most ``max_skew`` ahead of this clock."""

    max_age: dt.timedelta
    max_skew: dt.timedelta

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AcceptedWindow:
        return cls(
            max_age=duration_setting(ENV_MAX_RECORD_AGE, DEFAULT_MAX_RECORD_AGE, environ),
            max_skew=duration_setting(ENV_MAX_CLOCK_SKEW, DEFAULT_MAX_CLOCK_SKEW, environ),
        )

    def check_time(self, ts: dt.datetime, *, field: str = "ts", index: int | None = None,
                   now: dt.datetime | None = None) -> None:  # fmt: skip
        """Raise :class:`RecordInvalid` naming ``field`` if ``ts`` is outside the window."""
        now = now or dt.datetime.now(dt.UTC)
        if ts.tzinfo is None:
            raise RecordInvalid("must carry a time zone (Z or +hh:mm)", field=field, index=index)
        if ts.tzinfo is not dt.UTC:  # a time in UTC is always one; the check costs µs a record
            try:
                format_timestamp(ts)  # 0001-01-01T00:00:00+14:00 is no time once in UTC
            except RecordInvalid as exc:
                raise RecordInvalid(exc.reason, field=field, index=index) from None
        if ts < now - self.max_age:
            raise RecordInvalid(
                f"{format_timestamp(ts)} is older than this server accepts ({_days(self.max_age)}, "
                f"{ENV_MAX_RECORD_AGE}); bring older records in with `inferlog import`",
                field=field,
                index=index,
            )
        if ts > now + self.max_skew:
            raise RecordInvalid(
                f"{format_timestamp(ts)} is ahead of the server's clock by more than "
                f"{_days(self.max_skew)} ({ENV_MAX_CLOCK_SKEW}): check the producer's clock",
                field=field,
                index=index,
            )

    def check_header_time(self, text: str | None, *, field: str) -> None:
        """A sink's ISO-8601 time header (CloudEvents ``ce-time``), if it is one, within the window."""
        if not text:
            return
        try:
            ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return  # not a time: the sink records the arrival time instead
        if ts.tzinfo is not None:
            self.check_time(ts, field=field)

    def check_epoch_ms(self, ms: int | None, *, field: str) -> None:
        """A sink's epoch-milliseconds header (Kafka's timestamp) within the window, compared as numbers
        (a value past the year 9999 is refused like any other, not turned into a date first)."""
        if ms is None:
            return
        now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
        earliest = now_ms - self.max_age.total_seconds() * 1000
        latest = now_ms + self.max_skew.total_seconds() * 1000
        if not earliest <= ms <= latest:
            raise RecordInvalid(
                f"{ms} ms since 1970 is outside the times this server accepts (at most "
                f"{_days(self.max_age)} old, {ENV_MAX_RECORD_AGE}; at most {_days(self.max_skew)} ahead, "
                f"{ENV_MAX_CLOCK_SKEW})",
                field=field,
            )

    def check(self, entries: Sequence[Entry], now: dt.datetime | None = None) -> None:
        """Every entry's ``ts`` within the window, else :class:`RecordInvalid` naming the first one out."""
        now = now or dt.datetime.now(dt.UTC)
        for index, entry in enumerate(entries):
            self.check_time(entry.ts, index=index, now=now)


def _days(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
