"""Row mapping shared by the SQL stores: prepared entries to columns, rows back to entries."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from inferlog.record.model import (
    Entry,
    FeedbackEntry,
    InferenceRecord,
    Model,
    StoredEntry,
    kind_of,
)
from inferlog.record.prepared import Prepared
from inferlog.store.base import ApiKey, AppendResult, from_micros, to_micros

_entry_decoder = msgspec.json.Decoder(Entry)


class _Attributes(msgspec.Struct):
    attributes: dict[str, Any] = {}


_attributes_of = msgspec.json.Decoder(_Attributes)  # reads one field of a body, skipping the rest

# Columns written on append, in order (seq and logged_at come first, filled by the store).
COLUMNS = (
    "seq", "logged_at", "id", "kind", "system", "ts", "model_name", "model_version", "status",
    "latency_ms", "request_id", "trace_id", "session_id", "subject", "inference_id", "actor",
    "body", "salt", "leaf", "leaf_hash",
)  # fmt: skip
# Columns the verifier reads (see LedgerRow); each store adds its attributes copy and id index.
LEDGER_COLUMNS = (
    "seq, id, kind, system, ts, model_name, model_version, status, body, salt, leaf, leaf_hash, "
    "latency_ms, request_id, trace_id, session_id, subject, inference_id, actor"
)
# Columns the monitor's fold reads (see FoldRow; PostgreSQL turns its timestamptz into microseconds).
FOLD_COLUMNS = "seq, kind, system, ts, model_name, model_version, status, latency_ms, body"
# Columns read back to rebuild a StoredEntry.
READ_COLUMNS = "seq, logged_at, body, leaf, leaf_hash"


def row_of(prepared: Prepared, seq: int, logged_at: int) -> tuple[Any, ...]:
    """The column values of one prepared entry, in COLUMNS order."""
    entry = prepared.entry
    model_name = model_version = status = latency = None
    request_id = trace_id = session_id = subject = inference_id = None
    if isinstance(entry, InferenceRecord):
        model_name, model_version = entry.model.name, entry.model.version
        status, latency = entry.status, entry.latency_ms
        request_id, trace_id, session_id = entry.request_id, entry.trace_id, entry.session_id
        subject = entry.subject
    elif isinstance(entry, FeedbackEntry):
        inference_id = entry.inference_id
    return (
        seq, logged_at, entry.id, kind_of(entry), entry.system, to_micros(entry.ts),
        model_name, model_version, status, latency, request_id, trace_id, session_id, subject,
        inference_id, entry.actor, prepared.body.decode("utf-8"), prepared.salt, prepared.leaf,
        prepared.leaf_hash,
    )  # fmt: skip


def stored_of(
    seq: int, logged_at: int, body: str | bytes | None, leaf: bytes, leaf_hash: bytes
) -> StoredEntry:
    """Rebuild a StoredEntry from its row; a purged one is rebuilt from its leaf's metadata."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    entry = _entry_decoder.decode(raw) if raw is not None else _entry_from_leaf(leaf)
    return StoredEntry(
        seq=seq,
        entry=entry,
        logged_at=from_micros(logged_at),
        body=raw,
        leaf=bytes(leaf),
        leaf_hash=bytes(leaf_hash),
    )


def _entry_from_leaf(leaf: bytes) -> Entry:
    meta = json.loads(leaf)
    common = {"id": meta["id"], "system": meta["system"], "kind": meta["kind"], "ts": meta["ts"]}
    if meta["kind"] == "inference":
        common["model"] = msgspec.convert(meta["model"], Model)
        common["status"] = meta["status"]
    elif meta["kind"] == "feedback":
        common["inference_id"] = meta["inference_id"]
    elif meta["kind"] == "access":
        common.update(action="purged", purpose="purged")
    else:
        common["action"] = "purged"
    entry: Entry = msgspec.convert(common, Entry)
    return entry


def attributes_copy(body: bytes) -> str | None:
    """The searchable copy of a body's attributes a store may keep beside it (JSON text), or None.

    From the canonical body, not the entry, so queries see what the body says (e.g. a NaN attribute
    is null there). The verifier recomputes it the same way to check a stored copy.
    """
    attributes = _attributes_of.decode(body).attributes
    copy = msgspec.json.encode(attributes).decode("utf-8") if attributes else None
    if copy is not None and "\\u0000" in copy:
        return None  # jsonb cannot hold U+0000; the body keeps it, attribute queries cannot see it
    return copy


CONFLICT = "an entry with this id is already in the log with different content"


def sort_batch(
    batch: Sequence[Prepared], existing: Mapping[str, tuple[int, bytes | None]], next_seq: int
) -> tuple[list[AppendResult], list[tuple[int, Prepared]]]:
    """What becomes of each entry of a batch, given those already in the log (id -> seq, body).

    Returns one result per entry, in the batch's order, and the new entries with the seq each gets,
    from ``next_seq`` on. An id already in the log, or earlier in the batch, is a duplicate when the
    content is the same (:func:`same_content`), else a conflict; either way only the first is written,
    with its own wrapped key.
    """
    known = dict(existing)
    results: list[AppendResult] = []
    new: list[tuple[int, Prepared]] = []
    for prepared in batch:
        entry_id = prepared.entry.id
        found = known.get(entry_id)
        if found is None:
            known[entry_id] = (next_seq, prepared.body)
            new.append((next_seq, prepared))
            results.append(AppendResult(entry_id, next_seq, "new"))
            next_seq += 1
        elif same_content(found[1], prepared):
            results.append(AppendResult(entry_id, found[0], "duplicate"))
        else:
            results.append(AppendResult(entry_id, None, "conflict", CONFLICT))
    return results, new


def same_content(stored_body: bytes | None, prepared: Prepared) -> bool:
    """Whether a repeat of a stored id is a duplicate (else a conflict).

    Bodies are compared byte for byte, except that two *sealed* bodies cannot be: sealing a resend
    draws a fresh data key and nonces, so its ciphertext differs even when the plaintext is the same
    (the server seals what an SDK retries). A purged entry has no body left to compare.
    """
    if stored_body is None or stored_body == prepared.body:
        return True
    return prepared.entry.sealed is not None and b'"sealed":{' in stored_body


# The api_keys columns, in the order api_key_of reads them.
KEY_COLUMNS = "kid, secret_hash, role, systems, name, created_at, revoked_at"


def api_key_of(
    row: Sequence[Any], systems: Callable[[Any], Iterable[str]], time: Callable[[Any], dt.datetime]
) -> ApiKey:
    """An API key from its row (KEY_COLUMNS), given how the store reads back a list of systems and a time."""
    kid, secret_hash, role, stored_systems, name, created, revoked = row
    return ApiKey(
        kid=kid,
        secret_hash=bytes(secret_hash),
        role=role,
        systems=tuple(systems(stored_systems)),
        name=name,
        created_at=time(created),
        revoked_at=time(revoked) if revoked is not None else None,
    )
