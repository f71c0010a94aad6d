"""A store on each backend for the monitor's tests (SQLite file; PostgreSQL database, owner role)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferlog.store import Store
from tests.helpers import backend_store


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on each backend, as its owner (so purges and erasures are allowed)."""
    store = backend_store(request, tmp_path / "log.db")
    yield store
    store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store."""
    from inferlog.store import open_store

    opened = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    yield opened
    opened.close()
