"""``/v1/periods`` and ``/v1/records/{id}/verification``: when a system was in use, who verified a match.

Periods are written like any record (``POST /v1/records`` with ``period.started``/``period.ended``
admin entries); these routes read them, and the verifications of one inference. Every read is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from inferlog.errors import NotFound
from inferlog.query.filters import parse_since
from inferlog.query.oversight import biometric_uses, periods, verification
from inferlog.record.model import kind_of
from inferlog.server.auth import Principal
from inferlog.server.deps import State, Who
from inferlog.server.routes.records import Purpose, SystemParam

router = APIRouter(prefix="/v1", tags=["oversight"])


def _window(who: Principal, system: str | None, since: str | None, until: str | None) -> dict[str, Any]:
    """A window read's filters: a reader or auditor, within the key's systems, times parsed."""
    who.require("reader", "auditor")
    if system is not None:
        who.require_system(system)
    return {
        "system": system,
        "systems": None if "*" in who.systems else who.systems,
        "since": parse_since(since) if since else None,
        "until": parse_since(until, name="until") if until else None,
    }


@router.get("/periods", summary="Periods of use, paired from their start and end entries (audited)")
def list_periods(
    state: State,
    who: Who,
    purpose: Purpose,
    system: SystemParam = None,
    since: Annotated[str | None, Query(description="ISO-8601 time, or a duration ago: 30m, 1h, 7d")] = None,
    until: str | None = None,
) -> dict[str, Any]:
    found = periods(state.store, **_window(who, system, since, until))
    counts: dict[str, int] = {}
    for period in found:
        counts[period.system] = counts.get(period.system, 0) + 1
    query = {"kind": "admin", "action": "period.*", "system": system, "since": since, "until": until}
    state.audit_read(who, "periods", purpose, [system] if system else who.systems, query, counts)
    return {"periods": [period.to_dict() for period in found]}


@router.get(
    "/records/{entry_id}/verification",
    summary="Who confirmed or rejected one inference's result; two_person per AI Act Art. 14(5) (audited)",
)
def get_verification(
    state: State, who: Who, entry_id: Annotated[str, Path(max_length=64)], purpose: Purpose
) -> dict[str, Any]:
    who.require("reader", "auditor")
    stored = state.store.get(entry_id)
    if stored is None or kind_of(stored.entry) != "inference" or not who.covers(stored.entry.system):
        raise NotFound(f"no inference with id {entry_id}")
    system = stored.entry.system
    result = verification(state.store, entry_id, system=system)
    count = len(result.confirmed_by) + len(result.rejected_by)
    state.audit_read(who, "verification", purpose, [system], {"inference_id": entry_id}, {system: count})
    return result.to_dict()


@router.get(
    "/biometric",
    summary="Biometric uses (AI Act Art. 12(3)) in a window, each with who verified it (audited)",
)
def list_biometric(
    state: State,
    who: Who,
    purpose: Purpose,
    system: SystemParam = None,
    since: Annotated[str | None, Query(description="ISO-8601 time, or a duration ago: 30m, 1h, 7d")] = None,
    until: str | None = None,
    database: Annotated[
        str | None, Query(max_length=256, description="Only this reference database.")
    ] = None,
    unverified: Annotated[bool, Query(description="Only matches not confirmed by two persons.")] = False,
) -> dict[str, Any]:
    uses = biometric_uses(
        state.store,
        **_window(who, system, since, until),
        database=database,
        unverified=unverified,
    )
    counts: dict[str, int] = {}
    for use in uses:
        counts[use.stored.entry.system] = counts.get(use.stored.entry.system, 0) + 1
    query = {"kind": "inference", "biometric": True, "system": system, "since": since, "until": until,
             "database": database, "unverified": unverified}  # fmt: skip
    state.audit_read(who, "biometric", purpose, [system] if system else who.systems, query, counts)
    return {"uses": [use.to_dict() for use in uses]}
