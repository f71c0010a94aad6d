"""``/v1/records``: append batches, read one, query, feedback, stats. Every read is audited."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from inferlog.errors import Forbidden, NotFound, RecordInvalid
from inferlog.ingest.audit import counts_by_system
from inferlog.lineage import registered_models, unregistered
from inferlog.query.filters import build_query
from inferlog.query.oversight import check_period_order
from inferlog.record.ids import uuid7
from inferlog.record.model import Entry, FeedbackEntry, InferenceRecord, StoredEntry, kind_of
from inferlog.record.periods import is_period
from inferlog.record.validate import check_entry, decode_json, to_entry
from inferlog.server.auth import Principal
from inferlog.server.body import read_body
from inferlog.server.deps import State, Who
from inferlog.server.schemas import FEEDBACK_BODY, RECORDS_BODY, FeedbackBody, feedback_body
from inferlog.server.state import ServerState
from inferlog.store.base import MAX_SEQ
from inferlog.store.base import Query as EntryQuery

router = APIRouter(prefix="/v1", tags=["records"])

Purpose = Annotated[
    # At most what an access entry holds (256): a longer purpose would be stored, and every later read
    # of the trail would fail to decode it.
    str,
    Query(min_length=1, max_length=256, description="Why you read this; kept in the access trail."),
]
SystemParam = Annotated[str | None, Query(max_length=256, description="Only this AI system.")]
READER_KINDS = ("inference", "feedback")
WRITABLE_KINDS = ("inference", "feedback")


def _objects(body: bytes, content_type: str) -> list[Any]:
    """A JSON array (or one object), or NDJSON: one object per line."""
    text = body.strip()
    if not text:
        raise RecordInvalid("the request body is empty; send a JSON array or NDJSON")
    if (
        "ndjson" in content_type
        or "jsonlines" in content_type
        or not text.startswith((b"[", b"{"))
        or (text.startswith(b"{") and b"\n" in text)
    ):
        lines = [line for line in text.splitlines() if line.strip()]
        return [decode_json(line, "line", index) for index, line in enumerate(lines)]
    data = decode_json(text)
    return data if isinstance(data, list) else [data]


_entries_decoder = msgspec.json.Decoder(Entry)


class _Claimed(msgspec.Struct):
    """Only a line's top-level ``source`` (every other key, at any depth, is skipped unread)."""

    source: str | None = None


_source_decoder = msgspec.json.Decoder(_Claimed)


def _complete_entries(body: bytes, content_type: str, from_sdk: bool) -> list[Entry] | None:
    """NDJSON whose every line is a complete entry (what the SDK sends), decoded and validated in C.

    ``None`` when anything is missing or wrong: the careful path then fills defaults and names the
    bad record's index and field.
    """
    if "ndjson" not in content_type:
        return None
    try:
        entries: list[Entry] = [check_entry(entry) for entry in _entries_decoder.decode_lines(body)]
        if from_sdk:
            return entries
        claimed = _source_decoder.decode_lines(body)  # each line's own top-level "source", if any
    except (msgspec.DecodeError, RecordInvalid, RecursionError):  # the careful path names what is wrong
        return None
    if len(claimed) != len(entries):
        return None
    return [  # a producer that did not say where the record came from: it came over HTTP
        msgspec.structs.replace(entry, source="http")
        if type(entry) is InferenceRecord and said.source is None
        else entry
        for entry, said in zip(entries, claimed, strict=True)
    ]


def _default_system(who: Principal) -> str | None:
    return who.systems[0] if len(who.systems) == 1 and who.systems[0] != "*" else None


@router.post(
    "/records",
    summary="Append a batch of records (JSON array or NDJSON); idempotent by id",
    openapi_extra=RECORDS_BODY,
    responses={413: {"description": "Body over the size limit"}, 422: {"description": "A record is invalid"}},
)
async def append_records(request: Request, state: State, who: Who) -> Response:
    who.require("ingest")
    body = await read_body(request, state.max_body_bytes)
    state.metrics.backlog.inc()
    try:
        content_type = request.headers.get("content-type", "")
        from_sdk = request.headers.get("user-agent", "").startswith("inferlog-sdk")
        entries = _complete_entries(body, content_type, from_sdk)
        if entries is None:
            objects = _objects(body, content_type)
            system = _default_system(who)
            try:
                entries = [
                    to_entry(obj, system=system, source="http", index=i) for i, obj in enumerate(objects)
                ]
            except RecordInvalid:
                state.metrics.rejected.labels("invalid").inc(len(objects))
                raise
        state.window.check(entries)
        for entry in entries:
            if kind_of(entry) not in WRITABLE_KINDS and not is_period(entry):
                raise Forbidden(
                    f"{kind_of(entry)} entries are written by the log itself, not through the API "
                    "(but for the period.started and period.ended admin entries of a period of use)"
                )
            who.require_system(entry.system)
        if any(is_period(entry) for entry in entries):  # an end must not be before its start
            await run_in_threadpool(check_period_order, state.store, entries)
        with state.metrics.write_seconds.time():
            results = await run_in_threadpool(state.ingestor.append, entries)
    finally:
        state.metrics.backlog.dec()
    new = sum(r.status == "new" for r in results)
    duplicates = sum(r.status == "duplicate" for r in results)
    conflicts = len(results) - new - duplicates
    state.metrics.accepted.inc(new + duplicates)
    state.metrics.written.inc(new)
    state.metrics.duplicates.inc(duplicates)
    if conflicts:
        state.metrics.rejected.labels("conflict").inc(conflicts)
    # Encoded by msgspec and returned as is: FastAPI's own path (dataclasses.asdict, then
    # jsonable_encoder over every result) cost tens of microseconds a record on a 1,000-record batch.
    answer = {"results": results, "new": new, "duplicates": duplicates, "conflicts": conflicts}
    return Response(msgspec.json.encode(answer), media_type="application/json")


def _readable(who: Principal, stored: StoredEntry | None, entry_id: str) -> StoredEntry:
    """The entry, if ``who`` may read it; else the same 404 as for an id that does not exist.

    A 403 would tell a caller which ids exist in systems (or kinds) it may not see.
    """
    if stored is None or not may_read(who, stored):
        raise NotFound(f"no entry with id {entry_id}")
    return stored


def may_read(who: Principal, stored: StoredEntry) -> bool:
    """Whether ``who`` may read this entry: one of its systems, and for a reader an inference or feedback."""
    return who.covers(stored.entry.system) and (who.role != "reader" or kind_of(stored.entry) in READER_KINDS)


def scoped(who: Principal, query: EntryQuery) -> EntryQuery:
    """``query`` narrowed to what ``who`` may read (the API's queries and the console's alike).

    Naming a system outside the key's, or (for a reader) asking for access or admin entries, is a 403;
    otherwise a reader sees inferences and feedback only, and a key only its own systems.
    """
    if query.system is not None:
        who.require_system(query.system)
    if who.role == "reader":
        if query.kind is not None and query.kind not in READER_KINDS:
            raise Forbidden("a reader key cannot read access or admin entries (an auditor key can)")
        query = dataclasses.replace(query, kinds=READER_KINDS)
    if "*" not in who.systems:
        query = dataclasses.replace(query, systems=who.systems)
    return query


@router.get("/records/{entry_id}", summary="One entry, by id (audited)")
def get_record(
    state: State, who: Who, entry_id: Annotated[str, Path(max_length=64)], purpose: Purpose
) -> dict[str, Any]:
    who.require("reader", "auditor")
    stored = _readable(who, state.store.get(entry_id), entry_id)
    system = stored.entry.system
    state.audit_read(who, "get", purpose, [system], {"id": entry_id}, {system: 1})
    return state.visible(who, [stored])[0].to_dict()


@router.get("/records", summary="Query entries in seq order, with a cursor (audited)")
def query_records(
    state: State,
    who: Who,
    purpose: Purpose,
    system: SystemParam = None,
    kind: Literal["inference", "feedback", "access", "admin"] | None = None,
    model: str | None = None,
    version: str | None = None,
    status: Literal["ok", "error"] | None = None,
    request_id: str | None = None,
    trace_id: str | None = None,
    session_id: str | None = None,
    subject: str | None = None,
    inference_id: str | None = None,
    since: Annotated[str | None, Query(description="ISO-8601 time, or a duration ago: 30m, 1h, 7d")] = None,
    until: str | None = None,
    attr: Annotated[list[str] | None, Query(description="key=value attribute equality, repeatable")] = None,
    cursor: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    order: Literal["asc", "desc"] = "asc",
) -> dict[str, Any]:
    who.require("reader", "auditor")
    query = build_query(
        system=system, kind=kind, model=model, version=version, status=status, request_id=request_id,
        trace_id=trace_id, session_id=session_id, subject=state.stored_subject(subject), inference_id=inference_id,
        since=since, until=until, attr=attr or (), cursor=cursor, limit=limit, order=order,
    )  # fmt: skip
    query = scoped(who, query)
    page = state.store.query(query)
    scope = [system] if system else who.systems
    state.audit_read(who, "query", purpose, scope, query.describe(), counts_by_system(page.entries))
    return {
        "entries": [e.to_dict() for e in state.visible(who, page.entries)],
        "next_cursor": page.next_cursor,
    }


@router.post(
    "/records/{entry_id}/feedback",
    summary="Ground truth or a human review of one inference",
    openapi_extra=FEEDBACK_BODY,
    responses={
        413: {"description": "Body over the size limit"},
        422: {"description": "The feedback is invalid"},
    },
)
async def post_feedback(
    request: Request, state: State, who: Who, entry_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    who.require("ingest")
    body = feedback_body(decode_json(await read_body(request, state.max_body_bytes)))
    return await run_in_threadpool(_append_feedback, state, who, entry_id, body)


def _append_feedback(state: ServerState, who: Principal, entry_id: str, body: FeedbackBody) -> dict[str, Any]:
    inference = state.store.get(entry_id)
    if inference is None or kind_of(inference.entry) != "inference" or not who.covers(inference.entry.system):
        raise NotFound(f"no inference with id {entry_id}")  # the same for another system's id
    entry: Entry = FeedbackEntry(
        id=body.id or uuid7(),
        system=inference.entry.system,
        ts=body.ts or dt.datetime.now(dt.UTC),
        inference_id=entry_id,
        label=body.label,
        outcome=body.outcome,
        override=body.override,
        comment=body.comment,
        actor=body.actor,
        attributes=body.attributes or {},
        verification=body.verification,
    )
    entry = check_entry(entry)  # a verification names who verified (actor), else 422 naming it
    if body.ts is not None:
        state.window.check_time(entry.ts)
    (result,) = state.ingestor.append([entry])
    return dataclasses.asdict(result)


@router.get("/stats", summary="Counts, models, latency percentiles (within the key's systems)")
def stats(state: State, who: Who, system: SystemParam = None, since: str | None = None) -> dict[str, Any]:
    who.require("reader", "auditor", "admin")
    if system is not None:
        who.require_system(system)
    query = build_query(system=system, since=since)
    if "*" not in who.systems:
        query = dataclasses.replace(query, systems=who.systems)
    result = state.store.stats(query)
    state.metrics.ledger_size.set(result["size"])
    result["unregistered"] = unregistered(result["models"], registered_models(state.store))
    return result
