"""The SDK under a policy: a key store it cannot use means the record is refused, never written unsealed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import inferlog
from inferlog.errors import NotDurable


def test_a_locked_key_store_fails_closed_and_writes_nothing(tmp_path: Path) -> None:
    """With fail_closed, a key store locked by another process makes record() raise NotDurable."""
    config = tmp_path / "inferlog.toml"
    config.write_text('[keystore]\npath = "keys.db"\n')
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", config=config, fail_closed=True) as log:
        log.record(model=inferlog.Model("m", "1"), input={"a": 1}, subject="first")  # keys exist now
        blocker = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(NotDurable, match="key store"):
                log.record(
                    model=inferlog.Model("m", "1"), input={"secret": "never plain"}, subject="new-person"
                )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        log.flush()
        assert log.stats()["entries"] == 1
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"never plain" not in raw
