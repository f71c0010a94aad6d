"""Answers the AI Act asks of the log directly: when was a system in use, and who verified a match.

* :func:`periods`: the periods of use its operator declared (``period.started``/``period.ended``
  admin entries), not inferred from traffic.
* :func:`verification`: for one inference, the distinct natural persons who confirmed or rejected it
  (``feedback`` entries with ``verification`` and an ``actor``); Art. 14(5) asks for two confirmations
  before a remote biometric identification is acted on.
* :func:`biometric_uses`: the uses of a remote biometric identification system in a window (by
  reference database, or only the matches not yet confirmed by two persons), each with its verifiers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec

from inferlog.query import iter_entries
from inferlog.record.model import Entry, FeedbackEntry, InferenceRecord, StoredEntry
from inferlog.record.periods import PERIOD_ENDED, Period, check_order, is_period, periods_of
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.protocols import EntryReader

TWO_PERSONS = 2


def periods(
    store: EntryReader,
    *,
    system: str | None = None,
    systems: tuple[str, ...] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[Period]:
    """The periods of use started or ended in ``[since, until)``, in order of first appearance.

    A period whose start is before ``since`` shows with ``start=None``; one not yet ended with ``end=None``.
    """
    query = Query(system=system, systems=systems, kind="admin", since=since, until=until, limit=MAX_PAGE)
    return periods_of(stored.entry for stored in iter_entries(store, query) if is_period(stored.entry))


def check_period_order(store: EntryReader, entries: Sequence[Entry]) -> None:
    """Refuse (RecordInvalid) a ``period.ended`` in ``entries`` that is before its ``period.started``,
    in the batch or in the log. Only the system's admin entries from the earliest end on are read: a
    start that is a problem is after the end, so this is the recent tail, not the system's history."""
    ends = [e for e in entries if is_period(e) and getattr(e, "action", None) == PERIOD_ENDED]
    known: list[Entry] = []
    for system in sorted({e.system for e in ends}):
        since = min(e.ts for e in ends if e.system == system)
        query = Query(system=system, kind="admin", since=since, limit=MAX_PAGE)
        known += [s.entry for s in iter_entries(store, query) if is_period(s.entry)]
    check_order(entries, known)


@dataclass(frozen=True, slots=True)
class Verification:
    """Who verified one inference's result: the distinct persons who confirmed it and who rejected it."""

    inference_id: str
    confirmed_by: tuple[str, ...]
    rejected_by: tuple[str, ...]

    @property
    def two_person(self) -> bool:
        """Confirmed by at least two distinct natural persons, and rejected by none (Art. 14(5))."""
        return len(self.confirmed_by) >= TWO_PERSONS and not self.rejected_by

    def to_dict(self) -> dict[str, object]:
        return {
            "inference_id": self.inference_id,
            "confirmed_by": list(self.confirmed_by),
            "rejected_by": list(self.rejected_by),
            "two_person": self.two_person,
        }


def verification(store: EntryReader, inference_id: str, *, system: str | None = None) -> Verification:
    """The verifications filed for ``inference_id`` (under ``system``, when given: the inference's own,
    so that a writer of another system cannot add to its reviews)."""
    query = Query(inference_id=inference_id, system=system, kind="feedback", limit=MAX_PAGE)
    return verification_of(inference_id, (s.entry for s in iter_entries(store, query)))


def verification_of(inference_id: str, entries: Iterable[Entry]) -> Verification:
    """:class:`Verification` from feedback entries (others are ignored); each person counted once."""
    confirmed: dict[str, None] = {}
    rejected: dict[str, None] = {}
    for entry in entries:
        if type(entry) is not FeedbackEntry or entry.inference_id != inference_id or entry.actor is None:
            continue
        if entry.verification == "confirmed":
            confirmed[entry.actor] = None
        elif entry.verification == "rejected":
            rejected[entry.actor] = None
    return Verification(inference_id, tuple(confirmed), tuple(rejected))


@dataclass(frozen=True, slots=True)
class BiometricUse:
    """One use of a remote biometric identification system (a v2 record with ``biometric``) and who verified it."""

    stored: StoredEntry
    verification: Verification

    @property
    def matched(self) -> bool:
        record = self.stored.entry
        return (
            type(record) is InferenceRecord
            and record.biometric is not None
            and record.biometric.match is not None
        )

    def to_dict(self) -> dict[str, object]:
        record = self.stored.entry
        bio = record.biometric if type(record) is InferenceRecord else None
        return {
            "id": record.id,
            "seq": self.stored.seq,
            "system": record.system,
            "biometric": None if bio is None else msgspec.to_builtins(bio),
            "matched": self.matched,
            **{k: v for k, v in self.verification.to_dict().items() if k != "inference_id"},
        }


def biometric_uses(
    store: EntryReader,
    *,
    system: str | None = None,
    systems: tuple[str, ...] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    database: str | None = None,
    unverified: bool = False,
) -> list[BiometricUse]:
    """The biometric uses recorded in ``[since, until)``, each with who verified it.

    ``database`` keeps the uses checked against that reference database (by name); ``unverified``
    keeps the matches not confirmed by two distinct persons (what Art. 14(5) forbids acting on). A
    scan of the window's inferences: meant for audits and reviews, not for a hot path.
    """
    query = Query(system=system, systems=systems, kind="inference", since=since, until=until, limit=MAX_PAGE)
    found = [
        stored
        for stored in iter_entries(store, query)
        if type(stored.entry) is InferenceRecord
        and stored.entry.biometric is not None
        and (database is None or stored.entry.biometric.reference_database.name == database)
    ]
    if not found:
        return []
    wanted = {stored.entry.id for stored in found}
    reviews = Query(system=system, systems=systems, kind="feedback", since=since, limit=MAX_PAGE)
    by_inference: dict[str, list[Entry]] = {}
    for stored in iter_entries(store, reviews):
        entry = stored.entry
        if type(entry) is FeedbackEntry and entry.inference_id in wanted and entry.verification is not None:
            by_inference.setdefault(entry.inference_id, []).append(entry)
    uses = [
        BiometricUse(stored, verification_of(stored.entry.id, _same_system(by_inference, stored)))
        for stored in found
    ]
    if unverified:
        uses = [use for use in uses if use.matched and not use.verification.two_person]
    return uses


def _same_system(by_inference: dict[str, list[Entry]], stored: StoredEntry) -> list[Entry]:
    """A use's verifications, only those filed under its own system (another system's writer cannot add)."""
    return [entry for entry in by_inference.get(stored.entry.id, []) if entry.system == stored.entry.system]


__all__ = [
    "BiometricUse",
    "Period",
    "Verification",
    "biometric_uses",
    "periods",
    "verification",
    "verification_of",
]
