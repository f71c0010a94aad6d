"""The lake in Apache Spark (local mode), the engine a data team scales to: the same rows as DuckDB and pyarrow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferlog.export.lake import export_to_lake
from inferlog.store import open_store
from tests.export.lake_read import duckdb_rows, expected_rows, log_entries, pyarrow_rows, spark_rows
from tests.export.test_lake import append, entries

pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning",  # pyspark's own import-time notice
)
KEYS = ["system", "date", "model"]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the run (it takes seconds to start): one core, no UI, UTC, and
    partition columns read as text, as docs/data-dictionary.md says to read a lake."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("inferlog-lake-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_duckdb_and_pyarrow_read_the_same_rows(spark: Any, tmp_path: Path) -> None:
    """After two incremental runs, Spark's spark.read.parquet(dir), DuckDB and pyarrow.dataset return the
    log's entries exactly: same ids, seqs and column values, awkward system and model names decoded."""
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    lake = tmp_path / "lake"
    append(store, entries(30))
    export_to_lake(store, lake, partition_by=KEYS, chunk_rows=11)
    append(store, entries(12, start=30))
    export_to_lake(store, lake)
    wanted = expected_rows(log_entries(store))
    store.close()
    from_spark = spark_rows(spark, lake)
    assert from_spark == wanted
    assert from_spark == duckdb_rows(lake, KEYS) == pyarrow_rows(lake, KEYS)
    assert len({row["id"] for row in from_spark}) == len(wanted) == 51
