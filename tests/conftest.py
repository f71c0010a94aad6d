"""Fixtures shared by the whole suite: real SQLite files in tmp_path, logs that clean up after themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import inferlog
from inferlog.sdk.client import Log

pytest_plugins = ["tests.fix_server", "tests.fix_postgres", "tests.fix_nats"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture
def log(tmp_path: Path, sqlite_url: str) -> Iterator[Log]:
    handle = inferlog.open(sqlite_url, system="test-system", spool_dir=tmp_path / "spool")
    yield handle
    handle.close(timeout=10)


@pytest.fixture
def model() -> inferlog.Model:
    return inferlog.Model("credit-risk", "3.2.1", digest="sha256:" + "ab" * 32)
