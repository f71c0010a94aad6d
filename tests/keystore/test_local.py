"""The local key store: keys made once, shared across processes, destroyed for good."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from inferlog.errors import UsageError
from inferlog.keystore import LocalKeyStore, open_keystore
from inferlog.keystore.local import FRESHNESS


def _make_key(path: str, name: str, out: multiprocessing.Queue[bytes]) -> None:
    store = LocalKeyStore(path)
    out.put(store.current(name)[1])
    store.close()


def test_current_makes_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    """The first current() makes version 1; later calls and a reopened store give the same key."""
    store = LocalKeyStore(tmp_path / "keys.db")
    ref, key = store.current("epoch:s:2026-11")
    assert ref == "epoch:s:2026-11#1"
    assert len(key) == 32
    assert store.current("epoch:s:2026-11") == (ref, key)
    assert store.get(ref) == key
    store.close()
    again = LocalKeyStore(tmp_path / "keys.db")
    assert again.current("epoch:s:2026-11") == (ref, key)
    assert (tmp_path / "keys.db").stat().st_mode & 0o777 == 0o600


def test_concurrent_processes_agree_on_one_key(tmp_path: Path) -> None:
    """Four processes asking for the same new key at once all get the same one."""
    path = str(tmp_path / "keys.db")
    LocalKeyStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[bytes] = ctx.Queue()
    workers = [ctx.Process(target=_make_key, args=(path, "subject:x", out)) for _ in range(4)]
    for w in workers:
        w.start()
    keys = {out.get(timeout=30) for _ in workers}
    for w in workers:
        w.join(30)
    assert len(keys) == 1


def test_destroy_is_seen_by_another_open_store_within_the_freshness_bound(tmp_path: Path) -> None:
    """A key destroyed through one handle is gone, FRESHNESS seconds later, for a handle that cached it."""
    first = LocalKeyStore(tmp_path / "keys.db")
    second = LocalKeyStore(tmp_path / "keys.db")
    ref, key = first.current("subject:a")
    assert second.get(ref) == key  # now cached in second
    assert first.destroy("subject:a") == 1
    assert first.get(ref) is None  # the destroying handle: at once
    time.sleep(FRESHNESS)
    assert second.get(ref) is None
    new_ref, new_key = second.current("subject:a")  # a fresh version, never the destroyed one
    assert new_ref == "subject:a#2"
    assert new_key != key
    assert [(k.version, k.destroyed_at is not None) for k in first.list_keys("subject:a")] == [
        (1, True),
        (2, False),
    ]


def test_destroyed_key_bytes_are_gone_from_the_file(tmp_path: Path) -> None:
    """After destroy, the key's bytes appear nowhere in the key store's files (secure_delete + checkpoint)."""
    path = tmp_path / "keys.db"
    store = LocalKeyStore(path)
    _, key = store.current("subject:planted")
    store.destroy("subject:planted")
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db"))
    assert key not in raw


def test_rotate_keeps_old_versions_readable_until_destroyed(tmp_path: Path) -> None:
    """rotate() makes a new current version; the old one stays readable until destroyed on its own."""
    store = LocalKeyStore(tmp_path / "keys.db")
    old_ref, old = store.current("epoch:s:2026-01")
    new_ref = store.rotate("epoch:s:2026-01")
    assert store.current("epoch:s:2026-01")[0] == new_ref != old_ref
    assert store.get(old_ref) == old
    assert store.destroy("epoch:s:2026-01", version=1) == 1
    assert store.get(old_ref) is None
    assert store.get(new_ref) is not None


def test_open_keystore_by_path_and_refuses_unknown_schemes(tmp_path: Path) -> None:
    """A path opens the local store; an unknown scheme is a clear error listing the known ones."""
    store = open_keystore(tmp_path / "k.db")
    assert isinstance(store, LocalKeyStore)
    store.close()
    with pytest.raises(UsageError, match="no key store for vault://"):
        open_keystore("vault://x")
    with pytest.raises(UsageError, match="not a key reference"):
        LocalKeyStore(tmp_path / "k.db").get("no-version")


def test_a_forked_child_uses_its_own_connection(tmp_path: Path) -> None:
    """After fork the child reopens the file instead of sharing the parent's SQLite connection."""
    store = LocalKeyStore(tmp_path / "keys.db")
    ref, key = store.current("epoch:x:2026-01")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ok = store.get(ref) == key and store.current("epoch:x:2026-02")[0] == "epoch:x:2026-02#1"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("epoch:x:2026-02#1") is not None


def test_making_a_key_does_not_hide_another_process_destroying_one(tmp_path: Path) -> None:
    """A destroy by another handle is still noticed after this handle makes a new key (review #1)."""
    first = LocalKeyStore(tmp_path / "keys.db")
    second = LocalKeyStore(tmp_path / "keys.db")
    ref, _ = first.current("subject:x")
    second.destroy("subject:x")
    first.current("epoch:s:2026-01")  # makes a key: its own commit must not mask second's
    time.sleep(FRESHNESS)
    assert first.get(ref) is None
    assert first.current("subject:x")[0] == "subject:x#2"
