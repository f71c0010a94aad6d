"""The SDK under a policy: record() seals the spool frame; the shipper seals fields, retrying the key store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgspec
import pytest

import inferlog
from inferlog.errors import NotDurable
from inferlog.testing import make_record
from tests.helpers import present

POLICY = '[keystore]\npath = "keys.db"\n'
PLANTED = "Quillon Ashgrove-4471"


def _raw(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_a_locked_key_store_delays_delivery_but_never_the_caller(tmp_path: Path) -> None:
    """While another process holds the key store, record() (no subject) returns; the record arrives later."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", config=config) as log:
        log.record(model=inferlog.Model("m", "1"), input={"a": 1}, subject="first")
        log.flush()
        blocker = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            rid = log.record(model=inferlog.Model("m", "1"), input={"who": PLANTED})
            assert time.monotonic() - started < 1.0  # the caller does not wait for the key store
            assert PLANTED.encode() not in _raw(tmp_path)  # the spool frame is sealed
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert log.flush(timeout=60)
        got = log.get(rid)
        assert got is not None
        assert got.input == {"who": PLANTED}
    assert PLANTED.encode() not in _raw(tmp_path)


def test_a_sealed_spool_left_by_a_dead_process_is_replayed(tmp_path: Path) -> None:
    """A process dies with sealed frames in its spool; a Log without the key store leaves them alone,
    the next one with it replays them all."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    child = textwrap.dedent(
        f"""
        import os, inferlog
        log = inferlog.open("http://127.0.0.1:9", api_key="k", system="s", config={str(config)!r},
                            spool_dir={str(tmp_path / "log.db-spool")!r}, durability="machine")
        ids = [log.record(model=inferlog.Model("m", "1"), input={{"who": {PLANTED!r}, "i": i}}) for i in range(50)]
        print(",".join(ids), flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    env = {**os.environ, "INFERLOG_CHECKPOINT_EVERY": "1000000"}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=120)
    ids = out.stdout.strip().split(",")
    assert len(ids) == 50, out.stderr
    spool = tmp_path / "log.db-spool"
    raw = _raw(spool) if spool.exists() else b""
    assert PLANTED.encode() not in raw
    with inferlog.open(url, system="s") as log:  # no policy, no key store: the sealed spool waits
        assert log.flush(timeout=60)
        assert log.store is not None
        assert all(log.store.get(i) is None for i in ids)
    assert not list(tmp_path.rglob("dead-letter"))
    with inferlog.open(url, system="s", config=config) as log:
        assert log.flush(timeout=60)
        assert [present(log.get(i)).input["i"] for i in ids] == list(range(50))


def test_a_subjects_record_is_sealed_before_the_spool_or_refused(tmp_path: Path) -> None:
    """With a subject, record() seals under the subject's key: a locked key store means NotDurable."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", config=config, fail_closed=True) as log:
        log.record(model=inferlog.Model("m", "1"), input={"a": 1}, subject="first")
        blocker = sqlite3.connect(tmp_path / "keys.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(NotDurable, match="key store"):
                log.record(model=inferlog.Model("m", "1"), input={"who": PLANTED}, subject="new-person")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        log.flush()
        assert log.stats()["by_kind"] == {"admin": 1, "inference": 1}  # the policy, and the first record
    assert PLANTED.encode() not in _raw(tmp_path)


def test_a_record_that_cannot_be_sealed_is_set_aside_without_blocking_the_rest(tmp_path: Path) -> None:
    """A value JSON cannot hold (a bool key) is dead-lettered as its sealed frame; later records ship.

    record() refuses such a value; the frame is spooled as an older SDK (or a bug) would have written it.
    """
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", config=config) as log:
        assert log._frames is not None
        poison = make_record(system="s", input={True: PLANTED})
        log._spool.append(log._frames.seal(msgspec.msgpack.encode(poison)))
        good = [log.record(model=inferlog.Model("m", "1"), input={"i": i}) for i in range(3)]
        assert log.flush(timeout=30)
        assert all(log.get(i) is not None for i in good)
        assert log.counters.failed == 1
    letters = list(tmp_path.rglob("dead-letter/*.jsonl"))
    assert len(letters) == 1
    assert "cannot be sealed" in letters[0].read_text()
    assert PLANTED.encode() not in _raw(tmp_path)


def test_a_subjects_spooled_frame_hides_every_field(tmp_path: Path) -> None:
    """Fields the policy does not seal (attributes) are not readable in the spool either."""
    config = tmp_path / "inferlog.toml"
    config.write_text(POLICY)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    with inferlog.open(url, system="s", config=config) as log:
        log.record(model=inferlog.Model("m", "1"), input={"a": 1}, subject="p1", attributes={"note": PLANTED})
        spooled = _raw(tmp_path / "log.db-spool")
        assert PLANTED.encode() not in spooled


def test_an_orphan_sealed_under_another_key_store_is_left_for_its_owner(tmp_path: Path) -> None:
    """A Log with a different key store cannot open another's sealed spool: it leaves it, never dead-letters."""
    mine = tmp_path / "mine.toml"
    mine.write_text('[keystore]\npath = "mine.db"\n')
    theirs = tmp_path / "theirs.toml"
    theirs.write_text('[keystore]\npath = "theirs.db"\n')
    url = f"sqlite:///{tmp_path / 'log.db'}"
    child = textwrap.dedent(
        f"""
        import os, inferlog
        log = inferlog.open("http://127.0.0.1:9", api_key="k", system="s", config={str(theirs)!r},
                            spool_dir={str(tmp_path / "log.db-spool")!r}, durability="machine")
        ids = [log.record(model=inferlog.Model("m", "1"), input={{"i": i}}) for i in range(20)]
        print(",".join(ids), flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    ids = out.stdout.strip().split(",")
    assert len(ids) == 20, out.stderr
    with inferlog.open(url, system="s", config=mine) as log:
        assert log.flush(timeout=30)
        assert log.store is not None
        assert all(log.store.get(i) is None for i in ids)
    assert not list(tmp_path.rglob("dead-letter"))
    with inferlog.open(url, system="s", config=theirs) as log:
        assert log.flush(timeout=60)
        assert all(log.get(i) is not None for i in ids)


def test_a_fork_while_another_thread_holds_the_key_store_does_not_hang_the_child(tmp_path: Path) -> None:
    """The child gets a fresh key store lock: a parent thread holding it at fork time cannot block it."""
    import signal
    import threading

    from inferlog.keystore import LocalKeyStore

    store = LocalKeyStore(tmp_path / "keys.db")
    store.current("epoch:s:2026-01")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        signal.alarm(5)
        ok = store.current("epoch:s:2026-02")[0] == "epoch:s:2026-02#1"
        os._exit(0 if ok else 1)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
