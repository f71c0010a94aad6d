"""What the governance actions share: the store, the policy in force, the key store, admin entries."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from inferlog.keystore.base import KeyStore
from inferlog.pipeline import Pipeline
from inferlog.privacy.policy import Policy
from inferlog.privacy.seal import subject_ref
from inferlog.record.ids import uuid7
from inferlog.record.model import AdminEntry
from inferlog.store.base import HoldFilter, Query
from inferlog.store.protocols import GovernedStore

LOG_SYSTEM = (
    "*"  # the system of entries about the log itself (policy, erasure, ...), as the server writes them
)
POLICY_CHANGED = "policy.changed"


@dataclass
class Governance:
    """The store, the policy in force and (if the policy names one) the key store, plus who acts."""

    store: GovernedStore
    policy: Policy
    keystore: KeyStore | None = None
    actor: str | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def admin(
        self, action: str, details: dict[str, Any], system: str = LOG_SYSTEM, entry_id: str | None = None
    ) -> str:
        """Append one ``admin`` entry; returns its id (``entry_id`` if given: a repeat is then a no-op)."""
        entry = AdminEntry(
            id=entry_id or uuid7(), system=system, ts=dt.datetime.now(dt.UTC), actor=self.actor,
            action=action, details=details,
        )  # fmt: skip
        self.store.append(Pipeline().prepare_all([entry]))
        return entry.id

    def subjects(self, subject: str) -> tuple[str, ...]:
        """How a subject may be stored: as given, and as its keyed pseudonym when there is a key store."""
        if self.keystore is None:
            return (subject,)
        ref = subject_ref(self.keystore, subject)
        return (subject, ref) if ref != subject else (subject,)

    def holds(self, system: str | None = None) -> tuple[HoldFilter, ...]:
        """The policy's legal holds as the store applies them (those that can touch ``system``)."""
        found = []
        for hold in self.policy.holds:
            if system is not None and hold.system is not None and hold.system != system:
                continue
            subjects = self.subjects(hold.subject) if hold.subject is not None else ()
            found.append(HoldFilter(system=hold.system, subjects=subjects, since=hold.start, until=hold.end))
        return tuple(found)

    def record_policy(self) -> str | None:
        """Append a ``policy.changed`` entry if the policy differs from the last one recorded.

        Returns the new entry's id, or None when the log already records this exact policy.
        """
        last = self.store.query(Query(kind="admin", system=LOG_SYSTEM, order="desc", limit=1000))
        previous = ""
        for stored in last:
            details = getattr(stored.entry, "details", {})
            if getattr(stored.entry, "action", None) == POLICY_CHANGED:
                if details.get("digest") == self.policy.digest:
                    return None
                previous = stored.id
                break
        policy = self.policy.to_dict()
        for hold in policy.get("holds", []):  # the log outlives erasure: never a raw subject in it
            if hold.get("subject") is not None:
                hold["subject"] = (
                    self.subjects(hold["subject"])[-1] if self.keystore else "[REDACTED:subject]"
                )
        details = {"digest": self.policy.digest, "policy": policy}
        forced = self.policy.forced()
        if forced:
            details["forced_short_retention"] = [{"system": s, "reason": r} for s, r in forced]
        # The id follows from (previous policy entry, this digest): processes that start together with
        # the same new policy all write the same id, and the store keeps the first.
        seed = hashlib.sha256(f"{previous}|{self.policy.digest}".encode()).digest()[:16]
        entry_id = str(uuid.UUID(bytes=seed, version=4))
        return self.admin(POLICY_CHANGED, details, entry_id=entry_id)
