"""Parquet: the flat columns, typed, for DuckDB, pandas and Spark.

``seq`` is int64, ``ts``/``logged_at`` are ``timestamp[us, tz=UTC]``, ``latency_ms`` float64, the rest
strings (JSON columns as JSON text). Rows are written in row groups of ``batch_rows`` as they are
read, so memory stays flat however large the export. Needs pyarrow (``inferlog[parquet]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inferlog.errors import UsageError
from inferlog.export.base import COLUMNS, Destination, flat_row, open_destination
from inferlog.record.model import StoredEntry


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("Parquet export needs pyarrow: install inferlog[parquet]") from None
    return pyarrow


def schema() -> Any:
    """The Parquet schema of an export (a ``pyarrow.Schema``)."""
    pa = _pyarrow()
    types = {
        "seq": pa.int64(),
        "ts": pa.timestamp("us", tz="UTC"),
        "logged_at": pa.timestamp("us", tz="UTC"),
        "latency_ms": pa.float64(),
    }
    return pa.schema(
        [
            pa.field(name, types.get(name, pa.string()), nullable=name not in ("seq", "id"))
            for name in COLUMNS
        ],
        metadata={"inferlog.export": "flat-v1"},
    )


class ParquetExporter:
    """Apache Parquet (``.parquet``), zstd-compressed, one row group per ``batch_rows`` entries."""

    name = "parquet"
    suffix = ".parquet"
    streams = False

    def __init__(self, batch_rows: int = 50_000, compression: str = "zstd") -> None:
        if batch_rows < 1:
            raise UsageError("batch_rows must be at least 1")
        self.batch_rows = batch_rows
        self.compression = compression

    def write(self, entries: Iterable[StoredEntry], destination: Destination) -> int:
        pa = _pyarrow()
        arrow_schema = schema()
        count = 0
        with open_destination(destination) as stream:
            writer = pa.parquet.ParquetWriter(stream, arrow_schema, compression=self.compression)
            try:
                rows: list[dict[str, Any]] = []
                for stored in entries:
                    rows.append(flat_row(stored))
                    if len(rows) >= self.batch_rows:
                        writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=arrow_schema))
                        count += len(rows)
                        rows = []
                if rows:
                    writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=arrow_schema))
                    count += len(rows)
            finally:
                writer.close()
        return count
