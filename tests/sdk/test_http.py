"""The SDK against a real `inferlog serve`: delivery, restarts, refusals, reads with a purpose."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import inferlog
from inferlog.apikeys import create_key
from inferlog.errors import UsageError
from inferlog.record import Model
from inferlog.record.model import InferenceRecord, kind_of
from inferlog.sdk.http import HttpTransport
from inferlog.server import create_app
from inferlog.store import open_store
from inferlog.store.sqlite import SQLiteStore
from inferlog.testing import make_record
from tests.fix_server import ServerProcess, run_cli
from tests.helpers import in_process_client

MODEL = Model("credit-risk", "3.2.1")


def test_sdk_ships_through_the_server_and_reads_with_a_purpose(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """Records go spool -> HTTP -> server -> store; reads through the server state a purpose."""
    ingest = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "credit", "--name", "m"
    ).strip()
    reader = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "reader", "--system", "credit", "--name", "r"
    ).strip()
    log = inferlog.open(server_process.url, api_key=ingest, system="credit", spool_dir=tmp_path / "spool")
    ids = [log.record(model=MODEL, input={"i": i}, output=i) for i in range(200)]
    assert log.flush(timeout=30)
    assert log.counters.shipped == 200
    with pytest.raises(UsageError, match="purpose"):
        log.get(ids[0])
    log.close()
    read = inferlog.open(server_process.url, api_key=reader, system="credit", spool_dir=tmp_path / "spool2")
    assert read.reader is not None
    got = read.reader.get(ids[5], purpose="spot check")
    assert got is not None
    assert got.output == 5
    page = read.reader.query(purpose="monitoring", limit=1000, kind="inference")
    assert [e.id for e in page] == ids
    read.close()


def test_server_restart_while_ingesting_loses_nothing(server_process: ServerProcess, tmp_path: Path) -> None:
    """While a producer records continuously, the server is SIGKILLed and restarted; every id lands exactly once."""
    token = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "*", "--name", "m"
    ).strip()
    log = inferlog.open(server_process.url, api_key=token, system="credit", spool_dir=tmp_path / "spool")
    acked: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        while not stop.wait(0.0005):  # a busy model server, not a tight loop
            acked.append(log.record(model=MODEL, output=len(acked)))

    producer = threading.Thread(target=produce)
    producer.start()
    for _ in range(2):
        stop.wait(0.7)
        server_process.stop()
        stop.wait(0.7)
        server_process.start()
    stop.set()
    producer.join()
    assert log.flush(timeout=60)
    assert log.counters.retries >= 1
    log.close()
    server_process.stop()
    store = SQLiteStore(server_process.db)
    stored = [e.id for e in store.scan(limit=1_000_000) if kind_of(e.entry) == "inference"]
    store.close()
    assert len(acked) > 100
    assert sorted(stored) == sorted(acked)  # every acknowledged id, none twice


def test_transport_isolates_a_refused_record_and_splits_oversized_batches(tmp_path: Path) -> None:
    """A 422 marks only the bad record invalid; a 413 splits the batch; the rest is delivered."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 't.db'}")
    token, _ = create_key(store, "ingest", ["*"], "t")
    transport = HttpTransport("http://testserver", token)
    transport._http = in_process_client(
        create_app(store, max_body_bytes=3000), headers={"Authorization": f"Bearer {token}"}
    )
    good = [make_record(input="x" * 900) for _ in range(6)]
    bad = make_record(model=Model("", "1"))  # an empty model name passes construction, not validation
    results = transport.send([*good[:3], bad, *good[3:]])
    assert [r.status for r in results] == ["new"] * 3 + ["invalid"] + ["new"] * 3
    assert "model.name" in (results[3].reason or "")
    assert store.size() == 6
    store.close()


def test_a_log_through_the_server_registers_and_attaches_lineage(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """An admin's Log registers over HTTP; an ingest key's Log reads the registry and its records carry the digest."""
    admin = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "admin", "--system", "*", "--name", "ops"
    ).strip()
    ingest = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "credit", "--name", "m"
    ).strip()
    digest = "sha256:" + "c" * 64
    with inferlog.open(server_process.url, api_key=admin, system="credit", spool_dir=tmp_path / "a") as log:
        made = log.register_model(MODEL.name, MODEL.version, digest=digest, uri="mlflow://runs/3")
        assert (made.digest, made.uri) == (digest, "mlflow://runs/3")
    with inferlog.open(server_process.url, api_key=ingest, system="credit", spool_dir=tmp_path / "i") as log:
        with pytest.raises(UsageError, match="403"):
            log.register_model("other", "1", digest=digest)
        assert [r.version for r in log.registered_models()] == [MODEL.version]
        assert log.lineage is not None
        assert log.lineage.wait_loaded(30)  # the registry copy loads in the background: wait for it
        record_id = log.record(model=MODEL, output=1)
        assert log.flush(timeout=30)
    store = open_store(server_process.db)
    try:
        found = store.get(record_id)
        assert found is not None
        entry = found.entry
        assert isinstance(entry, InferenceRecord)
        assert (entry.model.digest, entry.model.uri) == (digest, "mlflow://runs/3")
    finally:
        store.close()


def test_a_log_through_the_server_records_and_reads_schemas(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """An admin's Log records a schema (with registration and on its own) over HTTP; an ingest key's reads them."""
    admin = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "admin", "--system", "*", "--name", "ops"
    ).strip()
    ingest = run_cli(
        "--db", server_process.db, "keys", "create", "--role", "ingest", "--system", "credit", "--name", "m"
    ).strip()
    schema = {"inputs": [{"name": "age", "datatype": "INT64"}], "outputs": [{"name": "score"}]}
    with inferlog.open(server_process.url, api_key=admin, system="credit", spool_dir=tmp_path / "a") as log:
        log.register_model(MODEL.name, MODEL.version, digest="sha256:" + "d" * 64, schema=schema)
        made = log.record_schema("other", "2", schema, source="sklearn")
        assert (made.source, made.name, made.changed) == ("sklearn", "other", False)
    with inferlog.open(server_process.url, api_key=ingest, system="credit", spool_dir=tmp_path / "i") as log:
        listed = log.model_schemas()
        assert [(s.name, s.version, s.source) for s in listed] == [
            (MODEL.name, MODEL.version, "user"),
            ("other", "2", "sklearn"),
        ]
        with pytest.raises(UsageError, match="403"):
            log.record_schema("other", "3", schema)
