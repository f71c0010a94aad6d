"""The values that cross the store seam: queries and pages, append results, ledger rows, API keys, purges.

The protocols that take and return them are in :mod:`inferlog.store.protocols`. These are plain
data with their own checks (a :class:`Query` refuses nonsense before any database sees it), shared
by every backend and every caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

from inferlog.errors import BadParameter, UsageError
from inferlog.record.model import KINDS, STATUSES, StoredEntry

AppendStatus = Literal["new", "duplicate", "conflict", "invalid"]
Order = Literal["asc", "desc"]

MAX_PAGE = 10_000
MAX_SEQ = 2**63 - 1  # the largest seq (and cursor) a BIGINT / SQLite INTEGER column holds
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)

# Query fields that hold text from a caller, by the name the faces give them (HTTP parameter, CLI option).
_TEXT_FILTERS = {
    "system": "system", "kind": "kind", "model": "model", "version": "version", "status": "status",
    "request_id": "request_id", "trace_id": "trace_id", "session_id": "session_id",
    "subject": "subject", "inference_id": "inference_id",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What became of one appended entry."""

    id: str
    seq: int | None  # None unless the entry is in the log
    status: AppendStatus
    reason: str | None = None  # why a conflict or an invalid entry was refused


@dataclass(frozen=True)
class Query:
    """Filters for reading the log; every field is optional and they combine with AND."""

    system: str | None = None
    kind: str | None = None
    systems: tuple[str, ...] | None = None  # any of these (a key's scope); None = no restriction
    kinds: tuple[str, ...] | None = None  # any of these kinds (a role's view); None = no restriction
    model: str | None = None
    version: str | None = None
    status: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    session_id: str | None = None
    subject: str | None = None
    inference_id: str | None = None  # feedback entries about one inference
    since: dt.datetime | None = None  # ts >= since
    until: dt.datetime | None = None  # ts < until
    attributes: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    after: int = 0  # seq cursor: asc reads seq > after; desc reads seq < after (0 = from the end)
    limit: int = 100
    order: Order = "asc"

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise BadParameter(f"must be between 1 and {MAX_PAGE}, got {self.limit}", field="limit")
        if self.order not in ("asc", "desc"):
            raise UsageError(f"order must be 'asc' or 'desc', got {self.order!r}")
        for kind in (self.kind, *(self.kinds or ())):
            if kind is not None and kind not in KINDS:
                raise UsageError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if self.systems is not None and not self.systems:
            raise UsageError("systems, when given, must name at least one system")
        if self.kinds is not None and not self.kinds:
            raise UsageError("kinds, when given, must name at least one kind")
        if self.status is not None and self.status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise UsageError(f"{name} must be timezone-aware (UTC)")
        if not 0 <= self.after <= MAX_SEQ:
            raise BadParameter(f"must be between 0 and {MAX_SEQ}, got {self.after}", field="cursor")
        self._refuse_nul()
        for key in self.attributes:
            if not key.replace("_", "").replace("-", "").replace(".", "").isalnum():
                raise BadParameter(
                    f"attribute name {key!r} may hold letters, digits, '_', '-', '.'", field="attr"
                )

    def _refuse_nul(self) -> None:
        """Text no entry can hold matches nothing: refuse it (PostgreSQL text cannot even be sent it).

        That is U+0000, and a lone surrogate (U+D800..U+DFFF, e.g. a command-line argument whose bytes
        are not UTF-8), which no UTF-8 database can be sent.
        """
        for name, field_name in _TEXT_FILTERS.items():
            value = getattr(self, name)
            if isinstance(value, str) and (problem := _unstorable_text(value)):
                raise BadParameter(problem, field=field_name)
        for key, value in self.attributes.items():
            problem = _unstorable_text(key) or (_unstorable_text(value) if isinstance(value, str) else None)
            if problem:
                raise BadParameter(f"attribute {key!r} {problem}", field="attr")
            if (
                type(value) is int and not -(2**63) <= value < 2**63
            ):  # SQLite binds 64 bits; one answer on both
                raise BadParameter(f"attribute {key!r}: a whole number must fit in 64 bits", field="attr")

    def next(self, cursor: int) -> Query:
        """The same query, continued after ``cursor``."""
        return replace(self, after=cursor)

    def describe(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready (for access entries and logs)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, {}, 0, ()) and name != "limit":
                continue
            if isinstance(value, tuple):
                value = list(value)
            out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
        if isinstance(out.get("attributes"), Mapping):
            out["attributes"] = dict(out["attributes"])
        return out


def _unstorable_text(value: str) -> str | None:
    """Why a filter's text can match no stored text (None when it can)."""
    if "\x00" in value:
        return "must not contain U+0000 (NUL)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode: it holds a lone surrogate (were its bytes UTF-8?)"
    return None


@dataclass(frozen=True)
class Page:
    """One page of a query: the entries, and the cursor to read on from (None at the end)."""

    entries: list[StoredEntry]
    next_cursor: int | None

    def __iter__(self) -> Iterator[StoredEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> StoredEntry:
        return self.entries[index]


def to_micros(value: dt.datetime) -> int:
    """A time as whole microseconds since the epoch, the unit of :attr:`LedgerRow.ts` (and SQLite's ts)."""
    return (value - EPOCH) // _MICRO


def from_micros(value: int) -> dt.datetime:
    """The time ``value`` microseconds after the epoch, in UTC."""
    return EPOCH + dt.timedelta(microseconds=value)


class LedgerRow(NamedTuple):
    """One entry's row as the verifier reads it: every stored column that a read uses.

    The verifier checks each against the leaf or the committed body, so a column edited behind the
    store's back (queries, stats and erasure select by them) is found.
    """

    seq: int
    id: str
    kind: str
    system: str
    ts: int  # microseconds since the epoch
    model_name: str | None
    model_version: str | None
    status: str | None
    body: bytes | None
    salt: bytes | None
    leaf: bytes
    leaf_hash: bytes
    latency_ms: float | None
    request_id: str | None
    trace_id: str | None
    session_id: str | None
    subject: str | None
    inference_id: str | None
    actor: str | None
    attributes: str | None  # the store's searchable copy of the body's attributes (JSON), if it keeps one
    # What a separate id index says of this row: "" if it agrees (or the store has none: SQLite's is
    # the id column's own UNIQUE index), else the id it gives this row, None if it has no row for it.
    indexed: str | None


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as kept in the store: tree size, root, the signed note, when it was made."""

    size: int
    root: bytes
    note: bytes
    created_at: dt.datetime


ROLES = ("ingest", "reader", "auditor", "admin")


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored: an id, the SHA-256 of its secret, a role and the systems it may touch."""

    kid: str
    secret_hash: bytes
    role: str
    systems: tuple[str, ...]  # ("*",) = every system
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def covers(self, system: str) -> bool:
        return "*" in self.systems or system in self.systems

    def public_view(self) -> dict[str, Any]:
        """JSON-ready, without the secret's hash: what listings show."""
        return {
            "kid": self.kid,
            "role": self.role,
            "systems": list(self.systems),
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class HoldFilter:
    """Which entries a legal hold keeps, as the store matches them: every set field must match.

    Made from the policy file's :class:`inferlog.privacy.policy.Hold` (see
    ``Governance.holds``): its subject becomes the subjects as stored, its start/end a time range.
    """

    system: str | None = None
    subjects: tuple[str, ...] = ()  # the subject as stored (raw and/or its pseudonym)
    since: dt.datetime | None = None  # ts >= since
    until: dt.datetime | None = None  # ts < until


@dataclass(frozen=True)
class Purge:
    """Which payloads to remove: inference and feedback entries matching every set field, minus holds.

    ``subjects`` also reaches the feedback entries about those subjects' inferences. Admin and access
    entries are never purged: they are the audit trail of what happened to the rest.
    """

    system: str | None = None
    before: dt.datetime | None = None  # ts < before
    subjects: tuple[str, ...] = ()
    keep: tuple[HoldFilter, ...] = ()


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed (or, planned, would remove)."""

    count: int
    first_seq: int | None = None
    last_seq: int | None = None


# -- monitoring rollups (see inferlog.monitor) ----------------------------------------------------

ROLLUP_LEVELS = (60, 3600, 86400)  # bucket widths kept, in seconds: minute, hour, UTC day


@dataclass(frozen=True, slots=True)
class Rollup:
    """One bucket of the monitor's aggregates: mergeable sketches of one scope over one time bucket.

    ``bucket`` is the bucket's start in seconds since the epoch, a multiple of ``level`` (its width in
    seconds, one of :data:`ROLLUP_LEVELS`); ``payloads`` counts the entries whose payload fed it (a purge
    that reaches one of them makes the bucket stale); ``data`` is opaque to the store.
    """

    level: int
    system: str
    model: str
    version: str
    bucket: int
    payloads: int
    data: bytes

    @property
    def key(self) -> RollupKey:
        return RollupKey(self.level, self.system, self.model, self.version, self.bucket)


class RollupKey(NamedTuple):
    """Where a rollup lives: level, scope and bucket start."""

    level: int
    system: str
    model: str
    version: str
    bucket: int


@dataclass(frozen=True, slots=True)
class RollupState:
    """How far the rollups have folded the log (``cursor``: the last seq folded) and a write counter.

    Every write of rollups names the state it read; a writer that lost a race gets :class:`Conflict`
    and starts again from the new state, so two monitors never fold the same entries twice.
    """

    cursor: int = 0
    generation: int = 0


@dataclass(frozen=True, slots=True)
class RollupFilter:
    """Which rollups to read: one level, a scope (model and version optional), buckets in [since, until)."""

    level: int
    system: str | None = None
    model: str | None = None
    version: str | None = None
    since: int | None = None  # bucket >= since (seconds since the epoch)
    until: int | None = None  # bucket < until
    with_payloads: bool = False  # only buckets some payload fed

    def __post_init__(self) -> None:
        if self.level not in ROLLUP_LEVELS:
            raise UsageError(f"rollup level must be one of {ROLLUP_LEVELS}, got {self.level}")
        for name in ("system", "model", "version"):
            value = getattr(self, name)
            problem = _unstorable_text(value) if value is not None else None
            if problem is not None:
                raise BadParameter(problem, field=name)


class FoldRow(NamedTuple):
    """One entry as the monitor's fold reads it: the indexed columns and the body, left unparsed.

    The fold needs the scope, time, status and latency of every inference and the payload of only
    some fields; reading them from columns (and the body with a decoder that skips the rest) costs a
    fraction of rebuilding the full entry. ``ts`` is in microseconds since the epoch.
    """

    seq: int
    kind: str
    system: str
    ts: int
    model: str | None
    version: str | None
    status: str | None
    latency_ms: float | None
    body: str | bytes | None


class PurgedRow(NamedTuple):
    """A purged inference (or the inference of a purged feedback entry): the scope and time it folded into."""

    system: str
    model: str
    version: str
    ts: dt.datetime
