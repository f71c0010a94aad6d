"""``/monitor``: the monitoring engine's numbers for one system, model and version, as charts.

Every chart's data come from :class:`~inferlog.monitor.engine.Monitor` (the same calls as
``GET /v1/monitor/series`` and ``/drift``), drawn by uPlot in the browser, and also written out as a
table beneath it: the table is the chart for a screen reader, a keyboard or a browser without
JavaScript. Aggregates carry no payload, so, as on the API, no purpose is asked and no access entry
is written; alerts come from the log's own ``alert.fired``/``alert.resolved`` entries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from inferlog.errors import BadParameter
from inferlog.monitor.engine import Monitor
from inferlog.monitor.source import Scope
from inferlog.query.filters import parse_since
from inferlog.server.console.web import Who, mark_console, render
from inferlog.server.deps import State
from inferlog.server.routes.monitor import monitor_of

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_console)])

BUCKETS = ("minute", "hour", "day")
DEFAULT_SINCE = "7d"
DRIFT_FEATURES_CHARTED = 4  # the most drifted features get a line each; the table lists them all
TRUTH_METRICS = ("accuracy", "precision", "recall", "f1", "mae", "rmse", "override_rate")


@dataclass
class Chart:
    """One chart: an id, a title, the unit, x as epoch seconds and named series, and a table fallback."""

    id: str
    title: str
    unit: str
    x: list[int]
    series: list[tuple[str, list[float | None]]]
    note: str = ""

    @property
    def empty(self) -> bool:
        return not any(v is not None for _, values in self.series for v in values)

    def spec(self) -> dict[str, Any]:
        return {"unit": self.unit, "x": self.x, "series": [{"label": n, "values": v} for n, v in self.series]}

    def rows(self) -> list[tuple[str, list[float | None]]]:
        """(time, values) for the table, buckets without any value left out."""
        out = []
        for i, t in enumerate(self.x):
            values = [values[i] for _, values in self.series]
            if any(v is not None for v in values):
                out.append((dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M"), values))
        return out


def _bucket_for(since: dt.datetime, until: dt.datetime, asked: str | None) -> str:
    if asked:
        if asked not in BUCKETS:
            raise BadParameter(f"must be one of {', '.join(BUCKETS)}, got {asked!r}", field="bucket")
        return asked
    span = until - since
    return "minute" if span <= dt.timedelta(hours=6) else "hour" if span <= dt.timedelta(days=3) else "day"


def _series(
    monitor: Monitor, names: list[str], scope: Scope, bucket: str, since: dt.datetime, until: dt.datetime,
    reference: str | None = None,
) -> tuple[list[int], dict[str, list[float | None]]]:  # fmt: skip
    """The buckets' times (epoch seconds) and each metric per bucket, from one read of the rollups."""
    found = monitor.series_many(names, scope, bucket, since, until, reference=reference)
    x = [int(t.timestamp()) for t, _ in found[names[0]]]
    return x, {name: [v for _, v in points] for name, points in found.items()}


def _charts(
    monitor: Monitor, scope: Scope, bucket: str, since: dt.datetime, until: dt.datetime, reference: str | None,
    drifted: list[str], values: dict[str, float | None],
) -> list[Chart]:  # fmt: skip
    measured = [m for m in TRUTH_METRICS if values.get(m) is not None]  # a classifier's or a regressor's
    latency = ["latency_p50", "latency_p95", "latency_p99"]
    x, got = _series(monitor, ["volume", "error_rate", *latency, *measured], scope, bucket, since, until)
    truth = [(m, got[m]) for m in measured]
    charts = [
        Chart("volume", "Volume", "records", x, [("records", got["volume"])]),
        Chart("errors", "Error rate", "fraction", x, [("error rate", got["error_rate"])]),
        Chart("latency", "Latency", "ms", x, [(m.removeprefix("latency_"), got[m]) for m in latency]),
        Chart("truth", "Ground truth (from feedback)", "", x, truth,
              note="" if truth else "No feedback labels joined to these records in this window."),
    ]  # fmt: skip
    if reference is not None and drifted:
        _, psi = _series(monitor, [f"psi:{f}" for f in drifted], scope, bucket, since, until, reference)
        charts.append(
            Chart(
                "drift", f"Drift (PSI against {reference})", "PSI", x, [(f, psi[f"psi:{f}"]) for f in drifted]
            )
        )
    return charts


@router.get("/monitor")
def monitor_page(request: Request, state: State, viewer: Who) -> Response:
    who = viewer.principal
    who.require("reader", "auditor")  # as GET /v1/monitor/*
    params = request.query_params
    monitor = monitor_of(request, state)
    scopes = [s for s in monitor.scopes() if who.covers(s.system)]
    system, model, version = (
        params.get("system") or None,
        params.get("model") or None,
        params.get("version") or None,
    )
    if system is None and model is not None:  # from the overview's model rows: find the model's system
        owners = sorted({s.system for s in scopes if s.model == model})
        system = owners[0] if len(owners) == 1 else None
    context: dict[str, Any] = {"title": "Monitoring", "scopes": scopes, "system": system, "model": model,
                               "version": version, "charts": [], "drift": None}  # fmt: skip
    alerts = state.alert_state()
    firing = [a for a in alerts.firing_alerts() if who.covers(a.system)]
    recent = [a for a in reversed(alerts.recent) if who.covers(a.system)]
    if system is None:
        context.update(firing=firing, recent=recent[:20])
        return render(request, "monitor.html", viewer, context)
    who.require_system(system)
    if version is not None and model is None:
        raise BadParameter("a version needs its model", field="version")
    scope = Scope(system, model, version)
    until = parse_since(params["until"], name="until") if params.get("until") else dt.datetime.now(dt.UTC)
    since = parse_since(params.get("since") or DEFAULT_SINCE)
    if since >= until:
        raise BadParameter("must be before until", field="since")
    bucket = _bucket_for(since, until, params.get("bucket"))
    references = _references(monitor, system)
    reference = params.get("reference") or (references[0] if references else None)
    drift = monitor.drift(scope, reference, since, until) if reference else None
    values = monitor.values(scope, since, until)
    rows = sorted(drift.features, key=lambda f: (f.psi is None, -(f.psi or 0.0))) if drift else []
    drifted = [f.feature for f in rows if f.psi is not None][:DRIFT_FEATURES_CHARTED]
    context.update(
        scope=scope, since=params.get("since") or DEFAULT_SINCE, until_text=params.get("until", ""),
        bucket=bucket, buckets=BUCKETS, references=references, reference=reference, drift=drift, drift_rows=rows,
        values=values,
        charts=_charts(monitor, scope, bucket, since, until, reference, drifted, values),
        firing=[a for a in firing if a.system == system],
        recent=[a for a in recent if a.system == system][:20],
        versions=[s for s in scopes if s.system == system],
    )  # fmt: skip
    return render(request, "monitor.html", viewer, context)


def _references(monitor: Monitor, system: str) -> list[str]:
    """The drift references that can describe ``system``: the policy's periods, then kept data sets."""
    names = [r.name for r in monitor.policy.references.values() if r.system == system]
    names += [r.name for r in monitor.references.list() if r.system in (None, system) and r.name not in names]
    return names
