"""What an attacker with write access to the database files does, per backend (triggers dropped first).

Each method closes nothing itself: the caller closes the store, tampers, reopens. SQL differs only in
table names, placeholders and the timestamp column's type; the drills are the same for both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from psycopg import sql

from inferlog.store.sqlite import path_of


class Tamperer(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def one_microsecond_later(self) -> str: ...
    def snapshot(self) -> None: ...
    def restore(self) -> None: ...
    def close(self) -> None: ...

    table: str
    checkpoints: str
    ledger_state: str
    tiles: str


class SQLiteTamperer:
    table, checkpoints, ledger_state, tiles = "entries", "checkpoints", "ledger_state", "tiles"

    def __init__(self, url: str) -> None:
        self.path = path_of(url)
        self._backup: bytes | None = None

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
                conn.execute(f'DROP TRIGGER "{name}"')
            return conn.execute(statement.replace("%s", "?"), list(params)).fetchall()
        finally:
            conn.close()

    def one_microsecond_later(self) -> str:
        return "ts + 1"

    def snapshot(self) -> None:
        conn = sqlite3.connect(self.path)
        backup = self.path.with_suffix(".backup")
        conn.execute("VACUUM INTO ?", (str(backup),))
        conn.close()
        self._backup = backup.read_bytes()

    def restore(self) -> None:
        assert self._backup is not None
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self.path.write_bytes(self._backup)

    def close(self) -> None:
        pass


class PostgresTamperer:
    """A superuser: disables every trigger of the inferlog schema (the owner can; so can a DBA)."""

    table, checkpoints = "inferlog.entries", "inferlog.checkpoints"
    ledger_state, tiles = "inferlog.ledger_state", "inferlog.tiles"

    def __init__(self, url: str) -> None:
        self.url = url
        self.server, self.database = url.rsplit("/", 1)
        self.snapshot_name = f"{self.database}_snap"

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'inferlog' AND c.relkind IN ('r', 'p')"
            ).fetchall()
            for (table,) in tables:
                conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(sql.SQL(table)))
            cursor = conn.execute(statement.replace("?", "%s"), list(params))
            return cursor.fetchall() if cursor.description else []  # an attacker leaves them off

    def one_microsecond_later(self) -> str:
        return "ts + interval '1 microsecond'"

    def _admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(f"{self.server}/postgres", autocommit=True)

    def _kick(self, conn: psycopg.Connection[tuple[Any, ...]], database: str) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )

    def snapshot(self) -> None:
        with self._admin() as conn:
            self._kick(conn, self.database)
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(self.snapshot_name), sql.Identifier(self.database)
                )
            )

    def restore(self) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.database)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.snapshot_name)
                )
            )

    def close(self) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.snapshot_name))
            )


def tamperer_for(url: str) -> Tamperer:
    """The tamperer for the backend ``url`` names (a ``sqlite:`` URL, or else PostgreSQL)."""
    if url.startswith("sqlite:"):
        return SQLiteTamperer(url)
    return PostgresTamperer(url)
