"""Exports read back: JSONL re-imports to the same entries, CSV has its columns, Parquet is typed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import inferlog
from inferlog.errors import UsageError
from inferlog.export import COLUMNS, exporters, get_exporter
from inferlog.export.parquet import ParquetExporter
from inferlog.ingest import Ingestor
from inferlog.query import iter_entries
from inferlog.record.model import StoredEntry
from inferlog.record.validate import to_entry
from inferlog.store import Store, open_store
from inferlog.store.base import Query

TS = dt.datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A log of 5 inferences (two models, one failure, odd values) and one feedback, read back."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="credit", spool_dir=tmp_path / "spool") as log:
        model = inferlog.Model("credit-risk", "1.0", digest="sha256:" + "ab" * 32)
        first = log.record(
            model=model, input={"income": 52000.5, "tags": ["a", "b"], "nested": {"x": None}},
            output={"score": 0.81}, latency_ms=12.5, parameters={"threshold": 0.5},
            attributes={"region": "eu", "tokens": 42}, subject="subj-1", actor="svc", request_id="req-1",
            trace_id="trace-1", span_id="span-1", ts=TS,
        )  # fmt: skip
        log.record(model=model, input='ünïcode, "quotes"\nand a newline', output=[1, 2.5, None])
        log.record(model=model, input=[2**60], error=ValueError("broken row"))
        for i in range(2):
            log.record(model=inferlog.Model("fraud-net", "7"), input=i, output=bool(i))
        log.feedback(first, label=1, override={"score": 0.1}, comment="human said no", actor="reviewer-7")
    handle = open_store(url)
    yield handle
    handle.close()


def everything(store: Store) -> list[StoredEntry]:
    return list(iter_entries(store, Query(limit=2)))


def export(store: Store, fmt: str, path: Path) -> int:
    return get_exporter(fmt).write(iter_entries(store, Query(limit=2)), path)


# -- JSONL ----------------------------------------------------------------------------------------


def test_jsonl_round_trip_into_a_new_log_gives_equal_entries(store: Store, tmp_path: Path) -> None:
    """Every JSONL line validates with to_entry and, appended to a new log, equals the original byte for byte."""
    path = tmp_path / "out.jsonl"
    assert export(store, "jsonl", path) == 6
    lines = path.read_bytes().splitlines()
    entries = [to_entry(json.loads(line), source="import", index=i) for i, line in enumerate(lines, 1)]
    copy = open_store(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        results = Ingestor(copy).append(entries)
        assert [r.status for r in results] == ["new"] * 6
        for original in everything(store):
            again = copy.get(original.id)
            assert again is not None
            assert again.entry == original.entry
            assert again.body == original.body
            assert again.seq == original.seq
    finally:
        copy.close()


def test_jsonl_reimport_into_the_same_log_is_all_duplicates(store: Store, tmp_path: Path) -> None:
    """Importing a log's own export changes nothing: every entry is a duplicate, none a conflict."""
    path = tmp_path / "out.jsonl"
    export(store, "jsonl", path)
    entries = [to_entry(json.loads(line), source="import") for line in path.read_bytes().splitlines()]
    assert {r.status for r in Ingestor(store).append(entries)} == {"duplicate"}
    assert store.size() == 6


def test_jsonl_writes_to_a_stream(store: Store) -> None:
    """An exporter also writes to an open binary stream, leaving it open."""
    buffer = io.BytesIO()
    assert get_exporter("jsonl").write(everything(store), buffer) == 6
    assert not buffer.closed
    assert [json.loads(line)["seq"] for line in buffer.getvalue().splitlines()] == [1, 2, 3, 4, 5, 6]


# -- CSV ------------------------------------------------------------------------------------------


def test_csv_has_the_documented_columns_and_values(store: Store, tmp_path: Path) -> None:
    """The CSV header is COLUMNS, times are UTC with Z, JSON columns parse back, absent values are empty."""
    path = tmp_path / "out.csv"
    export(store, "csv", path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(COLUMNS)
    assert COLUMNS[:21] == (
        "seq", "id", "kind", "system", "ts", "logged_at", "model", "version", "status", "latency_ms",
        "subject", "actor", "request_id", "trace_id", "inference_id",
        "input", "output", "parameters", "attributes", "error", "label",
    )  # fmt: skip
    assert len(rows) == 6
    first, text, failed, feedback = rows[0], rows[1], rows[2], rows[5]
    assert (first["seq"], first["kind"], first["system"]) == ("1", "inference", "credit")
    assert (first["model"], first["version"], first["status"]) == ("credit-risk", "1.0", "ok")
    assert first["ts"] == "2026-03-04T05:06:07.891011Z"
    assert float(first["latency_ms"]) == 12.5
    assert (first["subject"], first["actor"], first["request_id"], first["trace_id"]) == (
        "subj-1", "svc", "req-1", "trace-1",
    )  # fmt: skip
    assert json.loads(first["input"]) == {"income": 52000.5, "tags": ["a", "b"], "nested": {"x": None}}
    assert json.loads(first["parameters"]) == {"threshold": 0.5}
    assert json.loads(first["attributes"]) == {"region": "eu", "tokens": 42}
    assert json.loads(first["extra"]) == {"span_id": "span-1", "model": {"digest": "sha256:" + "ab" * 32}}
    assert (first["error"], first["label"], first["inference_id"]) == ("", "", "")
    assert json.loads(text["input"]) == 'ünïcode, "quotes"\nand a newline'
    assert json.loads(text["output"]) == [1, 2.5, None]
    assert json.loads(failed["input"]) == [2**60]
    assert (failed["status"], json.loads(failed["error"])) == (
        "error", {"type": "ValueError", "message": "broken row"},
    )  # fmt: skip
    assert (feedback["kind"], feedback["inference_id"], feedback["actor"]) == (
        "feedback",
        first["id"],
        "reviewer-7",
    )
    assert (json.loads(feedback["label"]), json.loads(feedback["override"])) == (1, {"score": 0.1})
    assert (feedback["comment"], feedback["model"], feedback["status"]) == ("human said no", "", "")


# -- Parquet --------------------------------------------------------------------------------------


def test_parquet_columns_are_typed_for_pyarrow(store: Store, tmp_path: Path) -> None:
    """pyarrow reads int64 seq, UTC microsecond timestamps, float64 latency and JSON text columns."""
    path = tmp_path / "out.parquet"
    assert export(store, "parquet", path) == 6
    table = pq.read_table(path)
    assert table.num_rows == 6
    assert table.column_names == list(COLUMNS)
    assert table.schema.field("seq").type == pa.int64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("logged_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("latency_ms").type == pa.float64()
    assert table.schema.field("input").type == pa.string()
    rows = table.to_pylist()
    assert rows[0]["ts"] == TS
    assert rows[0]["seq"] == 1
    assert rows[0]["latency_ms"] == 12.5
    assert json.loads(rows[2]["input"]) == [2**60]
    originals = everything(store)
    assert [row["logged_at"] for row in rows] == [e.logged_at for e in originals]
    assert [row["id"] for row in rows] == [e.id for e in originals]


def test_parquet_reads_in_pandas(store: Store, tmp_path: Path) -> None:
    """pandas reads the export with int64, datetime64[us, UTC] and float64 dtypes and the right values."""
    path = tmp_path / "out.parquet"
    export(store, "parquet", path)
    frame = pd.read_parquet(path)
    assert len(frame) == 6
    assert str(frame["seq"].dtype) == "int64"
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert str(frame["latency_ms"].dtype) == "float64"
    assert frame.loc[0, "ts"] == pd.Timestamp(TS)
    counts = frame[frame["kind"] == "inference"].groupby("model").size().to_dict()
    assert counts == {"credit-risk": 3, "fraud-net": 2}


def test_parquet_reads_in_duckdb(store: Store, tmp_path: Path) -> None:
    """DuckDB counts, groups and unpacks the JSON columns of the export with plain SQL."""
    path = tmp_path / "out.parquet"
    export(store, "parquet", path)
    # The way people type it: a file name in quotes where a table would go.
    counted = duckdb.sql(f"select count(*) from '{path}'")
    assert counted is not None  # None only for a statement that answers nothing
    assert counted.fetchall() == [(6,)]
    by_status = duckdb.execute(
        "select status, count(*) from read_parquet(?) where kind = 'inference' group by status order by status",
        [str(path)],
    ).fetchall()
    assert by_status == [("error", 1), ("ok", 4)]
    region = duckdb.execute(
        "select json_extract_string(attributes, '$.region') from read_parquet(?) where seq = 1", [str(path)]
    )
    assert region.fetchall() == [("eu",)]
    types = dict(
        duckdb.execute(
            "select column_name, column_type from (describe select * from read_parquet(?))", [str(path)]
        ).fetchall()
    )
    assert (types["seq"], types["ts"], types["latency_ms"]) == (
        "BIGINT",
        "TIMESTAMP WITH TIME ZONE",
        "DOUBLE",
    )


def test_parquet_is_written_in_row_groups_of_the_batch_size(store: Store, tmp_path: Path) -> None:
    """batch_rows bounds each row group (so memory stays flat): 6 entries at 4 per group make 2 groups."""
    path = tmp_path / "out.parquet"
    assert ParquetExporter(batch_rows=4).write(everything(store), path) == 6
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 2
    assert [metadata.row_group(i).num_rows for i in range(2)] == [4, 2]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_an_empty_export_is_a_valid_empty_file(tmp_path: Path, fmt: str) -> None:
    """Exporting nothing still writes a readable file: empty JSONL, a CSV header, a Parquet schema."""
    path = tmp_path / f"empty.{fmt}"
    assert get_exporter(fmt).write([], path) == 0
    if fmt == "jsonl":
        assert path.read_bytes() == b""
    elif fmt == "csv":
        assert path.read_text().splitlines() == [",".join(COLUMNS)]
    else:
        table = pq.read_table(path)
        assert (table.num_rows, table.column_names) == (0, list(COLUMNS))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_failed_export_leaves_no_file(store: Store, tmp_path: Path, fmt: str) -> None:
    """If reading fails half way, the destination is not created and no temporary file is left."""

    def broken() -> Iterator[StoredEntry]:
        yield from everything(store)[:3]
        raise OSError("disk went away")

    path = tmp_path / "out" / f"x.{fmt}"
    path.parent.mkdir()
    with pytest.raises(OSError, match="disk went away"):
        get_exporter(fmt).write(broken(), path)
    assert list(path.parent.iterdir()) == []


def test_exporters_registry_and_unknown_names() -> None:
    """The built-in formats are registered by name, and an unknown name lists them."""
    assert list(exporters())[:3] == ["jsonl", "csv", "parquet"]
    assert [get_exporter(name).suffix for name in ("jsonl", "csv", "parquet")] == [
        ".jsonl",
        ".csv",
        ".parquet",
    ]
    with pytest.raises(UsageError, match="known formats are jsonl, csv, parquet"):
        get_exporter("xml")
