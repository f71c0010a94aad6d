"""A log on each backend, with a way to read everything it keeps on disk as raw bytes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Backend:
    """Where the log lives, and every byte an attacker with the files (or a dump) would see."""

    name: str
    url: str
    raw: Callable[[], bytes]


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SQLite: the database file, its WAL and the spool; PostgreSQL: a pg_dump of the database."""
    if request.param == "sqlite":
        folder = tmp_path / "db"
        folder.mkdir()
        return Backend("sqlite", f"sqlite:///{folder / 'log.db'}", lambda: _files(folder))
    url: str = request.getfixturevalue("pg_url")

    pg_dump = shutil.which("pg_dump")
    assert pg_dump is not None, (
        "pg_dump is needed to search a PostgreSQL dump (apt install postgresql-client)"
    )

    def dump() -> bytes:
        return subprocess.run([pg_dump, "--dbname", url], check=True, capture_output=True).stdout

    return Backend("postgres", url, dump)
