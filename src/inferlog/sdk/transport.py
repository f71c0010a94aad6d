"""Transports: where the shipper sends batches of entries. One small protocol, several homes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from inferlog.ingest.service import Ingestor
from inferlog.record.model import Entry
from inferlog.store.base import AppendResult
from inferlog.store.protocols import EntrySink


class Transport(Protocol):
    """Delivers entries durably; returns one result per entry, in order, or raises to retry later.

    ``status`` is ``new``/``duplicate`` (delivered), ``conflict`` (the id exists with other content),
    or ``invalid`` (refused; ``reason`` says why). Raising means nothing was delivered.
    """

    def send(self, batch: Sequence[Entry]) -> list[AppendResult]: ...

    def close(self) -> None: ...


class StoreTransport:
    """Appends straight into a Store in this process (the embedded mode)."""

    def __init__(self, store: EntrySink, ingestor: Ingestor | None = None) -> None:
        self.store = store
        self.ingestor = ingestor or Ingestor(store)

    def send(self, batch: Sequence[Entry]) -> list[AppendResult]:
        return self.ingestor.append_each(batch)

    def send_checked(self, batch: Sequence[Entry]) -> list[AppendResult]:
        """:meth:`send` for entries the shipper ran through ``check_entry`` as it decoded them: the
        pipeline does not check them a second time (it was a tenth of the shipper's time)."""
        return self.ingestor.append_each(batch, checked=True)

    def close(self) -> None:
        self.store.close()


class CapturingTransport:
    """Keeps what it is sent in memory: for testing code that records inferences."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def send(self, batch: Sequence[Entry]) -> list[AppendResult]:
        results = []
        with self._lock:
            for entry in batch:
                if entry.id in self._ids:
                    results.append(AppendResult(entry.id, None, "duplicate"))
                    continue
                self._ids.add(entry.id)
                self.entries.append(entry)
                results.append(AppendResult(entry.id, len(self.entries), "new"))
        return results

    def close(self) -> None:
        pass
