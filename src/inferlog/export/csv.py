"""CSV: one row per entry in the flat :data:`~inferlog.export.base.COLUMNS`, with a header row.

Empty cells are absent values; JSON columns hold JSON text; times are UTC ``...Z`` with microseconds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from inferlog.export.base import COLUMNS, TIME_COLUMNS, Destination, flat_row, format_time, open_destination
from inferlog.record.model import StoredEntry


class CSVExporter:
    """Comma-separated values (RFC 4180, UTF-8, ``\\r\\n`` line ends) for spreadsheets and ``COPY``."""

    name = "csv"
    suffix = ".csv"
    streams = True

    def write(self, entries: Iterable[StoredEntry], destination: Destination) -> int:
        count = 0
        with open_destination(destination) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
            try:
                writer = csv.writer(text)
                writer.writerow(COLUMNS)
                for stored in entries:
                    row = flat_row(stored)
                    for name in TIME_COLUMNS:
                        row[name] = format_time(row[name])
                    writer.writerow([_cell(row[name]) for name in COLUMNS])
                    count += 1
                text.flush()
            finally:
                text.detach()  # leave the underlying stream open for its owner
        return count


def _cell(value: object) -> object:
    return "" if value is None else value
