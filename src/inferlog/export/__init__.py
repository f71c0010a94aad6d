"""Exporting the log: one :class:`Exporter` per format, found by name.

Built-in formats come in by the same door as a third party's: a ``"module:Class"`` target, here or
in the ``inferlog.exporters`` entry-point group. Exporters take any iterable of stored entries
(see :func:`inferlog.query.iter_entries`), so they never hold the log in memory.
"""

from __future__ import annotations

from inferlog import plugins
from inferlog.errors import UsageError
from inferlog.export.base import COLUMNS, Destination, Exporter, flat_row

__all__ = ["COLUMNS", "Destination", "Exporter", "exporters", "flat_row", "get_exporter"]

_BUILTIN = {
    "jsonl": "inferlog.export.jsonl:JSONLExporter",
    "csv": "inferlog.export.csv:CSVExporter",
    "parquet": "inferlog.export.parquet:ParquetExporter",
}


def exporters() -> dict[str, str]:
    """Format name -> ``"module:Class"`` for every known exporter, built-ins first."""
    return plugins.known("inferlog.exporters", _BUILTIN)


def get_exporter(name: str) -> Exporter:
    """A new exporter for the format ``name``; a :class:`UsageError` naming the known formats if none."""
    known = exporters()
    target = known.get(name)
    if target is None:
        raise UsageError(f"no exporter for format {name!r}: known formats are {', '.join(known)}")
    exporter: Exporter = plugins.load(target)()
    return exporter
