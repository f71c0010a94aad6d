"""Periods of use: when an AI system was in use, said by its operator rather than inferred from traffic.

A period is two ``admin`` entries of the system: ``period.started`` and ``period.ended``, each with
``details = {"period": <uuid>, "purpose": ...}`` (the same period id in both). They are plain schema
v1 admin entries, so every reader, old or new, reads them; this module adds the rules for their
details and pairs them into :class:`Period` values. Pure: entries in, periods out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from inferlog.errors import RecordInvalid
from inferlog.record.ids import is_uuid
from inferlog.record.model import AdminEntry, Entry

PERIOD_STARTED = "period.started"
PERIOD_ENDED = "period.ended"
PERIOD_ACTIONS = (PERIOD_STARTED, PERIOD_ENDED)


@dataclass(frozen=True, slots=True)
class Period:
    """One period of use of a system: when it started and, once it did, ended; who said so and why."""

    id: str
    system: str
    start: dt.datetime | None  # None: the start entry is not in what was read (or was never written)
    end: dt.datetime | None  # None: still open (or its end was never written)
    purpose: str | None = None
    actor: str | None = None

    @property
    def open(self) -> bool:
        return self.end is None

    def to_dict(self) -> dict[str, str | bool | None]:
        """JSON-ready: times as RFC 3339 UTC strings."""
        return {
            "id": self.id,
            "system": self.system,
            "start": None if self.start is None else _iso(self.start),
            "end": None if self.end is None else _iso(self.end),
            "purpose": self.purpose,
            "actor": self.actor,
            "open": self.open,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def period_entry(
    *,
    id: str,
    system: str,
    ts: dt.datetime,
    action: str,
    period: str,
    purpose: str | None = None,
    actor: str | None = None,
) -> AdminEntry:
    """The admin entry that starts or ends period ``period`` (checked by :func:`check_period`)."""
    details: dict[str, str] = {"period": period}
    if purpose is not None:
        details["purpose"] = purpose
    entry = AdminEntry(id=id, system=system, ts=ts, action=action, details=details, actor=actor)
    check_period(entry)
    return entry


def is_period(entry: Entry) -> bool:
    """Whether ``entry`` starts or ends a period of use."""
    return type(entry) is AdminEntry and entry.action in PERIOD_ACTIONS


def check_period(entry: Entry, index: int | None = None) -> None:
    """Refuse a period entry whose details do not name its period by UUID, naming the field."""
    if type(entry) is not AdminEntry or entry.action not in PERIOD_ACTIONS:
        return
    if entry.system == "*":  # "*" holds entries about the whole log, which every system's pack carries
        raise RecordInvalid(
            "must name one AI system: a period of use is a system's", field="system", index=index
        )
    period = entry.details.get("period")
    if not (isinstance(period, str) and is_uuid(period)):
        raise RecordInvalid(
            "must be the period's id (a lowercase hyphenated UUID, the same in its start and end entries)",
            field="details.period",
            index=index,
        )
    purpose = entry.details.get("purpose")
    if purpose is not None and not isinstance(purpose, str):
        raise RecordInvalid("must be a string", field="details.purpose", index=index)


def periods_of(entries: Iterable[Entry]) -> list[Period]:
    """The periods that ``entries`` start or end, paired by (system, period id), in order of first appearance.

    Paired within one system: another system's entry naming the same id is another period (a writer
    of one system cannot end a period of another).
    """
    found: dict[tuple[str, str], Period] = {}
    for entry in entries:
        if type(entry) is not AdminEntry or entry.action not in PERIOD_ACTIONS:
            continue
        pid = str(entry.details.get("period"))
        purpose = entry.details.get("purpose")
        key = (entry.system, pid)
        old = found.get(key) or Period(id=pid, system=entry.system, start=None, end=None)
        started = entry.action == PERIOD_STARTED
        found[key] = Period(
            id=pid,
            system=old.system,
            start=entry.ts if started else old.start,
            end=old.end if started else entry.ts,
            purpose=old.purpose or (purpose if isinstance(purpose, str) else None),
            actor=old.actor or entry.actor,
        )
    return list(found.values())


def check_order(entries: Iterable[Entry], known: Iterable[Entry] = ()) -> None:
    """Refuse a ``period.ended`` that is before its own ``period.started`` (same system and id), naming both times.

    ``entries`` are being written (a batch, in order); ``known`` are entries already in the log that
    may hold their starts. Pure: the caller reads ``known`` (:func:`inferlog.query.oversight.check_period_order`).
    """
    starts: dict[tuple[str, str], dt.datetime] = {}
    for entry in known:
        if type(entry) is AdminEntry and entry.action == PERIOD_STARTED:
            starts.setdefault((entry.system, str(entry.details.get("period"))), entry.ts)
    for index, entry in enumerate(entries):
        if type(entry) is not AdminEntry or entry.action not in PERIOD_ACTIONS:
            continue
        key = (entry.system, str(entry.details.get("period")))
        if entry.action == PERIOD_STARTED:
            starts.setdefault(key, entry.ts)
            continue
        start = starts.get(key)
        if start is not None and entry.ts < start:
            raise RecordInvalid(
                f"period {key[1]} of {key[0]} would end at {_iso(entry.ts)}, before it started at {_iso(start)}",
                field="ts",
                index=index,
            )
