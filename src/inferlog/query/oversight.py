"""Answers the AI Act asks of the log directly: when was a system in use, and who verified a match.

* :func:`periods`: the periods of use its operator declared (``period.started``/``period.ended``
  admin entries), not inferred from traffic.
* :func:`verification`: for one inference, the distinct natural persons who confirmed or rejected it
  (``feedback`` entries with ``verification`` and an ``actor``); Art. 14(5) asks for two confirmations
  before a remote biometric identification is acted on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from inferlog.query import iter_entries
from inferlog.record.model import Entry, FeedbackEntry
from inferlog.record.periods import Period, is_period, periods_of
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


__all__ = ["Period", "Verification", "periods", "verification", "verification_of"]
