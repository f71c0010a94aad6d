"""``GET /v1/alerts``: which alert rules fire now, and their recent transitions, as the log records them.

Alert entries hold no personal data (see :mod:`inferlog.monitor.alerts`), so reader keys may list them,
for the systems they cover; listing them is not an audited read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from inferlog.server.deps import State, Who

router = APIRouter(prefix="/v1", tags=["monitoring"])


@router.get(
    "/alerts", summary="Firing alerts and recent alert transitions (alert.fired / alert.resolved entries)"
)
async def list_alerts(
    state: State, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> dict[str, Any]:
    who.require("reader", "auditor", "admin")
    alerts = await run_in_threadpool(state.alert_state)
    firing = [s.to_dict() for s in alerts.firing_alerts() if who.covers(s.system)]
    recent = [
        {"action": "alert.fired" if s.firing else "alert.resolved", **s.to_dict()}
        for s in reversed(alerts.recent)
        if who.covers(s.system)
    ]
    return {"firing": firing, "recent": recent[:limit]}
