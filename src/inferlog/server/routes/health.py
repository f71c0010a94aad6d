"""Liveness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from inferlog.server.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 when the store answers, 503 otherwise")
async def healthz(state: State) -> Any:
    try:
        size = await run_in_threadpool(state.store.size)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        return JSONResponse({"status": "unavailable", "message": str(exc)}, status_code=503)
    return {"status": "ok", "entries": size}


@router.get("/metrics", summary="Prometheus metrics about the log itself")
async def metrics(state: State) -> Response:
    state.metrics.ledger_size.set(await run_in_threadpool(state.store.size))
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
