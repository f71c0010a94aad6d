"""The ingest pipeline: validated entry in, the exact bytes the store keeps and the ledger hashes out.

``Processor = Callable[[Entry], Entry]`` steps (redaction and encryption go here) run first, in
order; a step refuses an entry by raising (never by returning ``None``). Then the entry is
canonicalized (RFC 8785) and its leaf is built.

The leaf is what the Merkle tree commits to. It holds only metadata that is not personal (kind, id,
system, time, model, status) and a *salted* commitment to the full canonical body:
``SHA-256(salt || body)``. The salt is stored beside the body and deleted with it, so that purging or
erasing a payload later leaves every proof intact and the leaf reveals nothing about what was said.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ledger.hashing import leaf_hash
from inferlog.record.canonical import canonical_json, canonical_json_without_floats
from inferlog.record.model import Entry, FeedbackEntry, InferenceRecord, Model, kind_of
from inferlog.record.prepared import Prepared
from inferlog.record.validate import check_entry

Processor = Callable[[Entry], Entry]

LEAF_VERSION = 1
SALT_BYTES = 16


def commitment(salt: bytes, body: bytes) -> bytes:
    """The salted commitment to an entry's body that its leaf carries: ``SHA-256(salt || body)``.

    Binding through SHA-256's collision resistance, hiding through 128 random bits of salt that are
    deleted with the body. (One hash pass; an HMAC costs three times as much on every verify.)
    """
    state = _SHA256.copy()  # a copied empty state and two updates: no copy of the body
    state.update(salt)
    state.update(body)
    return state.digest()


_SHA256 = hashlib.sha256()  # never updated: only copied


class Leaf(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The leaf body (version 1): non-personal metadata plus the salted commitment.

    Encoded as RFC 8785 JSON (fields in code-point order, ``commit`` as standard base64); building a
    Struct and letting msgspec write it is several times cheaper than a dict per entry.
    """

    commit: bytes
    id: str
    inference_id: str | None = None  # feedback
    kc: bytes | None = None  # a sealed entry's key commitment (see privacy/seal.py)
    kind: str
    model: Model | None = None  # inference
    status: str | None = None  # inference
    system: str
    ts: dt.datetime
    v: int


def leaf_of(entry: Entry, commit: bytes) -> Leaf:
    """The leaf of an entry, given the commitment to its body."""
    kc = entry.sealed.kc if entry.sealed is not None else None
    if type(entry) is InferenceRecord:
        return Leaf(
            commit=commit, id=entry.id, kc=kc, kind="inference", model=entry.model, status=entry.status,
            system=entry.system, ts=entry.ts, v=LEAF_VERSION,
        )  # fmt: skip
    if type(entry) is FeedbackEntry:
        return Leaf(
            commit=commit, id=entry.id, inference_id=entry.inference_id, kc=kc, kind="feedback",
            system=entry.system, ts=entry.ts, v=LEAF_VERSION,
        )  # fmt: skip
    return Leaf(
        commit=commit, id=entry.id, kc=kc, kind=kind_of(entry), system=entry.system, ts=entry.ts,
        v=LEAF_VERSION,
    )  # fmt: skip


class _Salts:
    """16-byte salts sliced from a pooled ``os.urandom`` (one system call per 256 salts)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool = b""
        self.offset = 0

    def __call__(self) -> bytes:
        with self.lock:
            if self.offset + SALT_BYTES > len(self.pool):
                self.pool, self.offset = os.urandom(4096), 0
            salt = self.pool[self.offset : self.offset + SALT_BYTES]
            self.offset += SALT_BYTES
        return salt

    def reset(self) -> None:
        """In a forked child: fresh salts, and a fresh lock (a parent thread may have held the old one)."""
        self.lock = threading.Lock()
        self.pool, self.offset = b"", 0


_salt = _Salts()
os.register_at_fork(after_in_child=_salt.reset)  # a child must not reuse its parent's salts nor hang


def body_of(entry: Entry) -> bytes:
    """The canonical bytes of an entry (the body the store keeps verbatim)."""
    return canonical_json(entry)


class Pipeline:
    """Runs the processors, then canonicalizes and builds the leaf of each entry."""

    def __init__(self, processors: Sequence[Processor] = ()) -> None:
        self.processors = list(processors)

    def prepare(self, entry: Entry, *, checked: bool = False) -> Prepared:
        """``checked``: the caller ran :func:`check_entry` on this very entry already (the shipper)."""
        if not checked:
            entry = check_entry(entry)  # every way in (SDK, HTTP, sinks, import) meets the same limits here
        for processor in self.processors:
            entry = processor(entry)
        key = None
        if entry.sealed is not None and entry.sealed.dek is not None:
            key = entry.sealed.dek
            entry = msgspec.structs.replace(entry, sealed=msgspec.structs.replace(entry.sealed, dek=None))
        body = body_of(entry)
        salt = _salt()
        leaf = canonical_json_without_floats(leaf_of(entry, commitment(salt, body)), entry.ts)
        return Prepared(entry, body, salt, leaf, leaf_hash(leaf), key)

    def prepare_all(self, entries: Iterable[Entry]) -> list[Prepared]:
        """Every entry prepared; a refusal names the entry's place in the batch."""
        prepared = []
        for index, entry in enumerate(entries):
            try:
                prepared.append(self.prepare(entry))
            except RecordInvalid as exc:
                if exc.index is not None:
                    raise
                raise RecordInvalid(exc.reason, field=exc.field, index=index) from None
        return prepared
