"""What a running server holds: the store, the one ingest path, the metrics, its settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from inferlog.errors import RecordInvalid
from inferlog.ingest.service import Ingestor
from inferlog.ingest.window import AcceptedWindow
from inferlog.integrity.checkpointer import Checkpointer
from inferlog.keystore.reveal import reveal
from inferlog.pipeline import Pipeline
from inferlog.privacy.protect import Protection
from inferlog.privacy.seal import subject_ref
from inferlog.record.ids import uuid7
from inferlog.record.model import AccessEntry, AdminEntry, Entry, StoredEntry
from inferlog.server.auth import Principal
from inferlog.server.metrics import ServerMetrics
from inferlog.store.base import Store


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

    def __post_init__(self) -> None:
        active = self.protection is not None and self.protection.active
        self.ingestor = Ingestor(self.store, Pipeline([self.protection]) if active else None)  # type: ignore[list-item]

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
        self, who: Principal, action: str, purpose: str, system: str, query: dict[str, Any], count: int
    ) -> None:
        """Append the access entry for a read; raises (so the read fails) if it cannot be logged (R10)."""
        entry = AccessEntry(
            id=uuid7(),
            system=system,
            ts=dt.datetime.now(dt.UTC),
            actor=who.name,
            action=action,
            purpose=purpose,
            query=msgspec.to_builtins(query),
            count=count,
        )
        self.ingestor.append([_checked(entry)])
        self.metrics.reads.labels(action).inc()

    def audit_admin(self, who: Principal, action: str, details: dict[str, Any]) -> None:
        entry = AdminEntry(
            id=uuid7(), system="*", ts=dt.datetime.now(dt.UTC), actor=who.name, action=action, details=details
        )
        self.ingestor.append([_checked(entry)])


def _checked(entry: Entry) -> Entry:
    """An entry the server made from request values, validated as any read will decode it.

    Structs are not validated when built; an over-long system or purpose stored in an access entry
    would make every later read of the trail fail. Refused here, it fails this request (422) alone.
    """
    try:
        return _entry_decoder.decode(msgspec.json.encode(entry))
    except msgspec.ValidationError as exc:
        raise RecordInvalid(f"the access trail cannot keep this request: {exc}") from None


_entry_decoder = msgspec.json.Decoder(Entry)
