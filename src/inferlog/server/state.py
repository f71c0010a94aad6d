"""What a running server holds: the store, the one ingest path, the metrics, its settings."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inferlog.ingest.audit import record_read
from inferlog.ingest.service import Ingestor
from inferlog.ingest.window import AcceptedWindow
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.keystore.reveal import reveal
from inferlog.lineage import ModelRegistry, registrations_of
from inferlog.monitor.alerts import AlertState, read_state
from inferlog.pipeline import Pipeline
from inferlog.privacy.policy import Policy
from inferlog.privacy.protect import Protection
from inferlog.privacy.seal import subject_ref
from inferlog.record.model import StoredEntry
from inferlog.server.auth import Principal
from inferlog.server.metrics import ServerMetrics
from inferlog.store.protocols import Store


@dataclass
class ServerState:
    store: Store
    auth: bool = True
    max_body_bytes: int = 16 * 1024 * 1024
    checkpointer: Checkpointer | None = None
    protection: Protection | None = None
    window: AcceptedWindow = field(default_factory=AcceptedWindow.from_env)  # writers' ts, see ingest.window
    ingestor: Ingestor = field(init=False)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    lineage: ModelRegistry = field(init=False)  # the sinks attach digest/uri from it (lineage.py)
    _alert_state: AlertState = field(default_factory=AlertState, init=False)
    _alert_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        # Every entry that arrives (records, feedback, the sinks' records) passes the policy's admission,
        # also on a server without a policy file: a claimed seal is checked, never trusted.
        admission = (self.protection or Protection(Policy.default())).admit
        self.ingestor = Ingestor(self.store, Pipeline([admission]))
        store = self.store
        self.lineage = ModelRegistry(registrations_of(store))  # the reader GET /v1/models shares

    def alert_state(self) -> AlertState:
        """The log's alert state, brought up to date (reads only the entries appended since last time)."""
        with self._alert_lock:
            return read_state(self.store, self._alert_state)

    def stored_subject(self, subject: str | None) -> str | None:
        """A subject as the log stores it: its keyed pseudonym when the policy has a key store.

        Queries match it, and the access entry that records the query never holds the raw identifier.
        """
        keyring = self.protection.keyring if self.protection is not None else None
        if subject is None or keyring is None:
            return subject
        return subject_ref(keyring, subject)

    def visible(self, who: Principal, entries: Sequence[StoredEntry]) -> list[StoredEntry]:
        """What ``who`` sees of these entries: plaintext for reader keys, else as stored.

        An auditor checks proofs and the read trail; it never needs, so never gets, the payloads.
        """
        opener = self.protection.opener if self.protection is not None else None
        if opener is None or not who.allows("reader"):
            return list(entries)
        return reveal(self.store, opener, entries)

    def audit_read(
        self,
        who: Principal,
        action: str,
        purpose: str,
        scope: Sequence[str] | None,
        query: dict[str, Any],
        counts: Mapping[str, int],
    ) -> None:
        """Append the access entries for a read, one per system; raises (so the read fails) if it cannot be logged."""
        record_read(
            self.ingestor,
            actor=who.name,
            action=action,
            purpose=purpose,
            scope=scope,
            query=query,
            counts=counts,
        )
        self.metrics.reads.labels(action).inc()
