"""``/v1/monitor/*``: the monitoring engine's numbers (volume, errors, latency, drift, ground truth).

The answers are aggregates (counts, rates, quantiles, distances) of whole buckets; they carry no
payload and name no entry, so these routes need no ``purpose`` and leave no access entry, unlike the
record routes. Categorical values of protected fields are keyed digests in the rollups (see
docs/monitoring.md). Reading needs the reader or auditor role, within the key's systems; uploading a
reference data set needs admin.

Each read first folds what was logged since the last fold (up to :data:`CATCH_UP_LIMIT` entries; the
server's monitoring cadence does the rest), so a chart is as fresh as the log.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from inferlog.errors import BadParameter, Forbidden
from inferlog.monitor.engine import Monitor
from inferlog.monitor.policy import MonitoringPolicy
from inferlog.monitor.reference import FORMATS
from inferlog.monitor.source import METRIC_NAMES, Scope
from inferlog.query.filters import parse_since
from inferlog.server.auth import Principal
from inferlog.server.body import read_body
from inferlog.server.deps import State, Who
from inferlog.server.state import ServerState

router = APIRouter(prefix="/v1/monitor", tags=["monitor"])

CATCH_UP_LIMIT = 50_000
DEFAULT_WINDOW = dt.timedelta(days=1)

SystemRequired = Annotated[str, Query(min_length=1, max_length=256, description="The AI system.")]
ModelParam = Annotated[str | None, Query(max_length=256, description="Only this model.")]
VersionParam = Annotated[
    str | None, Query(max_length=256, description="Only this model version (with model).")
]
TimeParam = Annotated[str | None, Query(description="ISO-8601 time, or a duration ago: 30m, 1h, 7d")]
_REFERENCE = "A kept reference data set, a policy reference, or an ISO-8601 interval <since>/<until>."
ReferenceParam = Annotated[str | None, Query(max_length=200, description=_REFERENCE)]


def install_monitor(app: Any, monitor: Monitor) -> None:
    """Make ``monitor`` the one these routes use (the server's monitoring cadence shares it)."""
    app.state.monitor = monitor


def monitor_of(request: Request, state: ServerState) -> Monitor:
    """The app's monitor, made on first use from the store, the policy's privacy part and its key store."""
    found: Monitor | None = getattr(request.app.state, "monitor", None)
    if found is None:
        protection = state.protection
        policy: MonitoringPolicy = getattr(request.app.state, "monitoring_policy", None) or MonitoringPolicy()
        found = Monitor(
            state.store, policy,
            privacy=protection.policy if protection is not None else None,
            keyring=protection.keyring if protection is not None else None,
        )  # fmt: skip
        install_monitor(request.app, found)
    found.catch_up(limit=CATCH_UP_LIMIT)
    return found


def _scope(who: Principal, system: str, model: str | None, version: str | None) -> Scope:
    who.require("reader", "auditor")
    who.require_system(system)
    if version is not None and model is None:
        raise BadParameter("a version needs its model", field="version")
    return Scope(system, model, version)


def _window(since: str | None, until: str | None) -> tuple[dt.datetime, dt.datetime]:
    end = parse_since(until, name="until") if until else dt.datetime.now(dt.UTC)
    start = parse_since(since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise BadParameter("must be before until", field="since")
    return start, end


@router.get("/systems", summary="Systems, models and versions with all-time volume, error rate and latency")
def systems(request: Request, state: State, who: Who) -> dict[str, Any]:
    who.require("reader", "auditor")
    scopes = monitor_of(request, state).scopes()
    return {"scopes": [s.to_dict() for s in scopes if who.covers(s.system)]}


@router.get("/metrics", summary="Every plain metric of a scope over one window")
def metrics(
    request: Request,
    state: State,
    who: Who,
    system: SystemRequired,
    model: ModelParam = None,
    version: VersionParam = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> dict[str, Any]:
    scope = _scope(who, system, model, version)
    start, end = _window(since, until)
    monitor = monitor_of(request, state)
    values = monitor.values(scope, start, end)
    return {"system": system, "model": model, "version": version, "since": start.isoformat(),
            "until": end.isoformat(), "metrics": values}  # fmt: skip


@router.get("/series", summary="One metric per minute, hour or day bucket")
def series(
    request: Request,
    state: State,
    who: Who,
    system: SystemRequired,
    metric: Annotated[str, Query(min_length=1, max_length=300, description=f"One of {', '.join(METRIC_NAMES)}, "
                                 "output_psi, or psi|jsd|wasserstein|missing_rate|type_change_rate:<feature>.")],
    model: ModelParam = None,
    version: VersionParam = None,
    bucket: Annotated[str, Query(description="minute, hour or day")] = "hour",
    since: TimeParam = None,
    until: TimeParam = None,
    reference: ReferenceParam = None,
) -> dict[str, Any]:  # fmt: skip
    scope = _scope(who, system, model, version)
    start, end = _window(since, until)
    points = monitor_of(request, state).series(metric, scope, bucket, start, end, reference=reference)
    return {
        "system": system, "model": model, "version": version, "metric": metric, "bucket": bucket,
        "reference": reference, "points": [{"t": t.isoformat(), "value": value} for t, value in points],
    }  # fmt: skip


@router.get("/drift", summary="Per-feature drift of a window against a reference")
def drift(
    request: Request,
    state: State,
    who: Who,
    system: SystemRequired,
    reference: Annotated[str, Query(min_length=1, max_length=200, description=_REFERENCE)],
    model: ModelParam = None,
    version: VersionParam = None,
    since: TimeParam = None,
    until: TimeParam = None,
) -> dict[str, Any]:  # fmt: skip
    scope = _scope(who, system, model, version)
    start, end = _window(since, until)
    return monitor_of(request, state).drift(scope, reference, start, end).to_dict()


@router.get("/references", summary="The kept reference data sets")
def references(request: Request, state: State, who: Who) -> dict[str, Any]:
    who.require("reader", "auditor")
    kept = monitor_of(request, state).references.list()
    return {"references": [r.to_dict() for r in kept if r.system is None or who.covers(r.system)]}


@router.post(
    "/references", summary="Upload a reference data set (Parquet or CSV body); admin", status_code=201
)
async def add_reference(
    request: Request,
    state: State,
    who: Who,
    name: Annotated[str, Query(min_length=1, max_length=64, description="Name to keep it under.")],
    format: Annotated[str, Query(description="parquet or csv")],
    system: Annotated[str | None, Query(max_length=256, description="The system it describes.")] = None,
) -> dict[str, Any]:
    who.require("admin")
    if system is not None and not who.covers(system):
        raise Forbidden(f"this key does not cover system {system}")
    if format not in FORMATS:
        raise BadParameter(f"must be one of {', '.join(FORMATS)}, got {format!r}", field="format")
    body = await read_body(request, state.max_body_bytes)
    if not body:
        raise BadParameter("the request body holds no data set", field="body")
    monitor = await run_in_threadpool(monitor_of, request, state)
    kept = await run_in_threadpool(
        lambda: monitor.references.add(name, body, system=system, fmt=format, source=f"upload ({format})")
    )
    return kept.to_dict()
