"""``with log.period(...)``: a period of use, written as its start and end entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import TracebackType

from inferlog.errors import UsageError
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry
from inferlog.record.periods import PERIOD_ENDED, PERIOD_STARTED, period_entry


class PeriodOfUse:
    """Writes ``period.started`` when entered and ``period.ended`` when left; ``id`` names the period.

    Usable once. The end is written when the block raises too: the system stopped being in use then.
    """

    def __init__(
        self, write: Callable[[Entry], None], *, system: str, purpose: str | None, actor: str | None
    ) -> None:
        self._write = write
        self.system = system
        self.purpose = purpose
        self.actor = actor
        self.id = uuid7()
        self.start: dt.datetime | None = None
        self.end: dt.datetime | None = None

    def _entry(self, action: str, ts: dt.datetime) -> Entry:
        return period_entry(
            id=uuid7(), system=self.system, ts=ts, action=action, period=self.id,
            purpose=self.purpose, actor=self.actor,
        )  # fmt: skip

    def __enter__(self) -> PeriodOfUse:
        if self.start is not None:
            raise UsageError("a period of use is entered once; call log.period() again for another")
        self.start = dt.datetime.now(dt.UTC)
        self._write(self._entry(PERIOD_STARTED, self.start))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end = dt.datetime.now(dt.UTC)
        self._write(self._entry(PERIOD_ENDED, self.end))
