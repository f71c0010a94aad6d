"""A real PostgreSQL at 127.0.0.1:5432 for the tests: a fresh database (and role) per test, dropped after.

A missing server is a failure, never a skip: the PostgreSQL store is only as tested as this fixture
makes it. Start it with ``pg_ctlcluster --skip-systemctl-redirect 15 main start``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_ADMIN_DB = "postgres"


def as_role(url: str, role: str) -> str:
    """The same database URL, logging in as ``role`` (trust authentication: no password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{role}@{host}{port}", parts.path, parts.query, ""))


def admin_connect(url: str = f"{PG_SERVER}/{PG_ADMIN_DB}") -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit superuser connection (the caller closes it)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server's base URL, after proving it answers (fails the run, with the fix, if it does not)."""
    try:
        with admin_connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_SERVER}: {exc}\n"
            "start it with: pg_ctlcluster --skip-systemctl-redirect 15 main start",
            pytrace=False,
        )
    return PG_SERVER


@pytest.fixture
def _pg_cleanup(pg_server: str) -> Iterator[list[tuple[str, str]]]:
    """Drops what the per-test fixtures made: databases first, then roles (whose grants died with them)."""
    made: list[tuple[str, str]] = []
    yield made
    with admin_connect() as conn:
        for kind, name in made:
            if kind == "database":
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for kind, name in made:
            if kind == "role":
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
                )
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_server: str, _pg_cleanup: list[tuple[str, str]]) -> str:
    """A URL to a fresh, empty database (superuser login), dropped WITH (FORCE) after the test."""
    name = f"inferlog_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _pg_cleanup.append(("database", name))
    return f"{pg_server}/{name}"


@pytest.fixture
def pg_app_role(pg_server: str, _pg_cleanup: list[tuple[str, str]]) -> str:
    """A fresh LOGIN role with no privileges of its own, dropped after the test's databases."""
    name = f"inferlog_app_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    _pg_cleanup.append(("role", name))
    return name


@pytest.fixture
def pg_connect(pg_url: str) -> Iterator[Callable[..., psycopg.Connection[tuple[object, ...]]]]:
    """Opens autocommit connections to the test database (as superuser, or ``role=``), closed after."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def connect(role: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        conn = admin_connect(as_role(pg_url, role) if role else pg_url)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
