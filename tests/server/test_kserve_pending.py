"""Where the KServe sink keeps pending halves, how long they wait, and who starts and stops its sweeper."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from inferlog.cli.serve import default_kserve_pending
from inferlog.ingest import kserve
from inferlog.record.canonical import format_timestamp
from inferlog.record.model import InferenceRecord
from inferlog.server import create_app
from inferlog.server.pending import PendingHalves
from inferlog.store import Store
from inferlog.store.base import Query
from inferlog.store.postgres import PostgresStore
from inferlog.store.sqlite import SQLiteStore
from tests.helpers import free_port, inferences, wait_for, wait_until_serving

# Inside the window a server accepts (INFERLOG_MAX_RECORD_AGE): a fixed date would age out of it.
RECENT = format_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
SOURCE = "iris-predictor-00001"
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}


def _half(ce_id: str, half: str = "request") -> dict[str, str]:
    return {
        "Ce-Specversion": "1.0",
        "Ce-Id": ce_id,
        "Ce-Type": f"org.kubeflow.serving.inference.{half}",
        "Ce-Source": SOURCE,
        "Ce-Time": RECENT,
        "Ce-Inferenceservicename": "iris",
        "Ce-Namespace": "models",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }


def _records(store: Store) -> list[InferenceRecord]:
    return inferences(store.query(Query(kind="inference", limit=100)))


def test_a_store_without_a_file_and_no_pending_path_refuses_with_503(pg_url: str) -> None:
    """On PostgreSQL with no --kserve-pending the sink answers 503 naming the option, and keeps nothing."""
    store = PostgresStore(pg_url)
    try:
        with TestClient(create_app(store, auth=False)) as client:
            done = client.post(
                "/v1/ingest/kserve?system=iris", headers=_half("a"), content=json.dumps(BODY).encode()
            )
        assert done.status_code == 503
        assert "--kserve-pending" in done.json()["message"]
        assert _records(store) == []
    finally:
        store.close()


def test_the_lifespan_starts_and_stops_the_sweeper_and_resumes_old_halves(tmp_path: Path) -> None:
    """A half kept by one run is recorded by the next run's sweeper, with no new event; shutdown stops it."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    first = create_app(store, auth=False)
    first.state.kserve_timeout = 3600.0
    with TestClient(first) as client:
        done = client.post(
            "/v1/ingest/kserve?system=iris", headers=_half("lone"), content=json.dumps(BODY).encode()
        )
        assert done.status_code == 202
        keeper = first.state.kserve_pending
        assert isinstance(keeper, PendingHalves)
        [thread] = [t for t in threading.enumerate() if t.name == "inferlog-pending-sweep"]
        assert thread.is_alive()
    assert not thread.is_alive(), "the lifespan's shutdown stopped the sweeper"
    assert first.state.kserve_pending is None
    assert Path(f"{tmp_path / 'log.db'}-kserve-pending.db").exists()
    assert _records(store) == []

    second = create_app(store, auth=False)
    second.state.kserve_timeout = 0.2
    with TestClient(second):
        assert second.state.kserve_pending is not None, "reopened at start-up: an earlier run left halves"
        wait_for(lambda: len(_records(store)) == 1, "the sweeper to record the lone half")
    (rec,) = _records(store)
    assert rec.id == kserve.record_id(SOURCE, "lone")
    assert rec.attributes["kserve_half"] == "request"
    store.close()


def test_no_pending_file_is_made_until_an_event_needs_one(tmp_path: Path) -> None:
    """A server that never receives a KServe event leaves no pending file beside its store."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    app = create_app(store, auth=False)
    with TestClient(app):
        assert getattr(app.state, "kserve_pending", None) is None
    assert not Path(f"{tmp_path / 'log.db'}-kserve-pending.db").exists()
    store.close()


def test_default_pending_file_is_beside_sqlite_or_under_the_data_dir(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`inferlog serve` keeps SQLite's default; on PostgreSQL it picks a per-database file in the data dir."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    sqlite = SQLiteStore(f"sqlite:///{tmp_path / 'log.db'}")
    pg = PostgresStore(pg_url)
    try:
        assert default_kserve_pending(sqlite, f"sqlite:///{tmp_path / 'log.db'}") is None
        chosen = default_kserve_pending(pg, pg_url)
        assert chosen is not None
        assert chosen.parent == tmp_path / "data" / "inferlog"
        with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:secret@")
        assert default_kserve_pending(pg, with_password) == chosen, "credentials do not move the file"
        assert default_kserve_pending(pg, pg_url + "_other") != chosen
    finally:
        sqlite.close()
        pg.close()


def _serve(db: str, port: int, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "inferlog", "--db", db, "serve", "--no-auth", "--port", str(port), *extra],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/healthz", "inferlog serve to come up", proc)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    return proc


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_serve_options_and_settings_reach_the_sink(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """`inferlog serve` on PostgreSQL (data-dir default, timeout from INFERLOG_KSERVE_TIMEOUT) and on
    SQLite (--kserve-pending, --kserve-timeout): a lone half lands in the chosen file and is recorded
    alone by the running server's sweeper once the timeout has passed."""
    port = free_port()
    if backend == "postgresql":
        db = request.getfixturevalue("pg_url")
        env = {"XDG_DATA_HOME": str(tmp_path / "data"), "INFERLOG_KSERVE_TIMEOUT": "0.3"}
        extra: tuple[str, ...] = ()
        store: Store = PostgresStore(db)
        pending = default_kserve_pending(store, db)
        assert pending is not None
        pending = tmp_path / "data" / "inferlog" / pending.name
    else:
        db = f"sqlite:///{tmp_path / 'log.db'}"
        pending = tmp_path / "elsewhere" / "pending.db"
        env = {}
        extra = ("--kserve-pending", str(pending), "--kserve-timeout", "0.3")
        store = SQLiteStore(db)
    proc = _serve(db, port, env, *extra)
    try:
        done = httpx.post(
            f"http://127.0.0.1:{port}/v1/ingest/kserve?system=iris",
            headers=_half("cli-1"),
            content=json.dumps(BODY).encode(),
        )
        assert done.status_code == 202
        assert pending.exists()
        wait_for(lambda: len(_records(store)) == 1, "the sweeper to record the lone half")
        (rec,) = _records(store)
        assert rec.attributes["kserve_half"] == "request"
        assert rec.input == BODY
    finally:
        proc.terminate()
        proc.wait(30)
        store.close()
