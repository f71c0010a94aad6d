"""The embedded store: one SQLite file, WAL, ``synchronous=FULL`` by default.

One write connection, owned by whoever holds ``_write_lock`` (in practice the SDK's shipper thread),
assigns ``seq`` inside the write transaction, so seq is gap-free and in commit order: an incremental
reader that remembers the last seq it saw misses nothing. Readers use one connection per thread and,
thanks to WAL, never block the writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

from inferlog.errors import Conflict, IntegrityError, StoreUnavailable, UsageError
from inferlog.ledger.merkle import CompactRange
from inferlog.record.model import StoredEntry, WrappedKey
from inferlog.record.prepared import Prepared
from inferlog.store import _rollups, _sql
from inferlog.store._rows import (
    COLUMNS,
    FOLD_COLUMNS,
    KEY_COLUMNS,
    LEDGER_COLUMNS,
    READ_COLUMNS,
    api_key_of,
    row_of,
    sort_batch,
    stored_of,
)
from inferlog.store.base import (
    ApiKey,
    AppendResult,
    FoldRow,
    LedgerRow,
    Page,
    Purge,
    PurgedRow,
    PurgeResult,
    Query,
    Rollup,
    RollupFilter,
    RollupKey,
    RollupState,
    StoredCheckpoint,
    from_micros,
    to_micros,
)
from inferlog.store.forksafe import GATE, reset_in_child
from inferlog.store.migrations.sqlite import MIGRATIONS

_SYNC_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
CLOSE_WAIT = 30.0  # seconds close() waits for calls still running in other threads
_IN_CHUNK = 500  # ids per "IN (...)" lookup, well under SQLite's variable limit
_INSERT = f"INSERT INTO entries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


P = ParamSpec("P")
T = TypeVar("T")


def _sqlite_call(method: Callable[P, T]) -> Callable[P, T]:
    """A store method: inside the fork gate, and SQLite's operational errors (a full disk, an I/O
    error, a lock held too long) raised as :class:`StoreUnavailable` naming the cause (HTTP 503)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with GATE.inside(), args[0]._calling():  # type: ignore[attr-defined]
            try:
                return method(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                store = args[0]
                raise StoreUnavailable(f"SQLite database {getattr(store, 'path', '')}: {exc}") from exc

    return wrapper


def path_of(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` to a path."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not parts.path.startswith("/") or parts.netloc:
        raise UsageError(f"not a SQLite URL: {url!r} (write sqlite:///relative.db or sqlite:////abs.db)")
    path = parts.path[1:]
    if not path:
        raise UsageError(f"SQLite URL {url!r} names no file")
    return Path(path)


class SQLiteStore:
    """The Store protocol on one SQLite file."""

    @_sqlite_call
    def __init__(self, url: str, *, synchronous: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self.path = path_of(url)
        options = parse_qs(urlsplit(url).query)
        level = (synchronous or options.get("synchronous", ["FULL"])[0]).upper()
        if level not in _SYNC_LEVELS:
            raise UsageError(f"synchronous must be one of {', '.join(_SYNC_LEVELS)}, got {level!r}")
        self._synchronous = level
        self._timeout = timeout
        if not self.path.parent.exists():
            raise StoreUnavailable(f"cannot open {self.path}: folder {self.path.parent} does not exist")
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._idle = threading.Condition()  # counts calls in flight: close() waits for them
        self._active = 0
        self._writer = self._connect()
        self._migrate()
        _track_for_fork(self)

    # -- connections --------------------------------------------------------------------------

    def _reset_after_fork(self) -> None:
        """In a forked child: SQLite connections must not cross a fork, so open fresh ones.

        The inherited connection objects are abandoned, not closed: closing them could release
        what the parent still uses. Locks are new because a parent thread may have held one (not a
        ``_sqlite_call`` for that reason: its call count's lock is one of them).
        """
        with GATE.inside():
            try:
                self._fresh_after_fork()
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite database {self.path}: {exc}") from exc

    def _fresh_after_fork(self) -> None:
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._readers = []
        self._idle = threading.Condition()
        self._active = 0
        if not self._closed:
            self._writer = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            # A purge must not leave payloads readable in freed pages (only purges free any).
            conn.execute("PRAGMA secure_delete=ON")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        return conn

    @contextlib.contextmanager
    def _calling(self) -> Iterator[None]:
        """One store call in flight. A connection closed under a query running in another thread is
        a use-after-free in SQLite (a segfault, seen when a CLI command closed its store while the
        model registry's background load was reading), so :meth:`close` waits for calls to end."""
        if "_idle" not in self.__dict__:  # __init__ itself, before there is anything to close
            yield
            return
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise UsageError("this store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self._writer
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS _migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM _migrations")}
                for version, name, sql in MIGRATIONS:
                    if version in done:
                        continue
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO _migrations VALUES (?, ?, ?)",
                        (version, name, dt.datetime.now(dt.UTC).isoformat()),
                    )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    @_sqlite_call
    def schema_version(self) -> int:
        row = self._reader().execute("SELECT max(version) FROM _migrations").fetchone()
        return int(row[0] or 0)

    # -- writing ------------------------------------------------------------------------------

    @_sqlite_call
    def append(self, batch: Sequence[Prepared]) -> list[AppendResult]:
        if self._closed:
            raise UsageError("this store is closed")
        if not batch:
            return []
        logged_at = to_micros(dt.datetime.now(dt.UTC))
        conn = self._writer
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot write to {self.path}: {exc}") from exc
            try:
                # Read inside the write transaction: other processes may append to the same file.
                next_seq = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM entries").fetchone()[0]
                fresh = self._append_fresh(conn, batch, next_seq, logged_at)
                if fresh is not None:
                    conn.execute("COMMIT")
                    return fresh
                existing = self._existing(conn, [p.entry.id for p in batch])
                results, new = sort_batch(batch, existing, next_seq)
                rows = [row_of(prepared, seq, logged_at) for seq, prepared in new]
                conn.executemany(_INSERT, rows)
                if rows:
                    self._insert_keys(conn, [prepared for _, prepared in new])
                    self._extend_tree(conn, next_seq - 1, [row[-1] for row in rows])
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise StoreUnavailable(f"cannot write to {self.path}: {exc}") from exc
            except BaseException:
                _rollback(conn)
                raise
        return results

    def _append_fresh(
        self, conn: sqlite3.Connection, batch: Sequence[Prepared], next_seq: int, logged_at: int
    ) -> list[AppendResult] | None:
        """The common case, a batch of new ids, without looking each id up first.

        The UNIQUE(id) index refuses a duplicate; then this rolls back to its savepoint and answers
        None, and the caller sorts the batch into new, duplicate and conflict.
        """
        ids = [p.entry.id for p in batch]
        if len(set(ids)) != len(ids):
            return None
        rows = [row_of(prepared, next_seq + i, logged_at) for i, prepared in enumerate(batch)]
        conn.execute("SAVEPOINT fresh")
        try:
            conn.executemany(_INSERT, rows)
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO fresh")
            conn.execute("RELEASE fresh")
            return None
        conn.execute("RELEASE fresh")
        self._insert_keys(conn, batch)
        self._extend_tree(conn, next_seq - 1, [row[-1] for row in rows])
        return [AppendResult(entry_id, next_seq + i, "new") for i, entry_id in enumerate(ids)]

    @staticmethod
    def _insert_keys(conn: sqlite3.Connection, batch: Sequence[Prepared]) -> None:
        keys = [
            (p.entry.id, p.key.epoch_ref, p.key.subject_ref, p.key.blob) for p in batch if p.key is not None
        ]
        if keys:
            conn.executemany(
                "INSERT OR REPLACE INTO entry_keys (id, epoch_ref, subject_ref, blob) VALUES (?, ?, ?, ?)",
                keys,
            )

    def _extend_tree(self, conn: sqlite3.Connection, old_size: int, leaf_hashes: list[bytes]) -> None:
        """Advance the compact range and write completed tiles, in the append's transaction."""
        row = conn.execute("SELECT size, frontier FROM ledger_state WHERE id = 1").fetchone()
        tree = CompactRange.from_bytes(row[1]) if row else CompactRange()
        if tree.size != old_size:
            raise IntegrityError(
                f"ledger state covers {tree.size} entries but the log holds {old_size}: "
                "the database was changed outside inferlog; run `inferlog verify`"
            )
        tiles = tree.extend_with_tiles(leaf_hashes)  # the tiles fall out of the merges
        conn.execute(
            "INSERT INTO ledger_state (id, size, frontier) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier",
            (tree.size, tree.to_bytes()),
        )
        if tiles:
            conn.executemany("INSERT INTO tiles (level, idx, hash) VALUES (?, ?, ?)", tiles)

    @staticmethod
    def _leaf_hashes(conn: sqlite3.Connection, start: int, end: int) -> list[bytes]:
        rows = conn.execute(
            "SELECT leaf_hash FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq", (start, end)
        )
        return [bytes(row[0]) for row in rows]

    @staticmethod
    def _tile_hashes(conn: sqlite3.Connection, level: int, start: int, end: int) -> list[bytes]:
        rows = conn.execute(
            "SELECT hash FROM tiles WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end),
        )
        return [bytes(row[0]) for row in rows]

    # -- the ledger ---------------------------------------------------------------------------

    @_sqlite_call
    def tree(self) -> CompactRange:
        row = self._reader().execute("SELECT size, frontier FROM ledger_state WHERE id = 1").fetchone()
        return CompactRange.from_bytes(row[1]) if row else CompactRange()

    @_sqlite_call
    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._leaf_hashes(self._reader(), start, end)

    @_sqlite_call
    def tile_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        return self._tile_hashes(self._reader(), level, start, end)

    @_sqlite_call
    def ledger_rows(self, after: int = 0, limit: int = 10_000) -> list[LedgerRow]:
        rows = self._reader().execute(
            f"SELECT {_LEDGER_SELECT} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return list(map(LedgerRow._make, rows))  # the verifier's hot loop: no per-row Python work here

    @_sqlite_call
    def add_checkpoint(self, size: int, root: bytes, note: bytes) -> None:
        with self._write_lock:
            self._writer.execute(
                "INSERT INTO checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (size) DO NOTHING",
                (size, root, note.decode("utf-8"), to_micros(dt.datetime.now(dt.UTC))),
            )

    @_sqlite_call
    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._reader().execute("SELECT size, root, note, created_at FROM checkpoints ORDER BY size")
        return [
            StoredCheckpoint(size, bytes(root), note.encode("utf-8"), from_micros(created))
            for size, root, note, created in rows
        ]

    # -- payloads: keys, purge ----------------------------------------------------------------

    @_sqlite_call
    def entry_keys(self, ids: Sequence[str]) -> dict[str, WrappedKey]:
        found: dict[str, WrappedKey] = {}
        conn = self._reader()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = list(ids[start : start + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            for entry_id, epoch_ref, subject_ref, blob in conn.execute(
                f"SELECT id, epoch_ref, subject_ref, blob FROM entry_keys WHERE id IN ({marks})", chunk
            ):
                found[entry_id] = WrappedKey(epoch_ref=epoch_ref, subject_ref=subject_ref, blob=bytes(blob))
        return found

    @_sqlite_call
    def keys_wrapped_by(self, ref: str, after: str = "", limit: int = 1000) -> list[tuple[str, WrappedKey]]:
        rows = self._reader().execute(
            "SELECT id, epoch_ref, subject_ref, blob FROM entry_keys "
            "WHERE id > ? AND (epoch_ref = ? OR subject_ref = ?) ORDER BY id LIMIT ?",
            (after, ref, ref, limit),
        )
        return [(i, WrappedKey(epoch_ref=e, subject_ref=s, blob=bytes(b))) for i, e, s, b in rows]

    @_sqlite_call
    def rewrap(self, keys: Sequence[tuple[str, WrappedKey]]) -> None:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                self._writer.executemany(
                    "UPDATE entry_keys SET epoch_ref = ?, subject_ref = ?, blob = ? WHERE id = ?",
                    [(k.epoch_ref, k.subject_ref, k.blob, entry_id) for entry_id, k in keys],
                )
                self._writer.execute("COMMIT")
            except BaseException:
                _rollback(self._writer)
                raise

    @_sqlite_call
    def purge(self, purge: Purge, *, dry_run: bool = False) -> PurgeResult:
        clause, params = _sql.purge_where(purge, DIALECT)
        conn = self._writer
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count, first, last = conn.execute(
                    f"SELECT count(*), min(seq), max(seq) FROM entries WHERE {clause}", params
                ).fetchone()
                if not dry_run and count:
                    conn.execute(
                        f"DELETE FROM entry_keys WHERE id IN (SELECT id FROM entries WHERE {clause})", params
                    )
                    conn.execute(f"UPDATE entries SET {_PURGED} WHERE {clause}", params)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            if count and not dry_run:
                # The old pages also sit in the WAL until a checkpoint copies and truncates it.
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return PurgeResult(count, first, last)

    # -- monitor rollups (derived data, see inferlog.monitor) ----------------------------------

    @_sqlite_call
    def rollup_state(self) -> RollupState:
        row = self._reader().execute("SELECT value FROM monitor_values WHERE name = ?", (_rollups.STATE,))
        found = row.fetchone()
        return _rollups.decode_state(found[0] if found else None)

    @_sqlite_call
    def rollups(self, where: RollupFilter) -> list[Rollup]:
        sql, params = _rollups.select_sql(where, "monitor_rollups", "?")
        return [_rollups.rollup_of(row) for row in self._reader().execute(sql, params)]

    @_sqlite_call
    def rollups_at(self, keys: Sequence[RollupKey]) -> list[Rollup]:
        found: list[Rollup] = []
        conn = self._reader()
        for start in range(0, len(keys), _rollups.KEY_CHUNK):
            sql, params = _rollups.keys_sql(keys[start : start + _rollups.KEY_CHUNK], "monitor_rollups", "?")
            found.extend(_rollups.rollup_of(row) for row in conn.execute(sql, params))
        return found

    @_sqlite_call
    def put_rollups(
        self, rows: Sequence[Rollup], *, expect: RollupState, cursor: int, drop: Sequence[RollupKey] = ()
    ) -> RollupState:
        conn = self._writer
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(
                    "SELECT value FROM monitor_values WHERE name = ?", (_rollups.STATE,)
                ).fetchone()
                if _rollups.decode_state(found[0] if found else None) != expect:
                    raise Conflict("the monitor's rollups changed meanwhile (another monitor folded first)")
                conn.executemany(
                    "DELETE FROM monitor_rollups WHERE level = ? AND system = ? AND model = ? "
                    "AND version = ? AND bucket = ?",
                    [tuple(key) for key in drop],
                )
                conn.executemany(
                    f"INSERT OR REPLACE INTO monitor_rollups ({_rollups.ROLLUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [_rollups.row_values(row) for row in rows],
                )
                state = RollupState(cursor, expect.generation + 1)
                conn.execute(
                    "INSERT OR REPLACE INTO monitor_values (name, value) VALUES (?, ?)",
                    (_rollups.STATE, _rollups.encode_state(state)),
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return state

    @_sqlite_call
    def clear_rollups(self) -> None:
        conn = self._writer
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(
                    "SELECT value FROM monitor_values WHERE name = ?", (_rollups.STATE,)
                ).fetchone()
                generation = _rollups.decode_state(found[0] if found else None).generation
                conn.execute("DELETE FROM monitor_rollups")
                conn.execute(
                    "INSERT OR REPLACE INTO monitor_values (name, value) VALUES (?, ?)",
                    (_rollups.STATE, _rollups.encode_state(RollupState(0, generation + 1))),
                )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    @_sqlite_call
    def monitor_value(self, name: str) -> bytes | None:
        found = self._reader().execute("SELECT value FROM monitor_values WHERE name = ?", (name,)).fetchone()
        return bytes(found[0]) if found else None

    @_sqlite_call
    def put_monitor_value(self, name: str, value: bytes | None) -> None:
        if name == _rollups.STATE:
            raise UsageError(f"{name!r} is the monitor's own state")
        with self._write_lock:
            if value is None:
                self._writer.execute("DELETE FROM monitor_values WHERE name = ?", (name,))
            else:
                self._writer.execute(
                    "INSERT OR REPLACE INTO monitor_values (name, value) VALUES (?, ?)", (name, value)
                )

    @_sqlite_call
    def monitor_values(self, prefix: str) -> list[str]:
        rows = self._reader().execute(
            "SELECT name FROM monitor_values WHERE substr(name, 1, ?) = ? AND name != ? ORDER BY name",
            (len(prefix), prefix, _rollups.STATE),
        )
        return [row[0] for row in rows]

    @_sqlite_call
    def purged_rows(self, first_seq: int, last_seq: int) -> list[PurgedRow]:
        rows = self._reader().execute(
            "SELECT system, model_name, model_version, ts FROM entries "
            "WHERE seq BETWEEN ? AND ? AND body IS NULL AND kind = 'inference' "
            "UNION SELECT i.system, i.model_name, i.model_version, i.ts FROM entries f "
            "JOIN entries i ON i.id = f.inference_id "
            "WHERE f.seq BETWEEN ? AND ? AND f.body IS NULL AND f.kind = 'feedback'",
            (first_seq, last_seq, first_seq, last_seq),
        )
        return [
            PurgedRow(system, model or "", version or "", from_micros(ts))
            for system, model, version, ts in rows
        ]

    # -- API keys -----------------------------------------------------------------------------

    @_sqlite_call
    def put_api_key(self, key: ApiKey) -> None:
        with self._write_lock, _conflict_on_duplicate(f"an API key with kid {key.kid} exists"):
            self._writer.execute(
                "INSERT INTO api_keys (kid, secret_hash, role, systems, name, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key.kid, key.secret_hash, key.role, json.dumps(list(key.systems)), key.name,
                 to_micros(key.created_at)),
            )  # fmt: skip

    @_sqlite_call
    def get_api_key(self, kid: str) -> ApiKey | None:
        row = self._reader().execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE kid = ?", (kid,)).fetchone()
        return _api_key(row) if row else None

    @_sqlite_call
    def api_keys(self) -> list[ApiKey]:
        rows = self._reader().execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, kid")
        return [_api_key(row) for row in rows]

    @_sqlite_call
    def revoke_api_key(self, kid: str, at: dt.datetime) -> bool:
        with self._write_lock:
            cursor = self._writer.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE kid = ? AND revoked_at IS NULL",
                (to_micros(at), kid),
            )
        return cursor.rowcount == 1

    @staticmethod
    def _existing(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[int, bytes | None]]:
        found: dict[str, tuple[int, bytes | None]] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for entry_id, seq, body in conn.execute(
                f"SELECT id, seq, body FROM entries WHERE id IN ({marks})",
                chunk,
            ):
                found[entry_id] = (seq, body.encode("utf-8") if body is not None else None)
        return found

    # -- reading ------------------------------------------------------------------------------

    @_sqlite_call
    def get(self, entry_id: str) -> StoredEntry | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {READ_COLUMNS} FROM entries WHERE id = ?",
                (entry_id,),
            )
            .fetchone()
        )
        return stored_of(*row) if row else None

    @_sqlite_call
    def size(self) -> int:
        row = self._reader().execute("SELECT max(seq) FROM entries").fetchone()
        return int(row[0] or 0)

    @_sqlite_call
    def scan(self, after: int = 0, limit: int = 1000) -> list[StoredEntry]:
        rows = self._reader().execute(
            f"SELECT {READ_COLUMNS} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [stored_of(*row) for row in rows]

    @_sqlite_call
    def fold_scan(self, after: int = 0, limit: int = 1000) -> list[FoldRow]:
        rows = self._reader().execute(
            f"SELECT {FOLD_COLUMNS} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return list(map(FoldRow._make, rows))

    @_sqlite_call
    def query(self, query: Query) -> Page:
        sql, params = _sql.page_sql(query, DIALECT, READ_COLUMNS)
        return _sql.page([stored_of(*row) for row in self._reader().execute(sql, params)], query.limit)

    @_sqlite_call
    def stats(self, query: Query | None = None) -> dict[str, Any]:
        conn = self._reader()
        return _sql.stats(conn.execute, query or Query(), DIALECT, self.size())

    def close(self) -> None:
        """Refuse new calls, wait (up to ``CLOSE_WAIT`` s) for calls in other threads to end, then
        close every connection."""
        if self._closed:
            return
        self._closed = True
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=CLOSE_WAIT)
        with GATE.inside(), self._write_lock:
            self._writer.close()
        with GATE.inside(), self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()


_track_for_fork = reset_in_child(SQLiteStore._reset_after_fork)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so.

    On some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite rolls the transaction back
    itself; a ROLLBACK then fails with "no transaction is active", and that error would replace the
    one that says what went wrong (the disk is full).
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


# The body as BLOB: the verifier hashes bytes, and SQLite hands them over without a decode/encode.
# No attributes copy (filters read the body); no separate id index ('': the id column's own UNIQUE index).
_LEDGER_SELECT = LEDGER_COLUMNS.replace("body", "CAST(body AS BLOB)") + ", NULL, ''"


@contextlib.contextmanager
def _conflict_on_duplicate(message: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(message) from exc


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    return api_key_of(row, json.loads, from_micros)  # systems as a JSON array, times as microseconds


# A purge clears the payload and every identifier copied from it (the leaf's metadata stays).
_PURGED = "body = NULL, salt = NULL, request_id = NULL, trace_id = NULL, session_id = NULL, subject = NULL, actor = NULL"


def _attributes(attributes: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    """Equality of JSON values, as PostgreSQL's jsonb containment has it: the JSON type must match too.

    ``json_extract`` alone gives ``true`` as 1 and ``"3"`` as 3 no more than PostgreSQL does, but it
    gives ``true`` and ``1`` the same SQL value; so the type is compared as well (numbers: 3 matches 3.0).
    """
    clauses: list[str] = []
    params: list[Any] = []
    for key, wanted in attributes.items():
        path = f"'$.attributes.\"{key}\"'"
        if isinstance(wanted, bool):
            clauses.append(f"json_type(body, {path}) = ?")
            params.append("true" if wanted else "false")
        elif isinstance(wanted, int | float):
            clauses.append(
                f"json_type(body, {path}) IN ('integer', 'real') AND json_extract(body, {path}) = ?"
            )
            params.append(wanted)
        else:
            clauses.append(f"json_type(body, {path}) = 'text' AND json_extract(body, {path}) = ?")
            params.append(wanted)
    return clauses, params


DIALECT = _sql.Dialect(
    table="entries",
    mark="?",
    any_of=lambda column, values: (f"{column} IN ({','.join('?' * len(values))})", list(values)),
    bind_ts=to_micros,
    read_ts=from_micros,
    attributes=_attributes,
)


def _statements(script: str) -> list[str]:
    """Split a migration script on statement boundaries (``sqlite3.complete_statement``)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
