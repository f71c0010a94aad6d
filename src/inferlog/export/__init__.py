"""Exporting the log: one :class:`Exporter` per format, found by name.

Built-in formats are listed in :data:`EXPORTERS`; a third party registers its format in the
``inferlog.exporters`` entry-point group, found through the same lookup (see :mod:`inferlog.plugins`). Exporters take any iterable of stored entries
(see :func:`inferlog.query.iter_entries`), so they never hold the log in memory.
"""

from __future__ import annotations

from inferlog import plugins
from inferlog.errors import UsageError
from inferlog.export.base import COLUMNS, Destination, Exporter, flat_row

__all__ = ["COLUMNS", "EXPORTERS", "Destination", "Exporter", "exporters", "flat_row", "get_exporter"]

EXPORTERS = plugins.Registry(
    "inferlog.exporters",
    {
        "jsonl": "inferlog.export.jsonl:JSONLExporter",
        "csv": "inferlog.export.csv:CSVExporter",
        "parquet": "inferlog.export.parquet:ParquetExporter",
    },
)


def exporters() -> dict[str, str]:
    """Format name -> ``"module:Class"`` for every known exporter, built-ins first."""
    return EXPORTERS.known()


def get_exporter(name: str) -> Exporter:
    """A new exporter for the format ``name``; a :class:`UsageError` naming the known formats if none."""

    def unknown(known: list[str]) -> UsageError:
        return UsageError(f"no exporter for format {name!r}: known formats are {', '.join(known)}")

    exporter: Exporter = EXPORTERS.load(name, unknown)()
    return exporter
