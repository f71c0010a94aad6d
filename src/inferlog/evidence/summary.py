"""What a pack's rows add up to: counts, error rates, overrides, models, reads, policy history.

Computed in one pass as rows are written (:class:`Tally`), kept in the pack as ``summary.json``,
``models.json`` and ``policy.json``, and shown by ``report.html``. These files are derived from the
entries, for people; the entries and their proofs are the evidence.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from inferlog.evidence.rows import PackRow
from inferlog.record.periods import PERIOD_ACTIONS, PERIOD_STARTED

MAX_LISTED = 200  # access entries (and biometric matches) listed one by one in the summary (all are counted)
TWO_PERSONS = 2  # AI Act Art. 14(5): a match is acted on only once two natural persons confirmed it


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


@dataclass
class _Model:
    count: int = 0
    errors: int = 0
    erased: int = 0
    overrides: int = 0
    first: str | None = None
    last: str | None = None
    artifacts: Counter[tuple[str | None, str | None, str | None]] = field(default_factory=Counter)


@dataclass
class Oversight:
    """Periods of use declared in the pack, and the biometric uses (AI Act Art. 12(3)) with who verified them."""

    periods: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # period id -> start, end, purpose, actor
    uses: dict[str, dict[str, Any]] = field(default_factory=dict)  # inference id -> its biometric fields
    confirmed: dict[str, dict[str, None]] = field(default_factory=dict)  # inference id -> distinct persons
    rejected: dict[str, dict[str, None]] = field(default_factory=dict)

    def period(self, row: PackRow, body: dict[str, Any]) -> None:
        details = body.get("details") or {}
        found = self.periods.setdefault(
            str(details.get("period")), {"start": None, "end": None, "purpose": None, "actor": None}
        )
        found["start" if body.get("action") == PERIOD_STARTED else "end"] = row.ts
        found["purpose"] = found["purpose"] or details.get("purpose")
        found["actor"] = found["actor"] or body.get("actor")

    def use(self, row: PackRow, biometric: dict[str, Any]) -> None:
        database = biometric.get("reference_database") or {}
        self.uses[row.id] = {
            "seq": row.seq, "id": row.id, "period": biometric.get("period"),
            "reference_database": database, "match": biometric.get("match") is not None,
        }  # fmt: skip

    def verified(self, body: dict[str, Any]) -> None:
        target = self.confirmed if body.get("verification") == "confirmed" else self.rejected
        target.setdefault(str(body.get("inference_id")), {})[str(body.get("actor"))] = None

    def summary(self) -> dict[str, Any]:
        matches = [use for use in self.uses.values() if use["match"]]
        listed = []
        for use in matches:
            confirmed = list(self.confirmed.get(use["id"], {}))
            rejected = list(self.rejected.get(use["id"], {}))
            two_person = len(confirmed) >= TWO_PERSONS and not rejected
            listed.append(
                use | {"confirmed_by": confirmed, "rejected_by": rejected, "two_person": two_person}
            )
        return {
            "periods": [{"id": pid, **found} for pid, found in self.periods.items()],
            "biometric": {
                "uses": len(self.uses),
                "matches": len(matches),
                "two_person_verified": sum(m["two_person"] for m in listed),
                "matches_listed": listed[:MAX_LISTED],
            },
        }


@dataclass
class Tally:
    """Running totals over a pack's rows (add them in seq order with their role)."""

    kinds: Counter[str] = field(default_factory=Counter)
    roles: Counter[str] = field(default_factory=Counter)
    erased: Counter[str] = field(default_factory=Counter)
    status: Counter[str] = field(default_factory=Counter)
    days: dict[str, Counter[str]] = field(default_factory=dict)
    models: dict[tuple[str, str], _Model] = field(default_factory=dict)
    model_of: dict[str, tuple[str, str]] = field(default_factory=dict)  # inference id -> (name, version)
    feedback: Counter[str] = field(default_factory=Counter)
    readers: Counter[str] = field(default_factory=Counter)
    purposes: Counter[str] = field(default_factory=Counter)
    reads: list[dict[str, Any]] = field(default_factory=list)
    admin: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    oversight: Oversight = field(default_factory=Oversight)

    def add(self, row: PackRow, role: str, leaf: dict[str, Any] | None = None) -> None:
        """Count one row; ``leaf`` is its leaf parsed, when the caller has it already."""
        if leaf is None:
            leaf = json.loads(row.leaf)
        body = json.loads(row.body) if row.body is not None else None
        self.kinds[row.kind] += 1
        self.roles[role] += 1
        if row.erased:
            self.erased[row.kind] += 1
        if row.kind == "inference":
            self._inference(row, leaf, body)
        elif row.kind == "feedback":
            self._feedback(leaf, body)
        elif row.kind == "access" and body is not None:
            self._access(row, body)
        elif row.kind == "admin" and body is not None:
            self._admin(row, body)

    def _inference(self, row: PackRow, leaf: dict[str, Any], body: dict[str, Any] | None) -> None:
        status = str(leaf.get("status", "ok"))
        self.status[status] += 1
        self.days.setdefault(row.ts[:10], Counter())[status] += 1
        named = leaf.get("model") or {}
        key = (str(named.get("name", "")), str(named.get("version", "")))
        self.model_of[row.id] = key
        model = self.models.setdefault(key, _Model())
        model.count += 1
        model.errors += status == "error"
        model.first = model.first or row.ts
        model.last = row.ts
        if body is None:
            model.erased += 1
            return
        full = body.get("model") or {}
        model.artifacts[(full.get("digest"), full.get("uri"), full.get("provider"))] += 1
        if isinstance(body.get("biometric"), dict):
            self.oversight.use(row, body["biometric"])

    def _feedback(self, leaf: dict[str, Any], body: dict[str, Any] | None) -> None:
        self.feedback["total"] += 1
        if body is None:
            self.feedback["erased"] += 1
            return
        if body.get("verification") is not None:
            self.oversight.verified(body)
        for name in ("label", "outcome", "override"):
            if body.get(name) is not None:
                self.feedback[name] += 1
        if body.get("override") is not None:
            key = self.model_of.get(str(leaf.get("inference_id")))
            if key is not None:
                self.models[key].overrides += 1

    def _access(self, row: PackRow, body: dict[str, Any]) -> None:
        actor = str(body.get("actor") or "unknown")
        self.readers[actor] += 1
        self.purposes[str(body.get("purpose", ""))] += 1
        if len(self.reads) < MAX_LISTED:
            self.reads.append({
                "seq": row.seq, "ts": row.ts, "actor": actor, "action": body.get("action"),
                "purpose": body.get("purpose"), "count": body.get("count"), "query": body.get("query", {}),
            })  # fmt: skip

    def _admin(self, row: PackRow, body: dict[str, Any]) -> None:
        details = body.get("details", {})
        action = str(body.get("action", ""))
        self.admin.append({
            "seq": row.seq, "ts": row.ts, "system": row.system, "action": action, "actor": body.get("actor"),
            "details": details if action != "policy.changed" else {"digest": details.get("digest")},
        })  # fmt: skip
        if action in PERIOD_ACTIONS:
            self.oversight.period(row, body)
        if action == "policy.changed":
            self.policies.append({
                "seq": row.seq, "ts": row.ts, "actor": body.get("actor"), "digest": details.get("digest"),
                "policy": details.get("policy"), "forced_short_retention": details.get("forced_short_retention"),
            })  # fmt: skip

    # -- the derived files --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        inferences = self.kinds["inference"]
        errors = self.status["error"]
        overrides = self.feedback["override"]
        return {
            "entries": {
                "total": sum(self.kinds.values()),
                "by_kind": dict(sorted(self.kinds.items())),
                "by_role": dict(sorted(self.roles.items())),
                "erased": dict(sorted(self.erased.items())),
            },
            "inferences": {
                "total": inferences,
                "ok": self.status["ok"],
                "error": errors,
                "error_rate": rate(errors, inferences),
                "erased": self.erased["inference"],
                "by_day": [
                    {"day": day, "ok": c["ok"], "error": c["error"]} for day, c in sorted(self.days.items())
                ],
            },
            "models": [
                {
                    "name": name,
                    "version": version,
                    "count": m.count,
                    "errors": m.errors,
                    "error_rate": rate(m.errors, m.count),
                    "overrides": m.overrides,
                    "override_rate": rate(m.overrides, m.count),
                    "erased": m.erased,
                }
                for (name, version), m in sorted(self.models.items())
            ],
            "feedback": {
                "total": self.feedback["total"],
                "labels": self.feedback["label"],
                "outcomes": self.feedback["outcome"],
                "overrides": overrides,
                "override_rate": rate(overrides, inferences),
                "erased": self.feedback["erased"],
            },
            "access": {
                "total": self.kinds["access"],
                "by_actor": dict(self.readers.most_common()),
                "by_purpose": dict(self.purposes.most_common()),
                "listed": self.reads,
            },
            "admin": {
                "by_action": dict(Counter(a["action"] for a in self.admin).most_common()),
                "entries": self.admin,
            },
            "oversight": self.oversight.summary(),
        }

    def lineage(self) -> dict[str, Any]:
        """models.json: each model version that answered, its artifacts (digest, registry URI) and when."""
        models = []
        for (name, version), m in sorted(self.models.items()):
            artifacts = [
                {"digest": digest, "uri": uri, "provider": provider, "count": count}
                for (digest, uri, provider), count in sorted(m.artifacts.items(), key=lambda item: -item[1])
            ]
            models.append({
                "name": name, "version": version, "inferences": m.count, "first_seen": m.first,
                "last_seen": m.last, "erased": m.erased, "artifacts": artifacts,
            })  # fmt: skip
        return {"models": models}

    def policy(self, since: str) -> dict[str, Any]:
        """policy.json: the policy in force when the period began and every change since, from admin entries."""
        before = [p for p in self.policies if p["ts"] < since]
        return {
            "in_force_at_start": before[-1] if before else None,
            "changes": [p for p in self.policies if p["ts"] >= since],
            "note": "from the log's policy.changed admin entries; a policy never recorded (`inferlog policy apply`) is not here",
        }
