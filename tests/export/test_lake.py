"""The lake: Hive-partitioned Parquet that each run extends, read back identically by DuckDB and pyarrow."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferlog.errors import UsageError
from inferlog.export.base import COLUMNS
from inferlog.export.durable import exclusive
from inferlog.export.hive import NAME_MAX, escape, partition_path, unescape
from inferlog.export.lake import Lake, export_to_lake, parse_partition_by
from inferlog.ingest import Ingestor
from inferlog.ingest.audit import record_read
from inferlog.record import FeedbackEntry, Model, uuid7
from inferlog.record.model import Entry
from inferlog.store import Store, open_store
from inferlog.store.base import Query
from inferlog.testing import make_record
from tests.export.lake_read import duckdb_rows, expected_rows, log_entries, pyarrow_rows

DAY = dt.datetime(2026, 3, 4, 23, 59, 59, 999999, tzinfo=dt.UTC)
# Names a folder cannot hold as they are, one that looks like a number, and non-ASCII text.
SYSTEMS = ('credit/eu=1 %20 "q" #?*', "123", "ünïcödé-système")
MODELS = (Model("risk:v2[beta]", "1.0"), Model("plain", "7"))


def entries(count: int, start: int = 0) -> list[Entry]:
    """``count`` inferences over the awkward systems and models, across two UTC days, each with feedback every 5th."""
    out: list[Entry] = []
    for k in range(start, start + count):
        record = make_record(
            system=SYSTEMS[k % len(SYSTEMS)], model=MODELS[k % len(MODELS)],
            ts=DAY + dt.timedelta(microseconds=k), input={"k": k, "text": f"row {k}"}, subject=f"s-{k % 4}",
            attributes={"n": k},
        )  # fmt: skip
        out.append(record)
        if k % 5 == 0:
            out.append(
                FeedbackEntry(id=uuid7(), system=record.system, ts=record.ts, inference_id=record.id, label=k)
            )
    return out


def append(store: Store, batch: list[Entry]) -> None:
    results = Ingestor(store).append(batch)
    assert {r.status for r in results} == {"new"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty log on SQLite, and on a fresh PostgreSQL database."""
    url = (
        f"sqlite:///{tmp_path / 'log.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    handle = open_store(url)
    yield handle
    handle.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite log of 30 inferences and their feedback."""
    handle = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    append(handle, entries(30))
    yield handle
    handle.close()


def parts(root: Path) -> dict[str, bytes]:
    """Every data file of the lake, by path relative to it, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


# -- round trip and incremental runs -----------------------------------------------------------


def test_incremental_runs_add_files_and_read_back_identically(store: Store, tmp_path: Path) -> None:
    """Two runs with entries logged between them: the second only adds files, and DuckDB and pyarrow
    both read every matching entry exactly once, column for column, with the awkward partition values intact."""
    lake = tmp_path / "lake"
    append(store, entries(40))
    first = export_to_lake(store, lake, partition_by=["system", "date", "model"], chunk_rows=17)
    assert (first.started_after, first.cursor) == (0, store.size())
    before = parts(lake)
    append(store, entries(25, start=40))
    second = export_to_lake(store, lake)  # the lake remembers how it is partitioned
    after = parts(lake)
    assert {name: after[name] for name in before} == before  # nothing rewritten
    assert len(after) == len(before) + second.files
    assert second.started_after == first.cursor
    wanted = expected_rows(log_entries(store))
    assert first.rows + second.rows == len(wanted) == 78
    assert duckdb_rows(lake, ["system", "date", "model"]) == wanted
    assert pyarrow_rows(lake, ["system", "date", "model"]) == wanted
    assert {row["system"] for row in wanted} == set(SYSTEMS)
    assert {row["model"] for row in wanted} == {"risk:v2[beta]", "plain", None}  # feedback has no model
    assert {row["date"] for row in wanted} == {"2026-03-04", "2026-03-05"}


def test_a_run_with_nothing_new_adds_nothing(sqlite_store: Store, tmp_path: Path) -> None:
    """Rerunning at once writes no file and keeps the cursor; the files' names say their seq range."""
    lake = tmp_path / "lake"
    export_to_lake(sqlite_store, lake)
    before = parts(lake)
    again = export_to_lake(sqlite_store, lake)
    assert (again.rows, again.files, again.cursor) == (0, 0, sqlite_store.size())
    assert parts(lake) == before
    for name in before:
        first, last = (int(n) for n in Path(name).stem.removeprefix("part-").split("-"))
        seqs = pq.read_table(lake / name).column("seq").to_pylist()
        assert (seqs[0], seqs[-1], seqs == sorted(seqs)) == (first, last, True)


def test_files_hold_the_flat_columns_less_the_partition_ones(sqlite_store: Store, tmp_path: Path) -> None:
    """Partitioned by system and date, a file has every flat column but system (date is not one), typed as the flat export."""
    export_to_lake(sqlite_store, tmp_path / "lake")
    name = next(iter(parts(tmp_path / "lake")))
    schema = pq.read_schema(tmp_path / "lake" / name)
    assert schema.names == [c for c in COLUMNS if c != "system"]
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert schema.metadata[b"inferlog.export"] == b"lake-v1"
    folders = {str(Path(name).parent) for name in parts(tmp_path / "lake")}
    assert "system=credit%2Feu%3D1 %2520 %22q%22 %23%3F%2A/date=2026-03-04" in folders


def test_kinds_default_to_payloads_and_a_kind_can_be_asked_for(sqlite_store: Store, tmp_path: Path) -> None:
    """Access and admin entries stay out unless asked for: a lake of access entries holds only those."""
    record_read(
        Ingestor(sqlite_store),
        actor="t",
        action="export",
        purpose="test",
        scope=None,
        query={},
        counts={"x": 1},
    )
    export_to_lake(sqlite_store, tmp_path / "payloads")
    export_to_lake(sqlite_store, tmp_path / "audit", query=Query(kind="access"))
    assert {r["kind"] for r in duckdb_rows(tmp_path / "payloads")} == {"inference", "feedback"}
    assert {r["kind"] for r in duckdb_rows(tmp_path / "audit")} == {"access"}


# -- exactly once across crashes ------------------------------------------------------------------

_EXPORT = """
import sys
from inferlog.export.lake import export_to_lake
from inferlog.store import open_store
export_to_lake(open_store(sys.argv[1]), sys.argv[2], chunk_rows=97, batch_rows=31)
"""


def _cursor(lake: Path) -> int:
    try:
        return int(json.loads((lake / "_inferlog" / "cursor.json").read_bytes())["cursor"])
    except (FileNotFoundError, ValueError):
        return 0


def test_sigkill_mid_run_then_rerun_gives_every_entry_exactly_once(tmp_path: Path) -> None:
    """An export killed (SIGKILL) three times part way, then run to the end: DuckDB counts every entry
    once and finds no id twice, and the dead runs' files past the cursor are gone."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = open_store(url)
    for start in range(0, 6000, 1000):
        append(store, entries(1000, start=start))
    head = store.size()
    lake = tmp_path / "lake"
    killed_mid_run = 0
    for _ in range(3):
        seen = _cursor(lake)
        process = subprocess.Popen([sys.executable, "-c", _EXPORT, url, str(lake)])
        while _cursor(lake) == seen and process.poll() is None:
            time.sleep(0.001)  # wait for one more commit, then kill in the middle of the next
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        killed_mid_run += _cursor(lake) < head
    assert killed_mid_run >= 1  # at least one kill landed before the end
    final = export_to_lake(store, lake)
    assert final.cursor == head
    ids = [row["id"] for row in duckdb_rows(lake)]
    wanted = [stored.id for stored in log_entries(store)]
    assert len(ids) == len(set(ids)) == len(wanted) == 7200
    assert sorted(ids) == sorted(wanted)
    counted = duckdb.execute(f"select count(*), count(distinct id) from read_parquet('{lake}/**/*.parquet')")
    assert counted.fetchall() == [(7200, 7200)]
    assert not list(lake.rglob(".part-*"))
    assert not (lake / "_inferlog" / "pending").exists()
    store.close()


def test_files_a_dead_run_renamed_past_the_cursor_are_undone(sqlite_store: Store, tmp_path: Path) -> None:
    """A file renamed after the last commit (the run died before moving the cursor) and a temporary file are
    deleted by the next run before it writes those entries again: no row twice."""
    lake, other = tmp_path / "lake", tmp_path / "other"
    export_to_lake(sqlite_store, lake)
    export_to_lake(sqlite_store, other)
    cursor = _cursor(lake)
    append(sqlite_store, entries(10, start=100))
    export_to_lake(sqlite_store, other)  # the new rows, as a run that died before its cursor wrote them
    ghost = max(other.rglob("part-*.parquet"), key=lambda p: p.name)
    folder = ghost.parent
    target = lake / folder.relative_to(tmp_path / "other")
    target.mkdir(parents=True, exist_ok=True)
    (target / ghost.name).write_bytes(ghost.read_bytes())
    (target / ".part-99-1.tmp").write_bytes(b"half a file")
    (lake / "_inferlog" / "pending").write_text(f"{cursor}\n")
    assert int(ghost.name.split("-")[1]) > cursor
    export_to_lake(sqlite_store, lake)
    ids = [row["id"] for row in duckdb_rows(lake)]
    assert len(ids) == len(set(ids)) == len(log_entries(sqlite_store))
    assert not (target / ".part-99-1.tmp").exists()


def test_a_second_writer_is_refused(sqlite_store: Store, tmp_path: Path) -> None:
    """While one export holds the lake's lock, another is refused at once, naming the lake."""
    lake = tmp_path / "lake"
    export_to_lake(sqlite_store, lake)
    with exclusive(lake / "_inferlog" / "lock", "x"), pytest.raises(UsageError, match="another export"):
        export_to_lake(sqlite_store, lake)


# -- what a lake is, and bad input --------------------------------------------------------------


def test_a_lake_made_one_way_refuses_another(sqlite_store: Store, tmp_path: Path) -> None:
    """Other partition keys, other filters or revealing where it was sealed: refused, saying how it was made."""
    lake = tmp_path / "lake"
    export_to_lake(sqlite_store, lake, partition_by=["date"])
    with pytest.raises(UsageError, match="partitioned by date, not system,date"):
        export_to_lake(sqlite_store, lake, partition_by=["system", "date"])
    with pytest.raises(UsageError, match=r"holds kinds=inference\|feedback, not kind=access"):
        export_to_lake(sqlite_store, lake, query=Query(kind="access"))
    with pytest.raises(UsageError, match="kept sealed"):
        export_to_lake(sqlite_store, lake, reveal=lambda page: page)
    assert Lake(lake).state() is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [("sys", "cannot partition by 'sys'"), ("system,system", "repeat"), ("", "cannot partition by nothing")],
)
def test_bad_partition_keys(text: str, message: str) -> None:
    """Unknown, repeated or missing partition keys are a UsageError naming the choices or the problem."""
    with pytest.raises(UsageError, match=message):
        parse_partition_by(text)


def test_folders_that_are_not_a_lake_are_refused(sqlite_store: Store, tmp_path: Path) -> None:
    """A file, a folder holding other files, a missing parent, a time window: each refused before anything is written."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    for target, message in [
        (tmp_path / "file", "is a file"),
        (tmp_path / "full", "not an inferlog lake"),
        (tmp_path / "no" / "lake", "create it first"),
    ]:
        with pytest.raises(UsageError, match=message):
            export_to_lake(sqlite_store, target)
    with pytest.raises(UsageError, match="by seq, not by time"):
        export_to_lake(sqlite_store, tmp_path / "t", query=Query(since=DAY))
    assert not (tmp_path / "full" / "_inferlog").exists()
    assert not (tmp_path / "t").exists()


def test_a_partition_value_too_long_for_a_folder_is_marked_not_refused() -> None:
    """A value whose folder name would pass 255 bytes is cut to fit and marked with its hash: distinct values stay apart."""
    assert partition_path(["system"], ["é" * 100]) == "system=" + "é" * 100  # fits: as it is
    long_a, long_b = "/" * 100, "/" * 99 + "x"
    folder_a, folder_b = partition_path(["system"], [long_a]), partition_path(["system"], [long_b])
    assert folder_a != folder_b
    for folder, value in ((folder_a, long_a), (folder_b, long_b)):
        assert len(folder.encode()) <= NAME_MAX
        assert folder.endswith("~" + hashlib.sha256(value.encode()).hexdigest()[:16])
    assert len(partition_path(["model"], ["😀" * 256]).encode()) <= NAME_MAX


def test_a_lake_with_long_and_null_marker_values_keeps_going(tmp_path: Path) -> None:
    """A model named too long for a folder, or ``__HIVE_DEFAULT_PARTITION__``, does not stop the lake, and
    neither reads back as null; a feedback entry (no model) still does."""
    handle = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    long_name = "/" * 256
    batch: list[Entry] = [
        make_record(system="s", model=Model(long_name, "1"), ts=DAY),
        make_record(system="s", model=Model("__HIVE_DEFAULT_PARTITION__", "1"), ts=DAY),
    ]
    batch.append(FeedbackEntry(id=uuid7(), system="s", ts=DAY, inference_id=batch[0].id, label=1))
    append(handle, batch)
    run = export_to_lake(handle, tmp_path / "lake", partition_by=["model"])
    assert run.rows == 3
    append(handle, [make_record(system="s", model=Model("plain", "1"), ts=DAY)])
    assert export_to_lake(handle, tmp_path / "lake").rows == 1  # the lake goes on
    handle.close()
    models = sorted(str(row["model"]) for row in pyarrow_rows(tmp_path / "lake", ["model"]))
    assert models == sorted(
        [
            "None",
            "plain",
            "__HIVE_DEFAULT_PARTITION__~" + hashlib.sha256(b"__HIVE_DEFAULT_PARTITION__").hexdigest()[:16],
            segment_value(partition_path(["model"], [long_name])),
        ]
    )


def segment_value(folder: str) -> str:
    return unescape(folder.partition("=")[2])


@pytest.mark.parametrize(
    "damage", [b"{not json", b"\xff\xfe", b"[]", b'{"format": "inferlog-lake-v1"}', b"null"]
)
def test_a_damaged_cursor_is_one_clear_error(sqlite_store: Store, tmp_path: Path, damage: bytes) -> None:
    """A cursor.json that is not JSON, or not a cursor, is a UsageError naming the file, never a traceback."""
    lake = tmp_path / "lake"
    export_to_lake(sqlite_store, lake)
    cursor = lake / "_inferlog" / "cursor.json"
    cursor.write_bytes(
        damage.replace(b"inferlog-lake-v1", json.loads(cursor.read_bytes())["format"].encode())
    )
    with pytest.raises(UsageError, match=r"cursor\.json"):
        Lake(lake).state()
    with pytest.raises(UsageError, match=r"cursor\.json"):
        export_to_lake(sqlite_store, lake)


@given(st.text(min_size=1))
def test_escaping_round_trips_to_one_segment(value: str) -> None:
    """Any text escapes to a segment without '/', '=' or control characters that unescapes to itself."""
    escaped = escape(value)
    assert "/" not in escaped
    assert "=" not in escaped
    assert not any(ord(c) < 0x20 for c in escaped)
    assert unescape(escaped) == value
