"""Reading a lake back the way a data team would, with DuckDB, pyarrow.dataset and Spark, into plain rows.

Every reader gets the partition columns as text (the lake's documented way to read it: engines
would otherwise guess a type from the folder names), times as microseconds since the epoch, so the
three answers and the log's own entries compare with ``==``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from inferlog.export.base import COLUMNS, flat_row
from inferlog.export.hive import date_of
from inferlog.record.model import StoredEntry
from inferlog.store import Store
from inferlog.store.base import Query

LAKE_COLUMNS = (*COLUMNS, "date")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def expected_rows(entries: Iterable[StoredEntry]) -> list[dict[str, Any]]:
    """What the lake should hold for ``entries``: their flat rows, the date, times in microseconds."""
    out = []
    for stored in entries:
        row = flat_row(stored)
        row["date"] = date_of(stored.entry.ts)
        row["ts"], row["logged_at"] = micros(row["ts"]), micros(row["logged_at"])
        out.append(row)
    return out


def log_entries(store: Store, kinds: tuple[str, ...] = ("inference", "feedback")) -> list[StoredEntry]:
    """Every entry of these kinds in the log, in seq order."""
    out: list[StoredEntry] = []
    after = 0
    while True:
        page = store.query(Query(kinds=kinds, after=after, limit=10_000))
        out.extend(page.entries)
        if page.next_cursor is None:
            return out
        after = page.next_cursor


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({name: row.get(name) for name in LAKE_COLUMNS} for row in rows), key=lambda r: r["seq"])


def duckdb_rows(root: Path, partition_by: Iterable[str] = ("system", "date")) -> list[dict[str, Any]]:
    """The lake through DuckDB's ``read_parquet(..., hive_partitioning=true)``."""
    types = dict.fromkeys(partition_by, "VARCHAR")
    cursor = duckdb.execute(
        f"select * replace (epoch_us(ts) as ts, epoch_us(logged_at) as logged_at) from read_parquet("
        f"'{root}/**/*.parquet', hive_partitioning=true, hive_types={types})"
    )
    values = cursor.fetchall()
    names = [column[0] for column in cursor.description or ()]
    return _ordered([dict(zip(names, row, strict=True)) for row in values])


def pyarrow_rows(root: Path, partition_by: Iterable[str]) -> list[dict[str, Any]]:
    """The lake through ``pyarrow.dataset`` with Hive partitioning (partition columns as strings)."""
    partitioning = ds.partitioning(pa.schema([(key, pa.string()) for key in partition_by]), flavor="hive")
    table = ds.dataset(root, format="parquet", partitioning=partitioning).to_table()
    rows = table.to_pylist()
    for row in rows:
        row["ts"], row["logged_at"] = micros(row["ts"]), micros(row["logged_at"])
    return _ordered(rows)


def spark_rows(spark: Any, root: Path) -> list[dict[str, Any]]:
    """The lake through Spark's ``spark.read.parquet(dir)`` (partition type inference off)."""
    from pyspark.sql import functions

    frame = spark.read.parquet(str(root))
    for column in ("ts", "logged_at"):
        frame = frame.withColumn(column, functions.unix_micros(frame[column]))
    return _ordered([row.asDict() for row in frame.collect()])
