"""Retention: payloads older than their system's retention period go; legal holds keep theirs.

``plan_retention`` says what would go, ``apply_retention`` does it: purge the payloads (body, salt,
wrapped data key), destroy the epoch keys whose month is wholly past retention and untouched by any
hold, and append a ``retention.applied`` entry with the counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from inferlog.errors import UsageError
from inferlog.record.canonical import format_timestamp
from inferlog.retention.governance import LOG_SYSTEM, Governance
from inferlog.store.base import HoldFilter, Purge

RETENTION_APPLIED = "retention.applied"


@dataclass
class SystemPlan:
    """What retention does to one system."""

    system: str
    retention: str | None  # the policy's period, as written; None = kept forever
    cutoff: dt.datetime | None  # payloads of entries before this go
    purge: int = 0  # entries whose payload goes
    held: int = 0  # entries past retention kept by a legal hold
    epoch_keys: list[str] = field(default_factory=list)  # epoch keys to destroy
    forced: str | None = None  # why a period below the minimum is allowed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = format_timestamp(self.cutoff) if self.cutoff else None
        return data


@dataclass
class RetentionPlan:
    at: dt.datetime
    systems: list[SystemPlan]

    @property
    def purge(self) -> int:
        return sum(s.purge for s in self.systems)

    def as_dict(self) -> dict[str, Any]:
        return {"at": format_timestamp(self.at), "systems": [s.as_dict() for s in self.systems]}


def _month_end(year: int, month: int) -> dt.datetime:
    return dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)


def _overlaps(hold: HoldFilter, start: dt.datetime, end: dt.datetime) -> bool:
    return (hold.since is None or hold.since < end) and (hold.until is None or hold.until > start)


def plan_retention(gov: Governance) -> RetentionPlan:
    """What retention would remove now, per system (every system in the log and in the policy)."""
    systems = set(gov.store.stats().get("by_system", {})) | set(gov.policy.systems)
    plans = []
    for system in sorted(systems - {LOG_SYSTEM}):
        rules = gov.policy.for_system(system)
        if rules.retention is None:
            plans.append(SystemPlan(system, None, None))
            continue
        if rules.retention < rules.minimum_retention and not rules.force_short_retention:
            raise UsageError(
                f"system {system}: retention {rules.retention} is shorter than the minimum "
                f"{rules.minimum_retention}; set force_short_retention in the policy to allow it"
            )
        cutoff = rules.retention.before(gov.now)
        holds = gov.holds(system)
        everything = gov.store.purge(Purge(system=system, before=cutoff), dry_run=True).count
        kept = gov.store.purge(Purge(system=system, before=cutoff, keep=holds), dry_run=True).count
        plan = SystemPlan(
            system, str(rules.retention), cutoff, purge=kept, held=everything - kept,
            forced=rules.force_short_retention,
        )  # fmt: skip
        if gov.keystore is not None:
            for info in gov.keystore.list_keys(f"epoch:{system}:"):
                if info.destroyed_at is not None or info.name in plan.epoch_keys:
                    continue
                if info.name.rsplit(":", 1)[0] != f"epoch:{system}":  # "epoch:a:" also prefixes system "a:b"
                    continue
                year, month = (int(x) for x in info.name.rsplit(":", 1)[1].split("-"))
                start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
                end = _month_end(year, month)
                if end <= cutoff and not any(_overlaps(h, start, end) for h in holds):
                    plan.epoch_keys.append(info.name)
        plans.append(plan)
    return RetentionPlan(gov.now, plans)


def apply_retention(gov: Governance, plan: RetentionPlan | None = None) -> RetentionPlan:
    """Carry out a plan (a fresh one by default) and record it in one ``retention.applied`` entry."""
    plan = plan or plan_retention(gov)
    done: list[dict[str, Any]] = []
    try:
        for system in plan.systems:
            if system.cutoff is None:
                continue
            # Payloads first, then keys: a purge the store refuses leaves every key in place.
            result = gov.store.purge(
                Purge(system=system.system, before=system.cutoff, keep=gov.holds(system.system))
            )
            system.purge = result.count
            destroyed = []
            if gov.keystore is not None:
                for name in system.epoch_keys:
                    if gov.keystore.destroy(name):
                        destroyed.append(name)
            system.epoch_keys = destroyed
            if result.count or destroyed:
                done.append(system.as_dict())
    finally:  # what was done is recorded, even when a later system fails
        if done:
            gov.admin(RETENTION_APPLIED, {"policy": gov.policy.digest, "systems": done})
    return plan
