"""``POST /v1/ingest/kserve``: the sink for KServe's InferenceLogger (CloudEvents, binary or structured).

The logger never retries, so each half is written to the server's pending file
(:mod:`inferlog.server.pending`) before the 202 goes out. When both halves of an inference (same
``ce-id``) are there they become one record; a half left alone longer than the timeout is recorded on
its own (``attributes.kserve_half``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferlog.ingest import kserve
from inferlog.server.body import read_body
from inferlog.server.deps import State, WhoFromUrl
from inferlog.server.pending import PendingHalves, pending_of, sink_system, sweep_quietly

router = APIRouter(prefix="/v1", tags=["ingest"])


@router.post(
    "/ingest/kserve",
    summary="KServe InferenceLogger sink (CloudEvents binary or structured); joins request and response",
    status_code=202,
    responses={202: {"description": "Kept durably"}, 422: {"description": "Not a KServe inference event"}},
)
async def ingest_kserve(
    request: Request, state: State, who: WhoFromUrl, system: str | None = None
) -> JSONResponse:
    who.require("ingest")
    body = await read_body(request, state.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("application/cloudevents+json"):
        event = kserve.parse_structured(body)
    else:
        event = kserve.parse_binary(dict(request.headers), body)
    state.window.check_header_time(event.time, field="ce-time")
    system = sink_system(who, system)
    keeper = pending_of(request)
    status = await run_in_threadpool(_add_and_sweep, keeper, event, system)
    body_out: dict[str, Any] = {"id": kserve.record_id(event.source, event.id), "status": status}
    return JSONResponse(body_out, status_code=202)


def _add_and_sweep(keeper: PendingHalves, event: kserve.Event, system: str) -> str:
    status = keeper.add("kserve", kserve.record_id(event.source, event.id), event.half, event, system)
    sweep_quietly(keeper)
    return status
