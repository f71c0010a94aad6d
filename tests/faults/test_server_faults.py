"""The server on PostgreSQL under fire: connections killed and the server restarted while the SDK ingests."""

from __future__ import annotations

import threading
from pathlib import Path

import inferlog
from inferlog.apikeys import create_key
from inferlog.store.postgres import PostgresStore, migrate
from tests.fix_postgres import admin_connect, as_role
from tests.fix_server import ServerProcess


def test_killed_connections_and_restarts_lose_nothing(pg_url: str, pg_app_role: str, tmp_path: Path) -> None:
    """pg_terminate_backend every 300 ms and two server restarts: every acknowledged record is stored exactly once."""
    migrate(pg_url, app_role=pg_app_role)
    admin = PostgresStore(pg_url)
    token, _ = create_key(admin, "ingest", ["credit"], "fault test")
    admin.close()
    server = ServerProcess(as_role(pg_url, pg_app_role))  # the server runs as the non-owner app role
    server.start()
    database = pg_url.rsplit("/", 1)[1]
    log = inferlog.open(server.url, api_key=token, system="credit", spool_dir=tmp_path / "spool")
    acked: list[str] = []
    stop = threading.Event()
    kills = 0

    def produce() -> None:
        while not stop.wait(0.0005):
            acked.append(log.record(model=inferlog.Model("m", "1"), output=len(acked)))

    def kill_connections() -> None:
        nonlocal kills
        with admin_connect() as conn:
            while not stop.wait(0.3):
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                kills += len(rows)

    threads = [threading.Thread(target=produce), threading.Thread(target=kill_connections)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2):
            stop.wait(1.5)
            server.stop()
            stop.wait(0.5)
            server.start()
        stop.wait(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    try:
        assert log.flush(timeout=120)
    finally:
        log.close()
        server.stop()
    assert kills > 0
    assert len(acked) > 500
    with admin_connect(pg_url) as conn:
        stored = [str(row[0]) for row in conn.execute("SELECT id::text FROM inferlog.entries ORDER BY seq")]
        (gaps,) = conn.execute("SELECT count(*) - max(seq) FROM inferlog.entries").fetchone()  # type: ignore[misc]
    assert gaps == 0
    assert len(stored) == len(set(stored))
    assert sorted(stored) == sorted(acked)
