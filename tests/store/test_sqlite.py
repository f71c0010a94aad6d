"""The SQLite store: the contract suite on a real file, plus what only SQLite does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlog.errors import StoreUnavailable, UnknownStore, UsageError
from inferlog.store import open_store
from inferlog.store.sqlite import SQLiteStore, path_of
from inferlog.testing import make_record, prepare
from tests.helpers import inference
from tests.store.contract import StoreContract


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store(self, sqlite_url: str) -> Iterator[SQLiteStore]:
        store = SQLiteStore(sqlite_url)
        yield store
        store.close()


def test_pragmas_are_wal_and_full_sync(sqlite_url: str) -> None:
    """The file is in WAL mode and commits with synchronous=FULL by default."""
    store = SQLiteStore(sqlite_url)
    try:
        conn = store._reader()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_rows_cannot_be_updated_or_deleted(sqlite_url: str) -> None:
    """Triggers refuse UPDATE and DELETE of log rows; only clearing body+salt (a purge) passes."""
    store = SQLiteStore(sqlite_url)
    store.append(prepare(make_record()))
    store.close()
    conn = sqlite3.connect(path_of(sqlite_url))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM entries")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET model_version = 'forged'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET body = '{}'")
    for forged in ("subject = 'someone-else'", "body = NULL, salt = NULL, actor = 'x'", "request_id = NULL"):
        with pytest.raises(
            sqlite3.IntegrityError, match="append-only"
        ):  # identifiers: only cleared by a purge
            conn.execute(f"UPDATE entries SET {forged}")
    conn.execute("UPDATE entries SET body = NULL, salt = NULL")
    conn.commit()
    conn.close()
    store = SQLiteStore(sqlite_url)
    (entry,) = store.scan()
    assert entry.purged
    assert inference(entry.entry).model.version == "1.0.0"  # rebuilt from the leaf's metadata
    store.close()


def test_query_by_id_and_model_use_indexes(sqlite_url: str) -> None:
    """The planner answers id and model+time lookups from an index, not a table scan."""
    store = SQLiteStore(sqlite_url)
    conn = store._reader()
    for sql in (
        "SELECT * FROM entries WHERE id = 'x'",
        "SELECT * FROM entries WHERE model_name = 'm' AND model_version = '1' AND ts > 5",
        "SELECT * FROM entries WHERE system = 's' AND ts > 5",
        "SELECT * FROM entries WHERE subject = 's'",
    ):
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    store.close()


def test_url_errors_are_clear(tmp_path: Path) -> None:
    """Bad URLs fail with a message that says what to write instead."""
    with pytest.raises(UnknownStore, match="sqlite://"):
        open_store("mysql://localhost/x")
    with pytest.raises(UsageError, match=r"sqlite:///relative\.db"):
        open_store("sqlite://host/x.db")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/missing/dir/x.db")
    with pytest.raises(UsageError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path}/x.db?synchronous=SOMETIMES")


def test_relative_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///rel.db is relative to the working folder; sqlite:////abs.db is absolute."""
    monkeypatch.chdir(tmp_path)
    assert path_of("sqlite:///rel.db") == Path("rel.db")
    assert path_of("sqlite:////abs/x.db") == Path("/abs/x.db")


def test_old_database_upgrades_in_place(sqlite_url: str) -> None:
    """A database made by schema version 1 gains later migrations on open, keeping its entries."""
    from inferlog.store.migrations import sqlite as backend

    full = list(backend.MIGRATIONS)
    backend.MIGRATIONS[:] = full[:1]
    try:
        old = SQLiteStore(sqlite_url)
        record = make_record()
        old.append(prepare(record))
        assert old.schema_version() == 1
        old.close()
    finally:
        backend.MIGRATIONS[:] = full
    upgraded = SQLiteStore(sqlite_url)
    assert upgraded.schema_version() == len(full)
    assert upgraded.get(record.id) is not None
    assert upgraded.api_keys() == []
    upgraded.close()
