"""The HTTP server: assembly only. Routes live in ``routes/``; statuses come from ``inferlog.errors``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from inferlog import __version__
from inferlog.config import DEFAULT_MONITOR_EVERY, ENV_MONITOR_EVERY, duration_setting
from inferlog.errors import BadParameter, InferlogError, RecordInvalid, StoreUnavailable
from inferlog.ingest.window import AcceptedWindow
from inferlog.integrity.checkpointer import CheckpointCadence, Checkpointer
from inferlog.monitor.engine import Monitor
from inferlog.monitor.scheduler import AlertSchedule, default_source, make_alerter
from inferlog.monitor.source import MetricSource
from inferlog.privacy.protect import Protection
from inferlog.server import console, pending
from inferlog.server.retention import RetentionSchedule
from inferlog.server.routes import (
    admin,
    alerts,
    health,
    kserve,
    ledger,
    models,
    monitor,
    otlp,
    oversight,
    records,
    seldon,
    traces,
)
from inferlog.server.routes.monitor import install_monitor
from inferlog.server.schemas import RECORDS_COMPONENTS
from inferlog.server.state import ServerState
from inferlog.store.protocols import Store

log = logging.getLogger("inferlog.server")


def create_app(
    store: Store,
    *,
    auth: bool = True,
    max_body_bytes: int = 16 * 1024 * 1024,
    checkpointer: Checkpointer | None = None,
    protection: Protection | None = None,
    retention_every: float = 0.0,
    window: AcceptedWindow | None = None,
    checkpoint_cadence: bool = True,
    metric_source: MetricSource | None = None,
    monitor_every: float | None = None,
) -> FastAPI:
    """An app serving ``store``. ``auth=False`` makes every request an all-powerful anonymous one.

    ``protection`` (from the policy file) redacts, pseudonymizes and seals what arrives, and opens
    sealed entries for reader keys (auditors see ciphertext). The policy is recorded in the log at
    start (if it changed), and with ``retention_every`` seconds > 0 its retention is applied at start
    and then on that schedule. ``window`` bounds the times writers may give their records (default:
    from ``INFERLOG_MAX_RECORD_AGE`` and ``INFERLOG_MAX_CLOCK_SKEW``).
    With a ``checkpointer``, a background thread signs on its cadence (every
    N entries or T seconds) while the app runs, and once more at shutdown; ``checkpoint_cadence=False``
    leaves only ``POST /v1/checkpoint``.
    When the policy has alert rules, a background thread evaluates them every ``monitor_every``
    seconds (default: ``INFERLOG_MONITOR_EVERY``, 1m; 0 = never) against ``metric_source`` (default:
    the monitoring engine, :func:`inferlog.monitor.scheduler.default_source`).
    """
    schedule = RetentionSchedule(store, protection, retention_every) if protection is not None else None
    cadence = CheckpointCadence(checkpointer) if checkpointer is not None and checkpoint_cadence else None
    state = ServerState(
        store, auth=auth, max_body_bytes=max_body_bytes, checkpointer=checkpointer, protection=protection,
        window=window or AcceptedWindow.from_env(),
    )  # fmt: skip
    alert_schedule = _alert_schedule(state, metric_source, monitor_every)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pending.resume_pending(app.state)  # lone halves an earlier run left are swept from the start
        if schedule is not None:
            schedule.record_policy()
            schedule.start()
        if cadence is not None:
            cadence.start()
        if alert_schedule is not None:
            alert_schedule.start()
        try:
            yield
        finally:
            if alert_schedule is not None:
                alert_schedule.close()
            if cadence is not None:
                cadence.close()
            if schedule is not None:
                schedule.close()
            pending.close_pending(app.state)

    app = FastAPI(
        lifespan=lifespan,
        title="inferlog",
        version=__version__,
        description="The tamper-evident record of every inference an AI system makes.",
        docs_url=None,  # served below from the package's own copy of Swagger UI, not a CDN
        redoc_url=None,
    )
    _self_hosted_docs(app)
    app.state.inferlog = state
    if protection is not None:
        app.state.monitoring_policy = protection.policy.monitoring  # features, references for /v1/monitor
    if alert_schedule is not None and isinstance(alert_schedule.alerter.source, Monitor):
        install_monitor(app, alert_schedule.alerter.source)  # one engine for the routes and the rules

    @app.exception_handler(InferlogError)
    async def inferlog_error(request: Request, exc: InferlogError) -> Response:
        status = exc.http_status  # each class in inferlog.errors names its own
        if console.is_console(request):  # a page, not JSON, for a person in a browser
            return console.error_page(request, exc)
        if isinstance(exc, StoreUnavailable):
            app.state.inferlog.metrics.store_errors.inc()
        body: dict[str, object] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, RecordInvalid):
            body.update(field=exc.field, index=exc.index)
        elif isinstance(exc, BadParameter):
            body.update(field=exc.field)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        if console.is_console(request):
            return console.error_page(request, BadParameter(str(first.get("msg", "invalid")), field=where))
        return JSONResponse(
            {
                "error": "RequestInvalid",
                "message": f"{where}: {first.get('msg', 'invalid request')}",
                "field": where,
            },
            status_code=BadParameter.http_status,  # what a malformed named parameter answers
        )

    routers = (
        records.router,
        ledger.router,
        admin.router,
        alerts.router,
        models.router,
        health.router,
        kserve.router,
        seldon.router,
        otlp.router,
        traces.router,
        oversight.router,
        monitor.router,
    )
    for router in routers:
        app.include_router(router)
    console.install(app)  # the pages at / (not in the OpenAPI document: they are for people)

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


def _alert_schedule(
    state: ServerState, source: MetricSource | None, every: float | None
) -> AlertSchedule | None:
    """The alert rules' schedule, when the policy has rules, a source can measure them and ``every`` > 0."""
    protection = state.protection
    if protection is None or not protection.policy.monitoring.alerts:
        return None
    if every is None:
        every = duration_setting(ENV_MONITOR_EVERY, DEFAULT_MONITOR_EVERY).total_seconds()
    if every <= 0:
        return None
    source = source or default_source(state.store, protection.policy, protection.keyring)
    if source is None:
        log.warning(
            "the policy has alert rules but no monitoring engine is available: they are not evaluated"
        )
        return None
    alerter = make_alerter(state.store, protection.policy.monitoring, source, actor="server")
    state.metrics.watch_alerts(alerter)
    return AlertSchedule(alerter, every)


STATIC = Path(__file__).parent / "static"
"""Swagger UI's assets, copied unchanged from the swagger-ui-dist npm package (see SOURCES.json)."""


def _self_hosted_docs(app: FastAPI) -> None:
    """``/docs`` from files in the package (FastAPI's "self-hosting JavaScript and CSS for docs"):
    it works offline and on an air-gapped host, and the page loads nothing from another host."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url="/static/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )
