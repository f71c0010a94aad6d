"""The console's reading pages: overview, records (filtered, paged), one record's trail.

Reads that show payloads carry a purpose and append the same access entry as the API's reads
(``action`` ``query`` for a list, ``get`` for one record), filed by :meth:`ServerState.audit_read`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from inferlog.errors import BadParameter, NotFound
from inferlog.ingest.audit import counts_by_system
from inferlog.lineage import registered_models
from inferlog.query.filters import build_query
from inferlog.record.model import StoredEntry, kind_of
from inferlog.server.console.trail import gather, proof_of, readable, reads_of, verifier_key
from inferlog.server.console.web import Who, mark_console, render, secure
from inferlog.server.deps import State
from inferlog.server.routes.monitor import monitor_of
from inferlog.server.routes.records import scoped
from inferlog.store.base import MAX_SEQ

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_console)])

FILTERS = ("system", "model", "version", "status", "subject", "session", "since", "until")
PAGE_SIZES = (25, 50, 100, 200)
PURPOSE_MAX = 256  # what an access entry holds (as on the API)


def _purpose(request: Request) -> str | None:
    purpose = request.query_params.get("purpose", "").strip()
    if not purpose:
        return None
    if len(purpose) > PURPOSE_MAX:
        raise BadParameter(f"at most {PURPOSE_MAX} characters", field="purpose")
    return purpose


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise BadParameter(f"must be a whole number, got {text!r}", field=name) from exc
    if not low <= value <= high:
        raise BadParameter(f"must be between {low} and {high}, got {value}", field=name)
    return value


@router.get("/")
def overview(request: Request, state: State, viewer: Who) -> Response:
    """Systems and models within the key's reach: volume, errors, latency, registrations, alerts.

    The numbers come from the monitoring engine's day rollups (kept as the log grows), so the page
    costs the same over a thousand records as over ten million; the log's size is the ledger's own.
    """
    who = viewer.principal
    who.require("reader", "auditor", "admin")  # as GET /v1/stats
    scopes = [s for s in monitor_of(request, state).scopes() if who.covers(s.system)]
    systems: dict[str, dict[str, float]] = {}
    for scope in scopes:
        total = systems.setdefault(scope.system, {"volume": 0, "errors": 0})
        total["volume"] += scope.volume
        total["errors"] += round(scope.volume * (scope.error_rate or 0.0))
    registrations = registered_models(state.store)
    checkpoints = state.store.checkpoints()
    firing = [a for a in state.alert_state().firing_alerts() if who.covers(a.system)]  # as GET /v1/alerts
    known = {(r.name, r.version) for r in registrations}
    return render(
        request,
        "overview.html",
        viewer,
        {
            "title": "Overview",
            "size": state.store.size(),
            "scopes": scopes,
            "systems": systems,
            "inferences": sum(int(t["volume"]) for t in systems.values()),
            "errors": sum(int(t["errors"]) for t in systems.values()),
            "registrations": {(r.name, r.version): r for r in registrations},
            "unregistered": sorted({(s.model, s.version) for s in scopes} - known),
            "checkpoint": checkpoints[-1] if checkpoints else None,
            "can_read": who.allows("reader", "auditor"),
            "can_monitor": who.allows("reader", "auditor"),
            "firing": firing,
        },
    )


def _filters(request: Request) -> dict[str, str]:
    return {name: value for name in FILTERS if (value := request.query_params.get(name, "").strip())}


@router.get("/records")
def records(request: Request, state: State, viewer: Who) -> Response:
    """Records, newest first, filtered like ``GET /v1/records``; paged by seq cursors both ways."""
    who = viewer.principal
    who.require("reader", "auditor")
    filters = _filters(request)
    attrs = [a.strip() for a in request.query_params.getlist("attr") if a.strip()]
    limit = _int(request, "limit", 50, 1, max(PAGE_SIZES))
    cursor = _int(request, "cursor", 0, 0, MAX_SEQ)  # older than this seq
    back = _int(request, "back", 0, 0, MAX_SEQ)  # newer than this seq
    kind = request.query_params.get("kind", "inference") or None
    if kind == "all":
        kind = None
    purpose = _purpose(request)
    system = filters.get("system")
    query = build_query(
        system=system, kind=kind, model=filters.get("model"), version=filters.get("version"),
        status=filters.get("status"), session_id=filters.get("session"),
        subject=state.stored_subject(filters.get("subject")), since=filters.get("since"),
        until=filters.get("until"), attr=attrs, cursor=back or cursor, limit=limit,
        order="asc" if back else "desc",
    )  # fmt: skip
    query = scoped(who, query)
    base = {**filters, "kind": kind or "all", "limit": str(limit)}
    context: dict[str, Any] = {
        "title": "Records", "filters": filters, "attrs": attrs, "kind": kind or "all", "limit": limit,
        "page_sizes": PAGE_SIZES, "purpose": purpose or (viewer.session.purpose if viewer.session else ""),
        "entries": None, "kind_of": kind_of, "next_url": None, "prev_url": None, "can_audit": who.allows("auditor"),
    }  # fmt: skip
    if purpose is None:  # nothing is read until the reader says why
        return render(request, "records.html", viewer, context)
    if viewer.session is not None:
        viewer.session.purpose = purpose
    page = state.store.query(query)
    entries = page.entries[::-1] if back else page.entries
    state.audit_read(
        who, "query", purpose, [system] if system else who.systems,
        {**query.describe(), "via": "console"}, counts_by_system(entries),
    )  # fmt: skip
    more = page.next_cursor is not None
    with_purpose = {**base, "purpose": purpose}
    older = entries and (more if not back else True)
    newer = entries and (bool(cursor) if not back else more)
    context.update(
        entries=state.visible(who, entries),
        query_string=urlencode({"purpose": purpose}),
        next_url=f"/records?{_qs(with_purpose, attrs, cursor=entries[-1].seq)}" if older else None,
        prev_url=f"/records?{_qs(with_purpose, attrs, back=entries[0].seq)}" if newer else None,
    )
    return render(request, "records.html", viewer, context)


def _qs(params: dict[str, str], attrs: list[str], **cursor: int) -> str:
    pairs = [*params.items(), *(("attr", a) for a in attrs), *((k, str(v)) for k, v in cursor.items())]
    return urlencode(pairs)


def _record(state: State, viewer: Who, entry_id: str) -> StoredEntry:
    if len(entry_id) > 64:
        raise BadParameter("an entry id has at most 64 characters", field="entry_id")
    stored = readable(viewer.principal, state.store.get(entry_id))
    if stored is None:  # the same answer for another system's id, as on the API
        raise NotFound(f"no entry with id {entry_id}")
    return stored


@router.get("/records/{entry_id}")
def record(request: Request, state: State, viewer: Who, entry_id: str) -> Response:
    """One record's trail: payloads, model and lineage, feedback, reads, and its proof, checked in the page."""
    who = viewer.principal
    who.require("reader", "auditor")
    stored = _record(state, viewer, entry_id)
    purpose = _purpose(request)
    if purpose is None:
        return render(
            request,
            "purpose.html",
            viewer,
            {
                "title": "Why are you opening this record?",
                "action": f"/records/{entry_id}",
                "purpose": viewer.session.purpose if viewer.session else "",
            },
        )
    if viewer.session is not None:
        viewer.session.purpose = purpose
    system = stored.entry.system
    state.audit_read(who, "get", purpose, [system], {"id": entry_id, "via": "console"}, {system: 1})
    trail = gather(state, who, stored)
    return render(
        request,
        "record.html",
        viewer,
        {
            "title": f"Record {entry_id}",
            "trail": trail,
            "entry": trail.stored.entry,
            "data": trail.stored.to_dict(),
            "purpose": purpose,
            "verifier_key": verifier_key(state),
            "pretty": lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
        },
    )


@router.get("/records/{entry_id}/proof.json")
def record_proof(request: Request, state: State, viewer: Who, entry_id: str) -> Response:
    """The proof the record page checks (the same as ``GET /v1/records/{id}/proof``, which any key covering the system may read)."""
    stored = state.store.get(entry_id) if len(entry_id) <= 64 else None
    if stored is None or not viewer.principal.covers(stored.entry.system):
        raise NotFound(f"no entry with id {entry_id}")
    proof, missing = proof_of(state, stored)
    if proof is None:
        raise NotFound(missing or "no proof")
    return secure(request, JSONResponse(proof), viewer)


@router.get("/records/{entry_id}/reads")
def record_reads(request: Request, state: State, viewer: Who, entry_id: str) -> Response:
    """Who read this record and why: the part of its page an auditor's browser loads after the page.

    Access entries hold who read and why, never payloads; an auditor may list them on the API
    (``GET /v1/records?kind=access``), and this lists fewer of them, so it is not itself a new read trail.
    """
    viewer.principal.require("auditor")
    stored = _record(state, viewer, entry_id)
    fragment = request.headers.get("hx-request") == "true"  # htmx fills the record page with it
    return render(
        request,
        "reads.html" if fragment else "reads_page.html",
        viewer,
        {"reads": reads_of(state, stored), "entry_id": entry_id, "title": "Who read it"},
    )
