"""The Ingestor: pipeline + store.append, the only way entries enter a store."""

from __future__ import annotations

from collections.abc import Sequence

from inferlog.errors import RecordInvalid
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

    def append_each(self, entries: Sequence[Entry], *, checked: bool = False) -> list[AppendResult]:
        """Append a batch, refusing only the entries the pipeline refuses (status ``invalid``, with the reason).

        One result per entry, in order: for producers that report per item (OTLP's partial success).
        ``checked``: every entry already passed :func:`~inferlog.record.validate.check_entry`.
        """
        prepared = []
        refused: dict[int, AppendResult] = {}
        for index, entry in enumerate(entries):
            try:
                prepared.append(self.pipeline.prepare(entry, checked=checked))
            except RecordInvalid as exc:
                refused[index] = AppendResult(entry.id, None, "invalid", str(exc))
        appended = iter(self.store.append(prepared) if prepared else [])
        return [refused[i] if i in refused else next(appended) for i in range(len(entries))]
