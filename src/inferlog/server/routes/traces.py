"""``GET /v1/traces/{trace_id}`` and ``GET /v1/sessions/{session_id}``: an LLM app's calls as trees (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from inferlog.errors import NotFound
from inferlog.ingest.audit import counts_by_system
from inferlog.query.traces import Trace, build_tree, group_traces, read_entries
from inferlog.record.model import REF_MAX_LENGTH, StoredEntry
from inferlog.server.auth import Principal
from inferlog.server.deps import State, Who
from inferlog.server.routes.records import Purpose, scoped
from inferlog.server.state import ServerState
from inferlog.store.base import Query

router = APIRouter(prefix="/v1", tags=["records"])

Ref = Annotated[str, Path(min_length=1, max_length=REF_MAX_LENGTH)]


def _read(state: ServerState, who: Principal, query: Query, purpose: str, action: str) -> list[StoredEntry]:
    """The entries ``who`` may read, audited like any query; 404 when there are none."""
    who.require("reader", "auditor")
    query = scoped(who, query)
    entries, truncated = read_entries(state.store, query)
    if not entries:
        raise NotFound("no entries with that id in the systems this key may read")
    details = query.describe() | ({"truncated": True} if truncated else {})
    state.audit_read(who, action, purpose, list(who.systems), details, counts_by_system(entries))
    return state.visible(who, entries)


def _trace_dict(trace: Trace) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "entries": [stored.to_dict() for stored in trace.entries],
        "tree": [node.to_dict() for node in trace.roots],
    }


@router.get("/traces/{trace_id}", summary="Every entry of one trace, and its call tree (audited)")
def get_trace(state: State, who: Who, trace_id: Ref, purpose: Purpose) -> dict[str, Any]:
    trace_id = trace_id.lower()
    entries = _read(state, who, Query(trace_id=trace_id), purpose, "trace")
    return _trace_dict(Trace(trace_id, entries, build_tree(entries)))


@router.get(
    "/sessions/{session_id}", summary="Every trace of one session or conversation, in order (audited)"
)
def get_session(state: State, who: Who, session_id: Ref, purpose: Purpose) -> dict[str, Any]:
    entries = _read(state, who, Query(session_id=session_id), purpose, "session")
    return {"session_id": session_id, "traces": [_trace_dict(trace) for trace in group_traces(entries)]}
