"""The server runs retention on a schedule: a named thread, one pass per interval, errors logged.

Each pass is ``apply_retention`` under the policy the server was started with; what it purged is an
``admin`` entry like any manual run. On PostgreSQL the application role may not purge: a server
connected with it logs that once per pass and leaves retention to ``inferlog retention apply`` run
with the owner's URL.
"""

from __future__ import annotations

import logging

from inferlog.errors import InferlogError
from inferlog.keystore.base import KeyStore
from inferlog.periodic import Periodic
from inferlog.privacy.protect import Protection
from inferlog.retention import Governance, apply_retention
from inferlog.store.protocols import GovernedStore

log = logging.getLogger("inferlog.server.retention")


class RetentionSchedule:
    """Applies the policy's retention every ``interval`` seconds until closed."""

    def __init__(self, store: GovernedStore, protection: Protection, interval: float) -> None:
        self.store = store
        self.protection = protection
        self.interval = interval
        self.passes = 0
        self.failures = 0
        self._ticker = Periodic("inferlog-retention", interval, self.run_once, first_now=True)

    @property
    def wanted(self) -> bool:
        """Whether any system has a retention period (otherwise there is nothing to schedule)."""
        return self.interval > 0 and any(
            p.retention is not None for p in self.protection.policy.all_systems()
        )

    def start(self) -> None:
        if self.wanted:
            self._ticker.start()

    def _governance(self) -> Governance:
        keystore: KeyStore | None = self.protection.keyring  # type: ignore[assignment]
        return Governance(self.store, self.protection.policy, keystore, actor="server")

    def record_policy(self) -> None:
        """Record the policy the server runs with, if the log does not already say so."""
        try:
            self._governance().record_policy()
        except InferlogError as exc:
            log.error("the policy could not be recorded in the log: %s", exc)

    def run_once(self) -> None:
        gov = self._governance()
        try:
            plan = apply_retention(gov)
            self.passes += 1
            log.info("retention applied: %d payloads purged", plan.purge)
        except InferlogError as exc:
            self.failures += 1
            log.error("retention did not run: %s", exc)

    def close(self, timeout: float = 10.0) -> None:
        self._ticker.stop(timeout)
