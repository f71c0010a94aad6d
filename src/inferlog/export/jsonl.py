"""JSON Lines: one entry per line, whole, as ``StoredEntry.to_dict()`` — what ``inferlog import`` reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from inferlog.export.base import Destination, open_destination
from inferlog.record.model import InferenceRecord, StoredEntry

_encode = msgspec.json.encode


def export_dict(stored: StoredEntry) -> dict[str, Any]:
    """``stored.to_dict()`` with ``source`` always spelled out.

    ``to_dict`` leaves out fields at their default, and ``source`` is the one default an importer
    fills differently (``import``); writing it keeps a re-imported entry byte-identical, so
    importing an export into the same log finds duplicates, not conflicts.
    """
    data = stored.to_dict()
    if isinstance(stored.entry, InferenceRecord):
        data["source"] = stored.entry.source
    return data


def to_line(stored: StoredEntry) -> bytes:
    """One entry as one JSON line, newline included."""
    return _encode(export_dict(stored)) + b"\n"


class JSONLExporter:
    """Newline-delimited JSON (``.jsonl``), lossless; re-imports with ``inferlog import``."""

    name = "jsonl"
    suffix = ".jsonl"
    streams = True

    def write(self, entries: Iterable[StoredEntry], destination: Destination) -> int:
        count = 0
        with open_destination(destination) as stream:
            for stored in entries:
                stream.write(to_line(stored))
                count += 1
            stream.flush()
        return count
