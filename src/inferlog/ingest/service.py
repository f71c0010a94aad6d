"""The Ingestor: pipeline + store.append, the only way entries enter a store."""

from __future__ import annotations

from collections.abc import Sequence

from inferlog.pipeline import Pipeline
from inferlog.record.model import Entry
from inferlog.store.base import AppendResult
from inferlog.store.protocols import EntryWriter


class Ingestor:
    """Prepares entries (processors, canonical bytes, leaf) and appends them in one batch."""

    def __init__(self, store: EntryWriter, pipeline: Pipeline | None = None) -> None:
        self.store = store
        self.pipeline = pipeline or Pipeline()

    def append(self, entries: Sequence[Entry]) -> list[AppendResult]:
        """Append a batch; all of it or, on error, none of it."""
        return self.store.append(self.pipeline.prepare_all(entries))
