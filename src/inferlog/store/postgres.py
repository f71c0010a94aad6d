"""The production store: PostgreSQL 15+, psycopg 3, monthly partitions, append-only in the database.

Deploying
---------
1. The owner runs the migrations, once per release, before the new code starts. Use a role that
   may own the tables (ideally a NOLOGIN owner that an administrator assumes), and name the
   application role to grant::

       from inferlog.store.postgres import migrate
       migrate("postgresql://admin@db:5432/inferlog", app_role="inferlog_app")

   ``open_store("postgresql://admin@db:5432/inferlog?app_role=inferlog_app")`` does the same on open.
2. Applications connect as that non-owner role: ``open_store("postgresql://inferlog_app@db/inferlog")``.
   It may SELECT and INSERT the log tables, UPDATE the one ledger-state row, and make monthly
   partitions through the SECURITY DEFINER function ``inferlog.ensure_partition``. It cannot UPDATE,
   DELETE or TRUNCATE log rows; the triggers refuse those even to the owner and to superusers (also
   under ``session_replication_role = replica``), short of dropping the triggers, which is why the
   owner should not log in and checkpoints go off-box. A role that does not own the schema never
   migrates: it checks that the schema is at least as new as its code and says what to run if not.

Sequencing
----------
``seq`` is not an identity column (sequences burn values on rollback). Every append takes one
transaction-scoped advisory lock, so there is one sequencer per database however many processes
append; it reads the ledger state, assigns the next seqs, COPYs the rows, advances the Merkle compact
range and tiles, and commits. A batch is all or nothing, and seqs become visible in commit order, so
a reader following the seq cursor never misses a row.

Connections come from a small pool. A connection lost mid-call (server restart, ``pg_terminate_backend``)
is retried once on a fresh one; that is safe because appends are idempotent by id (a batch whose
commit landed but whose answer was lost comes back as duplicates with the original seqs). Anything
else raises :class:`~inferlog.errors.StoreUnavailable`, with nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from inferlog.errors import Conflict, IntegrityError, StoreError, StoreUnavailable, UsageError
from inferlog.ledger.merkle import CompactRange
from inferlog.record.ids import is_uuid
from inferlog.record.model import StoredEntry, WrappedKey
from inferlog.record.prepared import Prepared
from inferlog.store import _rollups, _sql
from inferlog.store._rows import (
    COLUMNS,
    KEY_COLUMNS,
    LEDGER_COLUMNS,
    READ_COLUMNS,
    api_key_of,
    attributes_copy,
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
    to_micros,
)
from inferlog.store.forksafe import reset_in_child
from inferlog.store.migrations import postgres as schema
from inferlog.store.migrations.postgres import MIGRATIONS, Migration

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the PostgreSQL store needs psycopg: pip install 'inferlog[postgres]'") from exc

__all__ = ["PostgresStore", "migrate"]

T = TypeVar("T")
Conn = psycopg.Connection[Any]

SCHEMES = ("postgresql", "postgres")
_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"
_COPY_ENTRIES = f"COPY inferlog.entries ({', '.join(COLUMNS)}, attributes) FROM STDIN"
# The id index is filled from the rows just copied, server-side (cheaper than a second COPY).
_INDEX_IDS = (
    "INSERT INTO inferlog.entry_ids (id, seq, ts) "
    "SELECT id, seq, ts FROM inferlog.entries WHERE seq > %s AND seq <= %s"
)
_INSERT_KEY = "INSERT INTO inferlog.entry_keys (id, epoch_ref, subject_ref, blob) VALUES (%s, %s, %s, %s)"
_READ = ", ".join(f"e.{column.strip()}" for column in READ_COLUMNS.split(","))
_LEDGER = ", ".join(
    "id::text" if column.strip() == "id" else column.strip() for column in LEDGER_COLUMNS.split(",")
)
# The verifier's read: every column a read uses, the attributes copy, and what the id index (which
# get(id) goes through) says of each row: '' when it maps this row's id to this seq and ts, else its
# id (noting another ts), NULL when it has no row. One index probe per row, by the unique seq key.
_LEDGER_SQL = (
    f"SELECT {', '.join('e.' + c for c in _LEDGER.split(', '))}, e.attributes::text, "
    "(SELECT CASE WHEN i.id = e.id AND i.ts = e.ts THEN '' WHEN i.ts = e.ts THEN i.id::text "
    "ELSE i.id::text || ' at ts ' || i.ts::text END FROM inferlog.entry_ids i WHERE i.seq = e.seq) "
    "FROM inferlog.entries e WHERE e.seq > %s ORDER BY e.seq LIMIT %s"
)
# Where _row() puts what the append needs again (COLUMNS order, then the attributes copy).
_LOGGED_AT, _TS, _LEAF_HASH = (COLUMNS.index(name) for name in ("logged_at", "ts", "leaf_hash"))
# The statements behind get() and a model query, kept here so tests can EXPLAIN exactly them.
GET_SQL = (
    f"SELECT {_READ} FROM inferlog.entry_ids i "
    "JOIN inferlog.entries e ON e.seq = i.seq AND e.ts = i.ts WHERE i.id = %s"
)
_STORE_OPTIONS = ("app_role",)
# Errors after which the same transaction may simply be run again (appends are idempotent by id).
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def migrate(url: str, *, app_role: str | None = None, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply pending migrations as the URL's (owner) role, granting ``app_role``; return the schema version."""
    conninfo, options = _split_url(url)
    role = app_role or options.get("app_role")
    conn = _connect(conninfo, _redact(url), timeout=10.0)
    with conn:
        return _migrate(conn, _redact(url), migrations, role)


_inherited_pools: list[object] = []  # pools a forked child inherited: never used, closed or collected


class PostgresStore:
    """The Store protocol on PostgreSQL (``postgresql://user@host:port/db``).

    Besides each body it keeps a jsonb copy of the body's attributes (``copies_attributes``), which
    attribute filters use and the verifier checks against the body.

    ``app_role`` (or ``?app_role=`` in the URL) migrates as the URL's role and grants that role;
    ``migrations`` is the schema to reach (tests inject longer lists); ``pool_size`` caps the
    connections; ``timeout`` bounds connecting and waiting for a pooled connection, in seconds.
    """

    copies_attributes = True

    def __init__(
        self,
        url: str,
        *,
        app_role: str | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        pool_size: int = 4,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        conninfo, options = _split_url(url)
        self._where = _redact(url)
        self._timeout = timeout
        self._pool_size = pool_size
        self._closed = False
        self._months: set[dt.date] = set()  # months known to have a partition (after a commit)
        role = app_role or options.get("app_role")
        for attempt in (1, 2):
            conn = _connect(conninfo, self._where, timeout)
            try:
                with conn:
                    self._prepare(conn, migrations, role)
                break
            except StoreUnavailable:
                # The session was lost mid-start (a restart, an administrator ending backends): the
                # schema work is transactional and idempotent, so try once more on a new session.
                if attempt == 2 or not conn.closed:
                    raise
        self._conninfo = conninfo
        self._pool: ConnectionPool[Conn] | None = self._open_pool()
        self._pool_lock = threading.Lock()
        _track_for_fork(self)

    def _prepare(self, conn: Conn, migrations: Sequence[Migration], role: str | None) -> None:
        """Check the schema (migrating it if this role owns it) and make the months ahead."""
        need = schema.latest(migrations)
        version, owner = _installed(conn, self._where)
        if owner and (version < need or role is not None):
            version = _migrate(conn, self._where, migrations, role)
        elif role is not None:
            raise UsageError(
                f"cannot grant to {role!r}: the role in {self._where} does not own the inferlog schema"
            )
        elif version < need:
            raise StoreUnavailable(
                f"the inferlog schema in {self._where} is at version {version}, this inferlog needs "
                f"{need}: run the migrations as the schema's owner "
                "(inferlog.store.postgres.migrate(owner_url, app_role=...))"
            )
        _make_months_ahead(conn)

    def _open_pool(self) -> ConnectionPool[Conn]:
        pool: ConnectionPool[Conn] = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max(1, self._pool_size),
            open=False,
            timeout=self._timeout,
            kwargs=_connect_kwargs(self._conninfo, self._timeout),
            configure=_configure,
            name="inferlog",
        )
        try:
            pool.open(wait=True, timeout=self._timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {self._where}: {exc}") from exc
        return pool

    def _forget_pool_after_fork(self) -> None:
        """In a forked child: the pool's connections are the parent's sessions, its threads are gone.

        It is set aside untouched (closing it would end the parent's sessions; collecting it would run
        its finalizer) and a fresh pool is opened on first use.
        """
        if self._pool is not None:
            _inherited_pools.append(self._pool)
        self._pool = None
        self._pool_lock = threading.Lock()

    def _pool_here(self) -> ConnectionPool[Conn]:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = self._open_pool()
                pool = self._pool
        return pool

    # -- plumbing -----------------------------------------------------------------------------

    def _run(self, action: str, work: Callable[[Conn], T]) -> T:
        """Run ``work`` in one transaction; retry once on a fresh connection if the first was lost."""
        if self._closed:
            raise UsageError("this store is closed")
        for attempt in (1, 2):
            used: Conn | None = None
            try:
                with self._pool_here().connection() as conn:
                    used = conn
                    return work(conn)
            except PoolTimeout as exc:
                raise StoreUnavailable(
                    f"cannot {action} PostgreSQL at {self._where}: no connection within {self._timeout:g}s"
                ) from exc
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                lost = used is None or used.closed  # a broken connection is closed too
                if attempt == 1 and (lost or isinstance(exc, _RETRYABLE)):
                    self._pool_here().check()  # drop the other connections the same outage killed
                    continue
                raise StoreUnavailable(
                    f"cannot {action} PostgreSQL at {self._where}: {_reason(exc)}"
                ) from exc
            except psycopg.Error as exc:
                raise StoreUnavailable(
                    f"cannot {action} PostgreSQL at {self._where}: {_reason(exc)}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def schema_version(self) -> int:
        """The schema version, as the catalog tells any role."""
        return self._run("read from", lambda conn: _installed(conn, self._where)[0])

    # -- writing ------------------------------------------------------------------------------

    def append(self, batch: Sequence[Prepared]) -> list[AppendResult]:
        if self._closed:
            raise UsageError("this store is closed")
        if not batch:
            return []
        logged_at = dt.datetime.now(dt.UTC)
        months = {_month_of(prepared.entry.ts) for prepared in batch}
        results = self._run("write to", lambda conn: self._append(conn, batch, logged_at, months))
        self._months |= months
        return results

    def _append(
        self, conn: Conn, batch: Sequence[Prepared], logged_at: dt.datetime, months: set[dt.date]
    ) -> list[AppendResult]:
        # The one sequencer: held until commit, so the next append reads this one's state.
        conn.execute(_LOCK, (schema.LOCK_NAMESPACE, schema.LOCK_SEQUENCER))
        size, frontier = _one(
            conn, "SELECT size, frontier FROM inferlog.ledger_state WHERE id = 1 FOR UPDATE"
        )
        (top,) = _one(conn, "SELECT coalesce(max(seq), 0) FROM inferlog.entry_ids")
        if top != size:
            raise IntegrityError(
                f"ledger state covers {size} entries but the log holds {top}: "
                "the database was changed outside inferlog; run `inferlog verify`"
            )
        # Partitions first, before this transaction touches entries (making one locks the table).
        for month in sorted(months - self._months):
            conn.execute("SELECT inferlog.ensure_partition(%s)", (month,))
        refused = {i: problem for i, prepared in enumerate(batch) if (problem := _unstorable(prepared))}
        storable = [prepared for i, prepared in enumerate(batch) if i not in refused]
        sorted_results, new = sort_batch(storable, _existing(conn, [p.entry.id for p in storable]), size + 1)
        in_order = iter(sorted_results)
        results = [
            AppendResult(prepared.entry.id, None, "invalid", refused[i]) if i in refused else next(in_order)
            for i, prepared in enumerate(batch)
        ]
        rows = [_row(prepared, seq, logged_at) for seq, prepared in new]
        next_seq = size + 1 + len(rows)
        if rows:
            with conn.cursor() as cur:
                with cur.copy(_COPY_ENTRIES) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(_INDEX_IDS, (size, next_seq - 1))
                if cur.rowcount != len(rows):
                    raise IntegrityError(
                        f"seq {size + 1}..{next_seq - 1} holds {cur.rowcount} entries instead of {len(rows)}: "
                        "the database was changed outside inferlog; run `inferlog verify`"
                    )
            keys = [
                (p.entry.id, p.key.epoch_ref, p.key.subject_ref, p.key.blob)
                for _, p in new
                if p.key is not None
            ]
            if keys:
                with conn.cursor() as cur:
                    cur.executemany(_INSERT_KEY, keys)
            self._extend_tree(conn, size, frontier, [row[_LEAF_HASH] for row in rows])
        return results

    @staticmethod
    def _extend_tree(conn: Conn, old_size: int, frontier: bytes, leaf_hashes: list[bytes]) -> None:
        """Advance the compact range and write completed tiles, in the append's transaction."""
        tree = CompactRange.from_bytes(bytes(frontier))
        if tree.size != old_size:
            raise IntegrityError(
                f"the stored compact range covers {tree.size} leaves but the ledger state says {old_size}"
            )
        tiles = tree.extend_with_tiles(leaf_hashes)  # the tiles fall out of the merges
        if tiles:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO inferlog.tiles (level, idx, hash) VALUES (%s, %s, %s)", tiles)
        conn.execute(
            "UPDATE inferlog.ledger_state SET size = %s, frontier = %s WHERE id = 1",
            (tree.size, tree.to_bytes()),
        )

    # -- payloads: keys, purge ----------------------------------------------------------------

    def entry_keys(self, ids: Sequence[str]) -> dict[str, WrappedKey]:
        wanted = [i for i in ids if is_uuid(i)]
        if not wanted:
            return {}
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT id::text, epoch_ref, subject_ref, blob FROM inferlog.entry_keys WHERE id = ANY(%s::uuid[])",
                (wanted,),
            ).fetchall(),
        )
        return {i: WrappedKey(epoch_ref=e, subject_ref=s, blob=bytes(b)) for i, e, s, b in rows}

    def keys_wrapped_by(self, ref: str, after: str = "", limit: int = 1000) -> list[tuple[str, WrappedKey]]:
        start = after or "00000000-0000-0000-0000-000000000000"
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT id::text, epoch_ref, subject_ref, blob FROM inferlog.entry_keys "
                "WHERE id > %s::uuid AND (epoch_ref = %s OR subject_ref = %s) ORDER BY id LIMIT %s",
                (start, ref, ref, limit),
            ).fetchall(),
        )
        return [(i, WrappedKey(epoch_ref=e, subject_ref=s, blob=bytes(b))) for i, e, s, b in rows]

    def rewrap(self, keys: Sequence[tuple[str, WrappedKey]]) -> None:
        def update(conn: Conn) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE inferlog.entry_keys SET epoch_ref = %s, subject_ref = %s, blob = %s WHERE id = %s",
                    [(k.epoch_ref, k.subject_ref, k.blob, entry_id) for entry_id, k in keys],
                )

        self._run("write to", update)

    def purge(self, purge: Purge, *, dry_run: bool = False) -> PurgeResult:
        clause, params = _sql.purge_where(purge, DIALECT, id_text="id::text")

        def run(conn: Conn) -> PurgeResult:
            if dry_run:
                count, first, last = _one(
                    conn, f"SELECT count(*), min(seq), max(seq) FROM inferlog.entries WHERE {clause}", params
                )
                return PurgeResult(count, first, last)
            # One statement decides what goes (RETURNING), so a concurrent append cannot skew it.
            rows = conn.execute(
                # The trigger also clears the attributes copy and the identifiers copied from the body.
                f"UPDATE inferlog.entries SET body = NULL, salt = NULL WHERE {clause} RETURNING id, seq",
                params,
            ).fetchall()
            if not rows:
                return PurgeResult(0)
            conn.execute("DELETE FROM inferlog.entry_keys WHERE id = ANY(%s)", ([row[0] for row in rows],))
            seqs = [row[1] for row in rows]
            return PurgeResult(len(rows), min(seqs), max(seqs))

        try:
            return self._run("purge in", run)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
                raise StoreError(
                    "purging payloads needs the database owner's role (the application role may only "
                    f"append and read): run retention and erasure with the owner's URL ({exc.__cause__})"
                ) from exc
            raise

    def add_checkpoint(self, size: int, root: bytes, note: bytes) -> None:
        self._run(
            "write to",
            lambda conn: conn.execute(
                "INSERT INTO inferlog.checkpoints (size, root, note, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (size) DO NOTHING",
                (size, root, note.decode("utf-8"), dt.datetime.now(dt.UTC)),
            ),
        )

    # -- the ledger ---------------------------------------------------------------------------

    def tree(self) -> CompactRange:
        (frontier,) = self._run(
            "read from", lambda conn: _one(conn, "SELECT frontier FROM inferlog.ledger_state WHERE id = 1")
        )
        return CompactRange.from_bytes(bytes(frontier))

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._run("read from", lambda conn: _leaf_hashes(conn, start, end))

    def tile_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        return self._run("read from", lambda conn: _tile_hashes(conn, level, start, end))

    def ledger_rows(self, after: int = 0, limit: int = 10_000) -> list[LedgerRow]:
        def read(conn: Conn) -> list[tuple[Any, ...]]:
            conn.execute("SET LOCAL jit = off")  # compiling the per-row index probe costs more than it saves
            return conn.execute(_LEDGER_SQL, (after, limit)).fetchall()

        rows = self._run("read from", read)
        return [
            LedgerRow(seq, id_, kind, system, to_micros(ts), name, version, status,
                      body.encode("utf-8") if body is not None else None,
                      bytes(salt) if salt is not None else None, bytes(leaf), bytes(leaf_hash),
                      latency, request, trace, session, subject, inference, actor, attributes, indexed)
            for (seq, id_, kind, system, ts, name, version, status, body, salt, leaf, leaf_hash,
                 latency, request, trace, session, subject, inference, actor, attributes, indexed) in rows
        ]  # fmt: skip

    def id_index_size(self) -> int:
        """How many rows the id index holds (the verifier compares it with the entries it read)."""
        (count,) = self._run("read from", lambda conn: _one(conn, "SELECT count(*) FROM inferlog.entry_ids"))
        return int(count)

    def id_index_strays(self, limit: int = 20) -> list[tuple[str, int]]:
        """Id index rows (id, seq) that no entry matches by id, seq and ts: for the verifier to name."""
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT i.id::text, i.seq FROM inferlog.entry_ids i WHERE NOT EXISTS ("
                "SELECT 1 FROM inferlog.entries e WHERE e.seq = i.seq AND e.ts = i.ts AND e.id = i.id"
                ") ORDER BY i.seq LIMIT %s",
                (limit,),
            ).fetchall(),
        )
        return [(entry_id, int(seq)) for entry_id, seq in rows]

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT size, root, note, created_at FROM inferlog.checkpoints ORDER BY size"
            ).fetchall(),
        )
        return [
            StoredCheckpoint(size, bytes(root), note.encode("utf-8"), created.astimezone(dt.UTC))
            for size, root, note, created in rows
        ]

    # -- API keys -----------------------------------------------------------------------------

    def put_api_key(self, key: ApiKey) -> None:
        def insert(conn: Conn) -> None:
            try:
                conn.execute(
                    "INSERT INTO inferlog.api_keys (kid, secret_hash, role, systems, name, created_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (key.kid, key.secret_hash, key.role, list(key.systems), key.name, key.created_at),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"an API key with kid {key.kid!r} already exists") from exc

        self._run("write to", insert)

    def get_api_key(self, kid: str) -> ApiKey | None:
        row = self._run(
            "read from",
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM inferlog.api_keys WHERE kid = %s", (kid,)
            ).fetchone(),
        )
        return _api_key(row) if row else None

    def api_keys(self) -> list[ApiKey]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM inferlog.api_keys ORDER BY created_at, kid"
            ).fetchall(),
        )
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, kid: str, at: dt.datetime) -> bool:
        def revoke(conn: Conn) -> bool:
            cursor = conn.execute(
                "UPDATE inferlog.api_keys SET revoked_at = %s WHERE kid = %s AND revoked_at IS NULL",
                (at, kid),
            )
            return cursor.rowcount == 1

        return self._run("write to", revoke)

    # -- monitor rollups (derived data, see inferlog.monitor) ----------------------------------

    def rollup_state(self) -> RollupState:
        row = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT value FROM inferlog.monitor_values WHERE name = %s", (_rollups.STATE,)
            ).fetchone(),
        )
        return _rollups.decode_state(row[0] if row else None)

    def rollups(self, where: RollupFilter) -> list[Rollup]:
        sql, params = _rollups.select_sql(where, "inferlog.monitor_rollups", "%s")
        rows = self._run("read from", lambda conn: conn.execute(sql, params).fetchall())
        return [_rollups.rollup_of(row) for row in rows]

    def rollups_at(self, keys: Sequence[RollupKey]) -> list[Rollup]:
        def read(conn: Conn) -> list[Rollup]:
            found: list[Rollup] = []
            for start in range(0, len(keys), _rollups.KEY_CHUNK):
                sql, params = _rollups.keys_sql(
                    keys[start : start + _rollups.KEY_CHUNK], "inferlog.monitor_rollups", "%s"
                )
                found.extend(_rollups.rollup_of(row) for row in conn.execute(sql, params))
            return found

        return self._run("read from", read) if keys else []

    def put_rollups(
        self, rows: Sequence[Rollup], *, expect: RollupState, cursor: int, drop: Sequence[RollupKey] = ()
    ) -> RollupState:
        state = RollupState(cursor, expect.generation + 1)

        def write(conn: Conn) -> None:
            # The state row is the lock: a second monitor waits here, then sees the new generation.
            conn.execute(
                "INSERT INTO inferlog.monitor_values (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (_rollups.STATE, _rollups.encode_state(RollupState())),
            )
            (value,) = _one(
                conn,
                "SELECT value FROM inferlog.monitor_values WHERE name = %s FOR UPDATE",
                (_rollups.STATE,),
            )
            if _rollups.decode_state(value) != expect:
                raise Conflict("the monitor's rollups changed meanwhile (another monitor folded first)")
            with conn.cursor() as cur:
                if drop:
                    cur.executemany(
                        "DELETE FROM inferlog.monitor_rollups WHERE level = %s AND system = %s AND model = %s "
                        "AND version = %s AND bucket = %s",
                        [tuple(key) for key in drop],
                    )
                if rows:
                    cur.executemany(
                        f"INSERT INTO inferlog.monitor_rollups ({_rollups.ROLLUP_COLUMNS}) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (level, system, model, version, bucket) "
                        "DO UPDATE SET payloads = excluded.payloads, data = excluded.data",
                        [_rollups.row_values(row) for row in rows],
                    )
            conn.execute(
                "UPDATE inferlog.monitor_values SET value = %s WHERE name = %s",
                (_rollups.encode_state(state), _rollups.STATE),
            )

        self._run("write to", write)
        return state

    def clear_rollups(self) -> None:
        def clear(conn: Conn) -> None:
            row = conn.execute(
                "SELECT value FROM inferlog.monitor_values WHERE name = %s FOR UPDATE", (_rollups.STATE,)
            ).fetchone()
            generation = _rollups.decode_state(row[0] if row else None).generation
            conn.execute("DELETE FROM inferlog.monitor_rollups")
            conn.execute(
                "INSERT INTO inferlog.monitor_values (name, value) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (_rollups.STATE, _rollups.encode_state(RollupState(0, generation + 1))),
            )

        self._run("write to", clear)

    def monitor_value(self, name: str) -> bytes | None:
        row = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT value FROM inferlog.monitor_values WHERE name = %s", (name,)
            ).fetchone(),
        )
        return bytes(row[0]) if row else None

    def put_monitor_value(self, name: str, value: bytes | None) -> None:
        if name == _rollups.STATE:
            raise UsageError(f"{name!r} is the monitor's own state")

        def write(conn: Conn) -> None:
            if value is None:
                conn.execute("DELETE FROM inferlog.monitor_values WHERE name = %s", (name,))
            else:
                conn.execute(
                    "INSERT INTO inferlog.monitor_values (name, value) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )

        self._run("write to", write)

    def monitor_values(self, prefix: str) -> list[str]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT name FROM inferlog.monitor_values WHERE left(name, %s) = %s AND name <> %s ORDER BY name",
                (len(prefix), prefix, _rollups.STATE),
            ).fetchall(),
        )
        return [row[0] for row in rows]

    def purged_rows(self, first_seq: int, last_seq: int) -> list[PurgedRow]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT system, model_name, model_version, ts FROM inferlog.entries "
                "WHERE seq BETWEEN %s AND %s AND body IS NULL AND kind = 'inference' "
                "UNION SELECT i.system, i.model_name, i.model_version, i.ts FROM inferlog.entries f "
                "JOIN inferlog.entry_ids x ON x.id = f.inference_id::uuid "
                "JOIN inferlog.entries i ON i.seq = x.seq AND i.ts = x.ts "
                "WHERE f.seq BETWEEN %s AND %s AND f.body IS NULL AND f.kind = 'feedback'",
                (first_seq, last_seq, first_seq, last_seq),
            ).fetchall(),
        )
        return [PurgedRow(system, model or "", version or "", ts) for system, model, version, ts in rows]

    # -- reading ------------------------------------------------------------------------------

    def get(self, entry_id: str) -> StoredEntry | None:
        if not is_uuid(entry_id):
            return None
        row = self._run("read from", lambda conn: conn.execute(GET_SQL, (entry_id,)).fetchone())
        return _stored(row) if row else None

    def size(self) -> int:
        (size,) = self._run(
            "read from", lambda conn: _one(conn, "SELECT size FROM inferlog.ledger_state WHERE id = 1")
        )
        return int(size)

    def scan(self, after: int = 0, limit: int = 1000) -> list[StoredEntry]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                f"SELECT {READ_COLUMNS} FROM inferlog.entries WHERE seq > %s ORDER BY seq LIMIT %s",
                (after, limit),
            ).fetchall(),
        )
        return [_stored(row) for row in rows]

    def fold_scan(self, after: int = 0, limit: int = 1000) -> list[FoldRow]:
        rows = self._run(
            "read from",
            lambda conn: conn.execute(
                "SELECT seq, kind, system, (extract(epoch FROM ts) * 1000000)::bigint, model_name, "
                "model_version, status, latency_ms, body FROM inferlog.entries WHERE seq > %s "
                "ORDER BY seq LIMIT %s",
                (after, limit),
            ).fetchall(),
        )
        return list(map(FoldRow._make, rows))

    def query(self, query: Query) -> Page:
        sql, params = query_sql(query)
        rows = self._run("read from", lambda conn: conn.execute(sql, params).fetchall())
        return _sql.page([_stored(row) for row in rows], query.limit)

    def stats(self, query: Query | None = None) -> dict[str, Any]:
        def run(conn: Conn) -> dict[str, Any]:
            (size,) = _one(conn, "SELECT size FROM inferlog.ledger_state WHERE id = 1")
            return _sql.stats(
                lambda sql, params: conn.execute(sql, params).fetchall(), query or Query(), DIALECT, int(size)
            )

        return self._run("read from", run)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            self._pool.close()


_track_for_fork = reset_in_child(PostgresStore._forget_pool_after_fork)

# -- SQL building --------------------------------------------------------------------------------


def _attributes(attributes: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    # jsonb containment of scalars is equality of JSON values: 3 matches 3 (and 3.0), "3" does not.
    for key, wanted in attributes.items():
        if isinstance(wanted, float) and not math.isfinite(wanted):
            raise UsageError(f"attribute {key!r} must be a finite number, got {wanted!r}")
    return ["attributes @> %s::jsonb"], [json.dumps(dict(attributes))]


DIALECT = _sql.Dialect(
    table="inferlog.entries",
    mark="%s",
    any_of=lambda column, values: (f"{column} = ANY(%s)", [list(values)]),
    bind_ts=lambda value: value,
    read_ts=lambda value: value,
    attributes=_attributes,
)


def query_sql(query: Query) -> tuple[str, list[Any]]:
    """The SELECT that answers ``query`` (one row more than the page, to know whether more follow)."""
    return _sql.page_sql(query, DIALECT, READ_COLUMNS)


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    return api_key_of(row, tuple, lambda at: at.astimezone(dt.UTC))  # systems as text[], times as timestamptz


# -- rows ----------------------------------------------------------------------------------------


def _row(prepared: Prepared, seq: int, logged_at: dt.datetime) -> list[Any]:
    """COLUMNS plus the attributes copy, with timestamps as datetimes (timestamptz columns)."""
    row = list(row_of(prepared, seq, 0))
    row[_LOGGED_AT] = logged_at
    row[_TS] = prepared.entry.ts
    row.append(attributes_copy(prepared.body))  # what SQLite's json_extract sees in the body
    return row


def _unstorable(prepared: Prepared) -> str | None:
    """Why PostgreSQL cannot keep this entry as it is, or None."""
    entry = prepared.entry
    if not is_uuid(entry.id):
        return "id must be a lowercase hyphenated UUID"
    for name in ("system", "actor", "request_id", "trace_id", "session_id", "subject", "inference_id"):
        value = getattr(entry, name, None)
        if isinstance(value, str) and "\x00" in value:
            return f"field `{name}` holds U+0000, which PostgreSQL text cannot store"
    model = getattr(entry, "model", None)
    if model is not None and ("\x00" in model.name or "\x00" in model.version):
        return "field `model` holds U+0000, which PostgreSQL text cannot store"
    return None


def _existing(conn: Conn, ids: list[str]) -> dict[str, tuple[int, bytes | None]]:
    """Entries already in the log among ``ids``: id -> (seq, body)."""
    if not ids:
        return {}
    found = conn.execute(
        "SELECT id::text, seq, ts FROM inferlog.entry_ids WHERE id = ANY(%s::uuid[])", (ids,)
    ).fetchall()
    if not found:
        return {}
    bodies = dict(
        conn.execute(
            "SELECT seq, body FROM inferlog.entries WHERE seq = ANY(%s) AND ts = ANY(%s)",
            ([seq for _, seq, _ in found], [ts for _, _, ts in found]),
        ).fetchall()
    )
    return {
        entry_id: (seq, bodies[seq].encode("utf-8") if bodies.get(seq) is not None else None)
        for entry_id, seq, _ in found
    }


def _stored(row: tuple[Any, ...]) -> StoredEntry:
    seq, logged_at, body, leaf, leaf_hash = row
    return stored_of(seq, to_micros(logged_at), body, bytes(leaf), bytes(leaf_hash))


def _leaf_hashes(conn: Conn, start: int, end: int) -> list[bytes]:
    rows = conn.execute(
        "SELECT leaf_hash FROM inferlog.entries WHERE seq > %s AND seq <= %s ORDER BY seq", (start, end)
    )
    return [bytes(row[0]) for row in rows]


def _tile_hashes(conn: Conn, level: int, start: int, end: int) -> list[bytes]:
    rows = conn.execute(
        "SELECT hash FROM inferlog.tiles WHERE level = %s AND idx >= %s AND idx < %s ORDER BY idx",
        (level, start, end),
    )
    return [bytes(row[0]) for row in rows]


def _one(conn: Conn, sql: str, params: Sequence[Any] | None = None) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise IntegrityError(f"the inferlog schema is incomplete: no row for {sql!r}")
    return tuple(row)


def _month_of(ts: dt.datetime) -> dt.date:
    utc = ts.astimezone(dt.UTC)
    return dt.date(utc.year, utc.month, 1)


# -- connecting ----------------------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL without inferlog's own query options, and those options."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"not a PostgreSQL URL: {url!r} (write postgresql://user@host:port/database)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {key: value for key, value in query if key in _STORE_OPTIONS}
    theirs = [(key, value) for key, value in query if key not in _STORE_OPTIONS]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(theirs))), ours


def _redact(url: str) -> str:
    """The URL without its password and query, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (
        (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _connect_kwargs(conninfo: str, timeout: float) -> dict[str, Any]:
    params = dict(parse_qsl(urlsplit(conninfo).query))
    kwargs: dict[str, Any] = {"autocommit": False}
    kwargs["connect_timeout"] = params.get("connect_timeout", str(max(2, math.ceil(timeout))))
    kwargs["application_name"] = params.get("application_name", "inferlog")
    # Timestamps come back in UTC whatever the server's default.
    kwargs["options"] = (params.get("options", "") + " -c TimeZone=UTC").strip()
    return kwargs


def _configure(conn: Conn) -> None:
    # Sequencing relies on each statement seeing what committed before it (see module docstring).
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED


def _connect(conninfo: str, where: str, timeout: float) -> Conn:
    kwargs = _connect_kwargs(conninfo, timeout)
    kwargs["autocommit"] = True
    try:
        return psycopg.connect(conninfo, **kwargs)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {where}: {_reason(exc)}") from exc


def _installed(conn: Conn, where: str) -> tuple[int, bool]:
    try:
        return schema.installed_version(conn)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot read the inferlog schema in {where}: {_reason(exc)}") from exc


def _migrate(conn: Conn, where: str, wanted: Sequence[Migration], role: str | None) -> int:
    try:
        return schema.apply(conn, wanted, app_role=role)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot migrate the inferlog schema in {where}: {_reason(exc)}") from exc


def _make_months_ahead(conn: Conn) -> None:
    """Best effort: partitions for this month and the next three, so appends rarely have to make one.

    Making a partition locks the entries table; if a long reader holds it, skip rather than hang the
    open (the append path makes any missing month itself).
    """
    try:
        with conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute(
                "SELECT inferlog.ensure_partition("
                "(date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month')::date) "
                "FROM generate_series(0, 3) AS n"
            )
    except psycopg.errors.LockNotAvailable:
        pass
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot make monthly partitions: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
