"""Tamper evidence over HTTP: the latest checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from inferlog.errors import NotFound, UsageError
from inferlog.integrity.tree import consistency, inclusion
from inferlog.ledger.hashing import b64
from inferlog.server.deps import State, Who

router = APIRouter(prefix="/v1", tags=["ledger"])


@router.get(
    "/checkpoint", response_class=PlainTextResponse, summary="The newest signed checkpoint (C2SP note)"
)
def get_checkpoint(state: State, who: Who) -> PlainTextResponse:
    kept = state.store.checkpoints()
    if not kept:
        raise NotFound("the log has no checkpoint yet")
    return PlainTextResponse(kept[-1].note.decode("utf-8"))


@router.post(
    "/checkpoint", response_class=PlainTextResponse, summary="Sign a checkpoint now (auditor, admin)"
)
def make_checkpoint(state: State, who: Who) -> PlainTextResponse:
    who.require("auditor", "admin")
    if state.checkpointer is None:
        raise UsageError("this server has no signing key (start it with --signer-key)")
    return PlainTextResponse(state.checkpointer.checkpoint().note.decode("utf-8"))


@router.get("/records/{entry_id}/proof", summary="Inclusion proof of one entry under a checkpoint")
def get_proof(
    state: State,
    who: Who,
    entry_id: Annotated[str, Path(max_length=64)],
    size: Annotated[int | None, Query(ge=1, description="Tree size; default: the newest checkpoint")] = None,
) -> dict[str, Any]:
    stored = state.store.get(entry_id)
    if stored is None or not who.covers(stored.entry.system):
        raise NotFound(f"no entry with id {entry_id}")  # the same for another system's id
    note = None
    if size is None:
        kept = [c for c in state.store.checkpoints() if c.size >= stored.seq]
        if not kept:
            raise NotFound(f"no checkpoint covers seq {stored.seq} yet")
        size, note = kept[-1].size, kept[-1].note.decode("utf-8")
    if size > state.store.tree().size:
        raise UsageError(f"the log holds {state.store.tree().size} entries, fewer than {size}")
    proof = inclusion(state.store, stored.seq, size)
    return {
        "id": entry_id,
        "seq": stored.seq,
        "leaf_index": stored.seq - 1,
        "tree_size": size,
        "leaf": b64(stored.leaf),
        "leaf_hash": b64(stored.leaf_hash),
        "proof": [b64(h) for h in proof],
        "checkpoint": note,
    }


@router.get("/consistency", summary="Consistency proof between two tree sizes")
def get_consistency(
    state: State, who: Who, first: Annotated[int, Query(ge=0)], second: Annotated[int, Query(ge=0)]
) -> dict[str, Any]:
    return {
        "first": first,
        "second": second,
        "proof": [b64(h) for h in consistency(state.store, first, second)],
    }
