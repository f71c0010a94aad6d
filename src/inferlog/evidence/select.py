"""Which entries a pack holds: a system's inferences over a period, and what the log says about them.

* **period**: the system's inferences with ``since <= ts < until`` (optionally one subject, one
  model), purged or erased ones included: their leaves prove they existed.
* **feedback**: labels, outcomes, reviews and overrides of those inferences, filed under the system.
* **access**: reads filed under the system (or every system) from the start of the period on, whose
  query could have returned these inferences (one naming another subject or model could not).
* **admin**: entries about the system or the whole log from the start of the period on (policy
  changes, retention, erasure, key rotation), and the policy change in force when the period began.

Related entries are taken up to the pack's checkpoint: what was logged after it is not in the pack.

With a subject, an erased entry no longer says whose it was (its subject went with its payload): a
subject's pack shows the erasure entries naming that subject's pseudonym and the system's erased
leaves in the period within the seq range each one names (some may be another subject's: the log
cannot tell; with them comes only erased feedback, never a review of someone else). Entries of the
subject purged by retention cannot be told apart at all: the system's pack shows them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from inferlog.errors import UsageError
from inferlog.query import iter_entries
from inferlog.record.model import AccessEntry, AdminEntry, InferenceRecord, StoredEntry
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.protocols import EntryReader

ALL_SYSTEMS = "*"  # the system of entries about the log itself (policy, erasure, keys)
POLICY_CHANGED = "policy.changed"
SUBJECT_ERASED = "subject.erased"


@dataclass(frozen=True)
class Selection:
    """What a pack is about: one system over ``[since, until)``, optionally one subject (as stored) or model."""

    system: str
    since: dt.datetime
    until: dt.datetime
    subject: str | None = None  # as the log stores it (its pseudonym under a key store)
    model: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            if getattr(self, name).tzinfo is None:
                raise UsageError(f"{name} must be timezone-aware (UTC)")
        if self.since >= self.until:
            raise UsageError("--since must be before --until")
        if not self.system or self.system == ALL_SYSTEMS:
            raise UsageError("a pack is about one system: name it with --system")


@dataclass
class Chosen:
    """The seqs a pack holds, each with why it is in it, and how many related entries came too late."""

    roles: dict[int, str] = field(default_factory=dict)  # seq -> period, feedback, access or admin
    later: int = 0  # related entries logged after the checkpoint, not in the pack

    def seqs(self) -> list[int]:
        return sorted(self.roles)

    def count(self, role: str) -> int:
        return sum(1 for found in self.roles.values() if found == role)


def choose(store: EntryReader, selection: Selection, size: int) -> Chosen:
    """The entries of a pack against a checkpoint of ``size`` leaves (its period's must all be in it)."""
    admin = _admin(store, selection)
    found = _period(store, selection, admin)
    period = found.ids
    beyond = [seq for seq in period if seq > size]
    if beyond:
        raise UsageError(
            f"no signed checkpoint covers the period's entries yet: the newest covers seq {size}, "
            f"the period runs to seq {max(beyond)}; run `inferlog checkpoint` first"
        )
    ids = set(period.values()) - found.unattributed
    feedback = (
        stored
        for stored in _query(store, Query(system=selection.system, kind="feedback", since=selection.since))
        if _about(stored, ids, found.unattributed)
    )
    reads = (
        stored
        for stored in _query(
            store, Query(systems=(selection.system, ALL_SYSTEMS), kind="access", since=selection.since)
        )
        if isinstance(stored.entry, AccessEntry)
        and could_have_read(stored.entry.query, selection, found.models)
    )
    chosen = Chosen(dict.fromkeys(period, "period"))
    for role, entries in (("admin", iter(admin)), ("feedback", feedback), ("access", reads)):
        for stored in entries:
            if stored.seq <= size:
                chosen.roles.setdefault(stored.seq, role)
            else:
                chosen.later += 1
    return chosen


def could_have_read(
    query: Mapping[str, Any], selection: Selection, models: Collection[str] | None = None
) -> bool:
    """Whether a read described by ``query`` (an access entry's) may have returned the selection's entries.

    ``models`` are the names of the models that answered the selection's inferences: a read of
    another model's entries could not have returned them.
    """
    kinds = [query["kind"]] if isinstance(query.get("kind"), str) else query.get("kinds")
    if isinstance(kinds, list) and not {"inference", "feedback"} & set(kinds):
        return False
    if models is not None and query.get("model") is not None and query.get("model") not in models:
        return False
    for name in ("subject", "model", "system"):
        wanted = selection.subject if name == "subject" else getattr(selection, name)
        if wanted is not None and query.get(name) not in (None, wanted):
            return False
    systems = query.get("systems")
    if isinstance(systems, list) and selection.system not in systems and ALL_SYSTEMS not in systems:
        return False
    since, until = _time(query.get("since")), _time(query.get("until"))
    return not (
        (until is not None and until <= selection.since) or (since is not None and since >= selection.until)
    )


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _query(store: EntryReader, query: Query) -> Iterator[StoredEntry]:
    return iter_entries(store, replace(query, limit=MAX_PAGE))


@dataclass
class _Period:
    ids: dict[int, str] = field(default_factory=dict)  # seq -> id of the period's inferences
    models: set[str] = field(default_factory=set)  # the names of the models that answered them
    unattributed: set[str] = field(default_factory=set)  # erased leaves that may be another subject's


def _period(store: EntryReader, selection: Selection, admin: list[StoredEntry]) -> _Period:
    """The period's inferences (of the subject, with the erased leaves its erasure names; of the model)."""
    base = Query(
        system=selection.system, kind="inference", since=selection.since, until=selection.until,
        model=selection.model, subject=selection.subject, limit=MAX_PAGE,
    )  # fmt: skip
    found = _Period()
    for stored in iter_entries(store, base):
        found.ids[stored.seq] = stored.id
        found.models.add(_model_name(stored))
    if selection.subject is None:
        return found
    unfiltered = replace(base, subject=None)  # erased entries no longer carry their subject
    for first, last in _erased_ranges(admin, selection.subject):
        for stored in iter_entries(store, unfiltered.next(first - 1)):
            if stored.seq > last:
                break
            if stored.purged and stored.seq not in found.ids:
                found.ids[stored.seq] = stored.id
                found.models.add(_model_name(stored))
                found.unattributed.add(stored.id)
    return found


def _model_name(stored: StoredEntry) -> str:
    return stored.entry.model.name if isinstance(stored.entry, InferenceRecord) else ""


def _about(feedback: StoredEntry, ids: set[str], unattributed: set[str]) -> bool:
    """Feedback on one of the pack's inferences; on an erased leaf that may be another subject's, only
    erased feedback (which shows nothing), never a review of someone else."""
    about = getattr(feedback.entry, "inference_id", None)
    return about in ids or (about in unattributed and feedback.purged)


def _erased_ranges(admin: list[StoredEntry], subject: str) -> list[tuple[int, int]]:
    ranges = []
    for stored in admin:
        entry = stored.entry
        if not isinstance(entry, AdminEntry) or entry.action != SUBJECT_ERASED:
            continue
        details = entry.details
        first, last = details.get("first_seq"), details.get("last_seq")
        if details.get("subject_ref") == subject and isinstance(first, int) and isinstance(last, int):
            ranges.append((first, last))
    return ranges


def _admin(store: EntryReader, selection: Selection) -> list[StoredEntry]:
    """Admin entries from the start of the period on, and the policy change in force at its start."""
    systems = (selection.system, ALL_SYSTEMS)
    found = list(_query(store, Query(systems=systems, kind="admin", since=selection.since)))
    before = Query(systems=systems, kind="admin", until=selection.since, order="desc", limit=MAX_PAGE)
    for stored in iter_entries(store, before):
        if getattr(stored.entry, "action", None) == POLICY_CHANGED:
            found.insert(0, stored)
            break
    return sorted(found, key=lambda stored: stored.seq)
