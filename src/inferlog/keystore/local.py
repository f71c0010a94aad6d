"""The local key store: a small SQLite file of its own, kept apart from the log database.

Why SQLite and not a JSON file: many processes (the SDK in each worker, the server, an ``inferlog
erase`` from a shell) make and destroy keys at once, and SQLite gives them atomic "make if missing"
and a cheap way to notice another process's change (``PRAGMA data_version``). ``secure_delete`` and
a WAL checkpoint after each destroy overwrite the destroyed key's bytes in the file itself.

Put the file on a volume whose backups expire sooner than your erasure deadline (see
docs/privacy.md on erasure): a backup of this file brings shredded entries back; a backup of the log database does not.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from inferlog.errors import StoreUnavailable, UsageError
from inferlog.keystore.base import KeyInfo
from inferlog.store.forksafe import gated

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    material     BLOB,               -- NULL once destroyed (the row stays: "destroyed", not "unknown")
    created_at   INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    destroyed_at INTEGER,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
"""


FRESHNESS = 0.2  # seconds between checks for another process's change

_live: weakref.WeakSet[LocalKeyStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock at fork time; the child would wait for it forever.
    for store in list(_live):
        store._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


def _when(micros: int | None) -> dt.datetime | None:
    return None if micros is None else dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


_MAX_CACHED = 65_536
_MAX_VERSION_DIGITS = 18  # below 2**63: a version SQLite can compare


def _split(ref: str) -> tuple[str, int]:
    name, sep, version = ref.rpartition("#")
    # ASCII digits that fit SQLite's 64-bit integer: anything else names no key this store could hold.
    if not sep or not (version.isascii() and version.isdigit()) or len(version) > _MAX_VERSION_DIGITS:
        raise UsageError(f"{ref[:300]!r} is not a key reference (name#version)")
    return name, int(version)


class LocalKeyStore:
    """Keys in a local SQLite file (mode 0600), cached in memory until another process changes it."""

    @gated
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(str(path).removeprefix("file:"))
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._cache: dict[str, bytes | None] = {}
        self._current: dict[str, tuple[str, bytes]] = {}
        self._seen_version = -1
        self._checked = -FRESHNESS
        self._conn = self._connect()
        _live.add(self)

    def _connect(self) -> sqlite3.Connection:
        if not self.path.parent.is_dir():  # like a checkpoint folder: an unmounted volume must be noticed
            raise UsageError(
                f"no folder {self.path.parent} for the key store {self.path}: create it (or mount it) "
                "first; inferlog does not create it, so keys never land on the wrong disk"
            )
        try:
            fresh = not self.path.exists()
            # A short busy timeout: record() waits on this when it makes a key; better a clear error soon.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
            if fresh:
                os.chmod(self.path, 0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the key store {self.path}: {exc}") from exc
        return conn

    def _fresh(self) -> sqlite3.Connection:
        """The connection, with the cache dropped if another connection committed since last time.

        Asked at most every :data:`FRESHNESS` seconds (a query per record would cost more than the
        encryption): a key destroyed by another process stops being used here within that bound.
        """
        if os.getpid() != self._pid:  # a forked child gets its own connection and cache
            self._pid = os.getpid()
            self._conn = self._connect()
            self._seen_version = -1
            self._checked = -FRESHNESS
        now = time.monotonic()
        if now < self._checked + FRESHNESS:
            return self._conn
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._seen_version:
            self._cache.clear()
            self._current.clear()
            self._seen_version = version
        self._checked = now  # only now: _cached_current trusts the cache from here on
        return self._conn

    def _cached_current(self, name: str) -> tuple[str, bytes] | None:
        """The current version of ``name`` from the cache while it is fresh, with no lock, gate or
        SQLite call: sealing asks twice a record (epoch and subject keys), and the gated path cost
        microseconds each. The same freshness bound as :meth:`_fresh`; dict reads are atomic."""
        if time.monotonic() >= self._checked + FRESHNESS or os.getpid() != self._pid:
            return None
        return self._current.get(name)

    def current(self, name: str) -> tuple[str, bytes]:
        found = self._cached_current(name)
        return found if found is not None else self._current_gated(name)

    @gated
    def _current_gated(self, name: str) -> tuple[str, bytes]:
        try:
            return self._current_key(name)
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"the key store {self.path} cannot make or read key {name}: {exc}"
            ) from exc

    def _current_key(self, name: str) -> tuple[str, bytes]:
        with self._lock:
            conn = self._fresh()
            found = self._current.get(name)
            if found is not None:
                return found
            row = conn.execute(
                "SELECT version, material FROM keys WHERE name = ? AND material IS NOT NULL "
                "ORDER BY version DESC LIMIT 1",
                (name,),
            ).fetchone()
            if row is None:
                return self._make(conn, name)
            found = self._current[name] = (f"{name}#{row[0]}", bytes(row[1]))
            return found

    def _make(self, conn: sqlite3.Connection, name: str) -> tuple[str, bytes]:
        material = os.urandom(32)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT version, material FROM keys WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
            ).fetchone()
            if row is not None and row[1] is not None:  # another process made it first
                conn.execute("COMMIT")
                material, version = bytes(row[1]), row[0]
            else:
                version = (row[0] if row else 0) + 1
                conn.execute(
                    "INSERT INTO keys (name, version, material, created_at) VALUES (?, ?, ?, ?)",
                    (name, version, material, _now()),
                )
                conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # (data_version only moves for *other* connections' commits: ours need no bookkeeping.)
        found = self._current[name] = (f"{name}#{version}", material)
        return found

    @gated
    def get(self, ref: str) -> bytes | None:
        try:
            return self._get(ref)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the key store {self.path} cannot read key {ref}: {exc}") from exc

    def _get(self, ref: str) -> bytes | None:
        with self._lock:
            conn = self._fresh()
            if ref in self._cache:
                return self._cache[ref]
            name, version = _split(ref)
            row = conn.execute(
                "SELECT material FROM keys WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
            material = bytes(row[0]) if row is not None and row[0] is not None else None
            if len(self._cache) > _MAX_CACHED:  # writers' claimed seals name any reference they like
                self._cache.clear()
            self._cache[ref] = material
            return material

    @gated
    def rotate(self, name: str) -> str:
        with self._lock:
            conn = self._fresh()
            conn.execute("BEGIN IMMEDIATE")
            try:
                last = conn.execute("SELECT max(version) FROM keys WHERE name = ?", (name,)).fetchone()[0]
                version = (last or 0) + 1
                conn.execute(
                    "INSERT INTO keys (name, version, material, created_at) VALUES (?, ?, ?, ?)",
                    (name, version, os.urandom(32), _now()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._current.pop(name, None)
            return f"{name}#{version}"

    @gated
    def destroy(self, name: str, version: int | None = None) -> int:
        with self._lock:
            conn = self._fresh()
            sql = "UPDATE keys SET material = NULL, destroyed_at = ? WHERE name = ? AND material IS NOT NULL"
            if version is None:
                cursor = conn.execute(sql, (_now(), name))
            else:
                cursor = conn.execute(sql + " AND version = ?", (_now(), name, version))
            # Overwrite the old pages in the main file too, not only in the WAL.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._cache.clear()
            self._current.clear()
            self._checked = -FRESHNESS
            return cursor.rowcount

    @gated
    def list_keys(self, prefix: str = "") -> list[KeyInfo]:
        with self._lock:
            rows = (
                self._fresh()
                .execute(
                    "SELECT name, version, created_at, destroyed_at FROM keys WHERE substr(name, 1, ?) = ? "
                    "ORDER BY name, version",
                    (len(prefix), prefix),
                )
                .fetchall()
            )
        return [
            KeyInfo(name, version, _when(created) or dt.datetime.fromtimestamp(0, dt.UTC), _when(destroyed))
            for name, version, created, destroyed in rows
        ]

    @gated
    def close(self) -> None:
        with self._lock:
            self._conn.close()
