"""Benchmark 7: exporting to the lake, records/s.

N ~1 KB records (the privacy bench's shape: 30 float features, 3 systems, 2 models, spread over
7 UTC days) are appended to a SQLite log once; each round then exports the whole log to a fresh
lake with ``export_to_lake`` (read from the store, flat rows, Parquet zstd, fsync + rename per file,
cursor commits) partitioned by system,date and by system,date,model, and into one flat Parquet file
with ``ParquetExporter`` for comparison. Then M more records are appended and an incremental run
exports only those. Rates are records written / wall time, rounds alternate the variants.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common import load_average, machine_info, rate_row, table

from inferlog.export.lake import export_to_lake
from inferlog.export.parquet import ParquetExporter
from inferlog.ingest import Ingestor
from inferlog.query import iter_entries
from inferlog.record import Model
from inferlog.record.model import Entry
from inferlog.store.base import MAX_PAGE, Query
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from integrity import BATCH

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
SYSTEMS = ("credit", "fraud", "support")
MODELS = (Model("scorer", "3"), Model("ranker", "1"))


@dataclass
class LakeResults:
    n: int
    increment: int
    rates: dict[str, list[float]]
    facts: dict[str, str]


def _records(n: int, start: int = 0) -> list[Entry]:
    span = 7 * 24 * 3600
    return [
        make_record(
            system=SYSTEMS[k % 3],
            model=MODELS[k % 2],
            ts=START + dt.timedelta(seconds=k * span // max(n, 1)),
            input={f"f{i}": 0.1 * i + k * 1e-3 for i in range(30)},
            output={"probability": (k % 100) / 100},
            attributes={"endpoint": "/v1/score", "region": "eu-west-1", "tokens": k % 512},
        )
        for k in range(start, start + n)
    ]


def _append(store: SQLiteStore, records: list[Entry]) -> None:
    ingestor = Ingestor(store)
    for i in range(0, len(records), BATCH):
        ingestor.append(records[i : i + BATCH])


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = action()
    return time.perf_counter() - start, rows


def run(tmp: Path, *, n: int, rounds: int, increment: int) -> LakeResults:
    tmp = tmp / "lake"
    tmp.mkdir()
    store = SQLiteStore(f"sqlite:///{tmp / 'log.db'}")
    _append(store, _records(n))
    rates: dict[str, list[float]] = {}

    def add(name: str, seconds: float, rows: int) -> None:
        rates.setdefault(name, []).append(rows / seconds)

    def to_lake(target: Path, keys: tuple[str, ...] | None = None) -> Callable[[], int]:
        return lambda: export_to_lake(store, target, partition_by=keys).rows

    def to_file(target: Path) -> Callable[[], int]:
        return lambda: ParquetExporter().write(iter_entries(store, Query(limit=MAX_PAGE)), target)

    for r in range(rounds):
        for keys in (("system", "date"), ("system", "date", "model")):
            target = tmp / f"lake-{'-'.join(keys)}-{r}"
            add(f"`export_to_lake`, whole log, by {','.join(keys)}", *_timed(to_lake(target, keys)))
        add("`ParquetExporter`, whole log, one file (reference)", *_timed(to_file(tmp / f"flat-{r}.parquet")))
    _append(store, _records(increment, start=n))
    for r in range(rounds):
        name = f"`export_to_lake`, incremental run of {increment:,} new"
        add(name, *_timed(to_lake(tmp / f"lake-system-date-{r}")))
    store.close()
    facts = machine_info(tmp)
    facts["load at end"] = load_average()
    return LakeResults(n, increment, rates, facts)


def section(res: LakeResults) -> str:
    rows = [rate_row(name, values) for name, values in res.rates.items()]
    return "\n".join(
        [
            "## 8. Exporting to the lake",
            "",
            f"{res.n:,} ~1 KB records (3 systems, 2 models, 7 UTC days) in a SQLite log, exported whole to a fresh "
            "Hive-partitioned lake per round (`export_to_lake`: store pages, flat rows, Parquet zstd, a synced "
            "temporary file renamed per partition, the cursor committed after them), and for comparison to one "
            f"flat Parquet file; then {res.increment:,} more records appended and exported by an incremental run. "
            "Records/s.",
            "",
            f"Measured {res.facts['date']} on {res.facts['CPU']} ({res.facts['cores']} cores), "
            f"{res.facts['Python']}; load average at the end {res.facts['load at end']}.",
            "",
            table(["variant", "median", "best", "rounds"], rows),
            "",
        ]
    )
