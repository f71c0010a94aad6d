"""One record's full trail, gathered for its page: the entry, its feedback, its model, its readers, its proof.

Everything here reads the store; the page's one access entry is written by the caller, once it knows
what the page shows (see :mod:`inferlog.server.console.pages`).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from inferlog.integrity.tree import inclusion
from inferlog.lineage import Registration, registered_models
from inferlog.record.model import AccessEntry, InferenceRecord, StoredEntry
from inferlog.server.auth import Principal
from inferlog.server.routes.records import may_read
from inferlog.server.state import ServerState
from inferlog.store.base import MAX_PAGE, Query

READS_LOOKED_AT = MAX_PAGE  # the newest access entries of the system searched for reads of one record
CLOCK_SLACK = dt.timedelta(minutes=5)  # servers' clocks may differ a little (several servers, one log)


@dataclass
class Trail:
    """What the record page shows."""

    stored: StoredEntry
    feedback: list[StoredEntry] = field(default_factory=list)
    registration: Registration | None = None
    versions: list[Registration] = field(default_factory=list)  # every registered version of the model
    reads_visible: bool = False  # the read trail is an auditor's (as GET /v1/records?kind=access)
    proof: dict[str, Any] | None = None
    proof_missing: str | None = None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def proof_of(state: ServerState, stored: StoredEntry) -> tuple[dict[str, Any] | None, str | None]:
    """The inclusion proof of ``stored`` under the newest checkpoint, as ``GET /v1/records/{id}/proof``
    answers it; or None and why there is none yet."""
    kept = state.store.checkpoints()
    if not kept or kept[-1].size < stored.seq:
        return None, f"no checkpoint covers seq {stored.seq} yet (the next one will)"
    newest = kept[-1]
    path = inclusion(state.store, stored.seq, newest.size)
    return {
        "id": stored.id,
        "seq": stored.seq,
        "leaf_index": stored.seq - 1,
        "tree_size": newest.size,
        "leaf": _b64(stored.leaf),
        "leaf_hash": _b64(stored.leaf_hash),
        "proof": [_b64(h) for h in path],
        "checkpoint": newest.note.decode("utf-8"),
    }, None


def verifier_key(state: ServerState) -> str | None:
    """The verifier key of this server's signing key (``name+hex8+base64``), when it signs checkpoints."""
    if state.checkpointer is None:
        return None
    return state.checkpointer.signer.signer.verifier().to_key_string()


def reads_of(state: ServerState, stored: StoredEntry) -> list[AccessEntry]:
    """Reads that named this record (a get by id, a verification read of it), newest first, among the
    newest :data:`READS_LOOKED_AT` reads of its system.

    The page loads this part after itself (htmx): access entries have no index of their own, and the
    record should not wait for the search."""
    # No read of an entry precedes its logging: only access entries from then on (the ts index) are looked at.
    since = stored.logged_at - CLOCK_SLACK
    query = Query(system=stored.entry.system, kind="access", since=since, order="desc", limit=READS_LOOKED_AT)
    found = []
    for access in state.store.query(query).entries:
        entry = access.entry
        if isinstance(entry, AccessEntry) and stored.id in (
            entry.query.get("id"),
            entry.query.get("inference_id"),
        ):
            found.append(entry)
    return found


def gather(state: ServerState, who: Principal, stored: StoredEntry) -> Trail:
    """The trail of a record ``who`` may read (the caller checked that), payloads as ``who`` sees them."""
    (shown,) = state.visible(who, [stored])
    trail = Trail(shown)
    entry = stored.entry
    if isinstance(entry, InferenceRecord):
        feedback = state.store.query(
            Query(system=entry.system, kind="feedback", inference_id=entry.id, limit=MAX_PAGE)
        ).entries
        trail.feedback = state.visible(who, feedback)
        versions = [r for r in registered_models(state.store) if r.name == entry.model.name]
        trail.versions = sorted(versions, key=lambda r: (r.ts is None, r.ts), reverse=True)
        trail.registration = next((r for r in versions if r.version == entry.model.version), None)
    trail.reads_visible = who.allows("auditor")
    trail.proof, trail.proof_missing = proof_of(state, stored)
    return trail


def readable(who: Principal, stored: StoredEntry | None) -> StoredEntry | None:
    """The entry if ``who`` may read it (as ``GET /v1/records/{id}`` decides), else None."""
    return stored if stored is not None and may_read(who, stored) else None
