"""The HTTP server: assembly only. Routes live in ``routes/``; errors map to status codes here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from inferlog import __version__
from inferlog.errors import (
    Conflict,
    InferlogError,
    IntegrityError,
    NotFound,
    RecordInvalid,
    StoreUnavailable,
    UsageError,
)
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.server.auth import AuthError, Forbidden
from inferlog.server.errors import PayloadTooLarge
from inferlog.server.routes import admin, health, kserve, ledger, records
from inferlog.server.schemas import RECORDS_COMPONENTS
from inferlog.server.state import ServerState
from inferlog.store.base import Store

_STATUS: list[tuple[type[InferlogError], int]] = [
    (AuthError, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (RecordInvalid, 422),
    (UsageError, 400),
    (StoreUnavailable, 503),
    (IntegrityError, 500),
]


def status_of(exc: InferlogError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def create_app(
    store: Store,
    *,
    auth: bool = True,
    max_body_bytes: int = 16 * 1024 * 1024,
    checkpointer: Checkpointer | None = None,
) -> FastAPI:
    """An app serving ``store``. ``auth=False`` makes every request an all-powerful anonymous one."""
    app = FastAPI(
        title="inferlog",
        version=__version__,
        description="The tamper-evident record of every inference an AI system makes.",
    )
    app.state.inferlog = ServerState(
        store, auth=auth, max_body_bytes=max_body_bytes, checkpointer=checkpointer
    )

    @app.exception_handler(InferlogError)
    async def inferlog_error(request: Request, exc: InferlogError) -> JSONResponse:
        status = status_of(exc)
        if isinstance(exc, StoreUnavailable):
            app.state.inferlog.metrics.store_errors.inc()
        body: dict[str, object] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, RecordInvalid):
            body.update(field=exc.field, index=exc.index)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse(
            {
                "error": "RequestInvalid",
                "message": f"{where}: {first.get('msg', 'invalid request')}",
                "field": where,
            },
            status_code=422,
        )

    for router in (records.router, ledger.router, admin.router, health.router, kserve.router):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(RECORDS_COMPONENTS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
