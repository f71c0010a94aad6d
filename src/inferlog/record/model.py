"""The ledger's entries, schema version 2 (every field: docs/data-dictionary.md; evolution: docs/schema.md).

Entries are msgspec Structs: constructing one does not validate (the SDK's hot path builds them
directly), decoding or converting one does, with a message that names the field. Every way into the
log other than the SDK goes through :func:`inferlog.record.validate.to_entry`.

The ``kind`` field tags the union, so one decoder reads any entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from inferlog.record.canonical import format_timestamp

SCHEMA_VERSION = 2
"""The newest field set this code reads and writes. An entry says the newest one it *uses*
(:func:`inferlog.record.schema.stamped`): an entry with no v2 field stays version 1, which is the
default and so omitted from its body, and its bytes and leaf hash are those it always had."""
FIRST_SCHEMA_VERSION = 1

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

EntryId = Annotated[str, msgspec.Meta(pattern=UUID_PATTERN, description="UUID, lowercase, hyphenated")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# An identifier the log indexes (request, trace, session, subject): PostgreSQL refuses an index row
# over ~2.7 kB, so it is bounded where it enters (512 characters are at most 2 kB of UTF-8).
REF_MAX_LENGTH = 512
Ref = Annotated[str, msgspec.Meta(max_length=REF_MAX_LENGTH)]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True, description="UTC, timezone-aware")]
Status = Literal["ok", "error"]
Source = Literal["sdk", "http", "oip", "kserve", "seldon", "otlp", "broker", "import"]
Verification = Literal["confirmed", "rejected"]
Kind = Literal["inference", "feedback", "access", "admin"]

KINDS: tuple[Kind, ...] = ("inference", "feedback", "access", "admin")
STATUSES: tuple[Status, ...] = ("ok", "error")
SOURCES: tuple[Source, ...] = ("sdk", "http", "oip", "kserve", "seldon", "otlp", "broker", "import")
VERIFICATIONS: tuple[Verification, ...] = ("confirmed", "rejected")


class Model(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """The exact model that answered: name and version, ideally the artifact digest and lineage."""

    name: Name
    version: Annotated[str, msgspec.Meta(max_length=256)]
    digest: str | None = None  # "sha256:<hex>" of the artifact
    uri: str | None = None  # registry / run URI (lineage: which training run made the model)
    provider: str | None = None


class ErrorInfo(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """What went wrong in a failed inference: the exception's type and message."""

    type: Name
    message: str = ""


class WrappedKey(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """An entry's data key, wrapped by its retention epoch's key and then by its subject's key.

    It travels with a sealed entry from the SDK to the store, which keeps it *outside* the entry's
    body (and so outside the Merkle commitment): rotating a key re-wraps it in place, and a purge
    deletes it. ``epoch_ref``/``subject_ref`` name the exact key versions (``name#version``).
    """

    epoch_ref: str
    subject_ref: str | None = None
    blob: bytes


class Sealed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Which fields of an entry are encrypted, and under which keys (see docs/privacy.md, "Sealed payloads").

    Each listed field holds ``"ilenc1:" + base64(nonce || ciphertext || tag)``, AES-256-GCM under a
    key derived from the entry's own data key; ``kc`` commits to that data key, and the leaf carries it.
    """

    alg: Literal["A256GCM"] = "A256GCM"
    fields: list[str]
    kc: bytes  # HKDF-SHA256(DEK, info="inferlog/v1/commit")
    epoch: str  # the retention epoch key's name
    subject: str | None = None  # the data subject key's name
    dek: WrappedKey | None = None  # only in transit; the store keeps it beside the body


class ReferenceDatabase(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """The reference database a biometric search checked its input against (AI Act Art. 12(3)(b)).

    Name it so the exact state searched can be found again: a version (or snapshot id) and, ideally,
    the ``sha256:<hex>`` digest of its export.
    """

    name: Name
    version: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    digest: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class UsePeriod(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When one use of the system started and ended (AI Act Art. 12(3)(a)); ``end`` is not before ``start``."""

    start: Timestamp
    end: Timestamp


class Biometric(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """What AI Act Art. 12(3) asks a remote biometric identification system to log for each use (schema v2).

    ``match`` is the input data for which the search led to a match, or a reference to it (an object
    id, a digest); absent when the search matched nothing. Who verified the result is not here: each
    verification is a ``feedback`` entry with ``verification`` and an ``actor`` (Art. 14(5): two
    distinct natural persons), written when it happens.
    """

    period: UsePeriod
    reference_database: ReferenceDatabase
    match: Any = None


class _Entry(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="kind", forbid_unknown_fields=True):
    # Unknown fields are refused, not dropped: a producer that misspells ``atributes`` must hear so.
    id: EntryId
    system: Name
    ts: Timestamp
    actor: str | None = None
    attributes: dict[str, Any] = {}
    # The default is 1, never the newest: a v1 entry's body omits it, so its bytes never change.
    schema_version: Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION)] = FIRST_SCHEMA_VERSION
    sealed: Sealed | None = None


class InferenceRecord(_Entry, tag="inference"):
    """One model call: what went in, what came out, which model, how it went."""

    model: Model
    input: Any = None
    output: Any = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    parameters: dict[str, Any] = {}
    status: Status = "ok"
    error: ErrorInfo | None = None
    request_id: Ref | None = None
    trace_id: Ref | None = None
    span_id: Ref | None = None
    parent_id: Ref | None = None
    session_id: Ref | None = None
    subject: Ref | None = None
    source: Source = "sdk"
    biometric: Biometric | None = None  # schema v2


class FeedbackEntry(_Entry, tag="feedback"):
    """Ground truth, an outcome, or a human review or override of one inference (human oversight, AI Act Art. 14)."""

    inference_id: EntryId
    label: Any = None
    outcome: Any = None
    override: Any = None  # the output a human put in place of the model's
    comment: str | None = None
    verification: Verification | None = None  # schema v2: a human verified the result (needs ``actor``)


class AccessEntry(_Entry, tag="access"):
    """Who read or exported which records, when, and for what stated purpose: the audited read trail."""

    action: Name
    purpose: Name
    query: dict[str, Any] = {}
    count: Annotated[int, msgspec.Meta(ge=0)] = 0


class AdminEntry(_Entry, tag="admin"):
    """Retention applied, subject erased, key rotated, policy changed: who, when, what."""

    action: Name
    details: dict[str, Any] = {}


EntryBase = _Entry  # what every entry kind is (for code generic over the kinds)
Entry: TypeAlias = InferenceRecord | FeedbackEntry | AccessEntry | AdminEntry

KIND_OF: dict[type[Any], Kind] = {
    InferenceRecord: "inference",
    FeedbackEntry: "feedback",
    AccessEntry: "access",
    AdminEntry: "admin",
}


def kind_of(entry: Entry) -> Kind:
    """The ``kind`` tag of an entry."""
    return KIND_OF[type(entry)]


class StoredEntry(msgspec.Struct, frozen=True, kw_only=True):
    """An entry as the store keeps it: the parsed entry plus what was assigned when it was stored.

    ``body`` is the canonical (RFC 8785) JSON of the entry, kept verbatim; ``leaf_hash`` commits to
    the leaf, so the integrity layer can re-hash exactly what was stored.
    """

    seq: int
    entry: Entry
    logged_at: dt.datetime
    body: bytes | None  # None once the payload was purged or erased; the leaf stays
    leaf: bytes
    leaf_hash: bytes
    unreadable: str | None = (
        None  # why a sealed entry did not open with keys that exist (shown, never raised)
    )

    @property
    def purged(self) -> bool:
        return self.body is None

    @property
    def id(self) -> str:
        return self.entry.id

    def __getattr__(self, name: str) -> Any:
        # Convenience: ``stored.output`` reads the entry's field.
        return getattr(self.entry, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: the entry's own fields plus ``seq`` and ``logged_at``."""
        data: dict[str, Any] = msgspec.to_builtins(self.entry)
        data["seq"] = self.seq
        data["logged_at"] = format_timestamp(self.logged_at)
        if self.purged:
            data["purged"] = True
        if self.unreadable is not None:
            data["unreadable"] = self.unreadable
        return data
