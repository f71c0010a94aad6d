"""The PostgreSQL store: the contract suite on a real server, plus what only PostgreSQL does.

Every test gets a fresh database. The contract runs as a non-owner application role after the
owner migrated, which proves the role's grants suffice; the rest pokes at partitions, triggers,
grants, migrations, the query planner and lost connections.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from inferlog.errors import StoreError, StoreUnavailable, UnknownStore, UsageError
from inferlog.ledger.merkle import root_of
from inferlog.store import open_store
from inferlog.store.base import Purge, Query
from inferlog.store.migrations.postgres import MIGRATIONS, latest
from inferlog.store.postgres import GET_SQL, PostgresStore, migrate, query_sql
from inferlog.testing import make_record, prepare
from tests.fix_postgres import as_role
from tests.helpers import inference, present, wait_for
from tests.store.contract import StoreContract

Connect = Callable[..., psycopg.Connection[Any]]
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_url: str, pg_app_role: str) -> Iterator[PostgresStore]:
        migrate(pg_url, app_role=pg_app_role)
        store = PostgresStore(as_role(pg_url, pg_app_role))
        yield store
        store.close()

    @pytest.fixture
    def admin(self, store: PostgresStore, pg_url: str) -> Iterator[PostgresStore]:
        owner = PostgresStore(pg_url)
        yield owner
        owner.close()


@pytest.fixture
def owner_store(pg_url: str) -> Iterator[PostgresStore]:
    """A store opened by the superuser, who migrates and owns the schema."""
    store = PostgresStore(pg_url)
    yield store
    store.close()


@pytest.fixture
def app_store(pg_url: str, pg_app_role: str) -> Iterator[PostgresStore]:
    """A store opened as the application role, after the owner migrated and granted it."""
    migrate(pg_url, app_role=pg_app_role)
    store = PostgresStore(as_role(pg_url, pg_app_role))
    yield store
    store.close()


def _plan_nodes(conn: psycopg.Connection[Any], sql: str, params: list[Any] | tuple[Any, ...]) -> list[str]:
    """``type:index`` of each plan node that actually ran (pruned partitions never do), depth first."""
    ((plan,),) = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchall()

    def walk(node: dict[str, Any]) -> Iterator[str]:
        if node.get("Actual Loops", 0) > 0:
            yield f"{node['Node Type']}:{node.get('Index Name', '')}"
        for child in node.get("Plans", []):
            yield from walk(child)

    return list(walk(plan[0]["Plan"]))


def _store_backends(conn: psycopg.Connection[Any], *, waiting_on: str | None = None) -> list[int]:
    rows = conn.execute(
        "SELECT pid, wait_event_type, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'inferlog' AND pid <> pg_backend_pid()"
    ).fetchall()
    return [
        pid
        for pid, wait, query in rows
        if waiting_on is None or (wait == "Lock" and query.startswith(waiting_on))
    ]


# -- planner ---------------------------------------------------------------------------------------


def test_lookups_by_id_and_model_use_indexes(owner_store: PostgresStore, pg_connect: Connect) -> None:
    """With realistic statistics, get(id) and a model+version+time query are answered from indexes."""
    bulk = [make_record(ts=T0 + dt.timedelta(seconds=i)) for i in range(3000)]
    rare = make_record(model={"name": "rare", "version": "2"}, ts=T0 + dt.timedelta(hours=2))
    for start in range(0, len(bulk), 1000):
        owner_store.append(prepare(*bulk[start : start + 1000]))
    owner_store.append(prepare(rare))
    conn = pg_connect()
    conn.execute("ANALYZE")
    by_id = _plan_nodes(conn, GET_SQL, (rare.id,))
    sql, params = query_sql(Query(model="rare", version="2", since=T0, until=T0 + dt.timedelta(days=1)))
    by_model = _plan_nodes(conn, sql, params)
    for plan in (by_id, by_model):
        assert not any(node.startswith("Seq Scan") for node in plan), plan
    assert "Index Scan:entry_ids_pkey" in by_id or "Index Only Scan:entry_ids_pkey" in by_id, by_id
    assert any("model_name_model_version_ts" in node for node in by_model), by_model


# -- append-only -----------------------------------------------------------------------------------


def test_app_role_has_exactly_the_documented_grants(
    app_store: PostgresStore, pg_connect: Connect, pg_app_role: str
) -> None:
    """The app role may SELECT/INSERT log tables, UPDATE the ledger state and revoke keys, and maintain the
    monitor's derived tables; nothing else."""
    conn = pg_connect()
    rows = conn.execute(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = %s ORDER BY 1, 2",
        (pg_app_role,),
    ).fetchall()
    expected = {
        (table, privilege)
        for table in ("api_keys", "checkpoints", "entries", "entry_ids", "entry_keys", "tiles")
        for privilege in ("INSERT", "SELECT")
    } | {("ledger_state", "INSERT"), ("ledger_state", "SELECT"), ("ledger_state", "UPDATE")}
    expected |= {
        (table, privilege)
        for table in ("monitor_rollups", "monitor_values")
        for privilege in ("DELETE", "INSERT", "SELECT", "UPDATE")
    }
    assert set(rows) == expected
    updatable = conn.execute(
        "SELECT table_name, column_name FROM information_schema.column_privileges "
        "WHERE grantee = %s AND privilege_type = 'UPDATE' "
        "AND table_name NOT IN ('ledger_state', 'monitor_rollups', 'monitor_values')",
        (pg_app_role,),
    ).fetchall()
    assert updatable == [("api_keys", "revoked_at")]  # a key can be revoked, nothing else changes
    (can_run,) = conn.execute(
        "SELECT has_function_privilege(%s, 'inferlog.ensure_partition(date)', 'EXECUTE')", (pg_app_role,)
    ).fetchone()  # type: ignore[misc]
    (public_can_run,) = conn.execute(
        "SELECT has_function_privilege('public', 'inferlog.ensure_partition(date)', 'EXECUTE')"
    ).fetchone()  # type: ignore[misc]
    assert (can_run, public_can_run) == (True, False)


def test_app_role_cannot_update_delete_or_truncate(
    app_store: PostgresStore, pg_connect: Connect, pg_app_role: str
) -> None:
    """The application role is refused UPDATE, DELETE and TRUNCATE on log rows, partitions included."""
    app_store.append(prepare(make_record(ts=T0)))
    conn = pg_connect(pg_app_role)
    for statement in (
        "UPDATE inferlog.entries SET model_version = 'forged'",
        "UPDATE inferlog.entries SET body = NULL, salt = NULL",
        "DELETE FROM inferlog.entries",
        "TRUNCATE inferlog.entries",
        "DELETE FROM inferlog.entries_2026_03",
        "DELETE FROM inferlog.entry_ids",
        "TRUNCATE inferlog.checkpoints",
        "DELETE FROM inferlog.tiles",
        "DELETE FROM inferlog.ledger_state",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement)
    assert app_store.size() == 1


@pytest.mark.parametrize("replication_role", ["origin", "replica"])
def test_triggers_stop_even_the_superuser(
    owner_store: PostgresStore, pg_connect: Connect, replication_role: str
) -> None:
    """UPDATE, DELETE and TRUNCATE of log rows fail for a superuser too, also with replication triggers off."""
    owner_store.append(prepare(make_record(ts=T0)))
    owner_store.add_checkpoint(1, owner_store.tree().root(), b"note\n")
    conn = pg_connect()
    conn.execute(f"SET session_replication_role = {replication_role}")
    for statement in (
        "UPDATE inferlog.entries SET model_version = 'forged'",
        "UPDATE inferlog.entries SET body = '{}'",
        "UPDATE inferlog.entries SET body = NULL",  # a purge clears body and salt together
        "UPDATE inferlog.entries SET body = NULL, salt = NULL, actor = 'x'",
        "UPDATE inferlog.entries SET body = NULL, salt = NULL, subject = 'someone-else'",
        "DELETE FROM inferlog.entries",
        "DELETE FROM inferlog.entries_2026_03",
        "TRUNCATE inferlog.entries",
        "TRUNCATE inferlog.entries_2026_03",
        "TRUNCATE inferlog.entries_default",
        "UPDATE inferlog.entry_ids SET seq = 7",
        "DELETE FROM inferlog.entry_ids",
        "TRUNCATE inferlog.entry_ids",
        "DELETE FROM inferlog.checkpoints",
        "TRUNCATE inferlog.checkpoints",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement)
    (count,) = conn.execute("SELECT count(*) FROM inferlog.entries WHERE body IS NOT NULL").fetchone()  # type: ignore[misc]
    assert count == 1


def test_purge_clears_body_salt_and_attributes(owner_store: PostgresStore, pg_connect: Connect) -> None:
    """The owner may purge (body and salt to NULL); the searchable attributes go too, the leaf stays."""
    record = make_record(ts=T0, attributes={"region": "eu"})
    owner_store.append(prepare(record))
    conn = pg_connect()
    conn.execute("UPDATE inferlog.entries SET body = NULL, salt = NULL")
    (attributes,) = conn.execute("SELECT attributes FROM inferlog.entries").fetchone()  # type: ignore[misc]
    assert attributes is None
    got = owner_store.get(record.id)
    assert got is not None
    assert got.purged
    assert inference(got.entry).model.version == "1.0.0"  # rebuilt from the leaf
    assert owner_store.query(Query(attributes={"region": "eu"})).entries == []
    assert owner_store.ledger_rows()[0].salt is None


# -- partitions ------------------------------------------------------------------------------------


def test_rows_land_in_their_month_and_far_months_get_a_partition(
    owner_store: PostgresStore, pg_connect: Connect
) -> None:
    """Each entry lands in its UTC month's partition, made on demand even centuries ahead."""
    late_utc = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # Feb in UTC
    records = [
        make_record(ts=dt.datetime(2026, 1, 15, tzinfo=dt.UTC)),
        make_record(ts=late_utc),
        make_record(ts=T0),
        make_record(ts=dt.datetime(2999, 5, 1, tzinfo=dt.UTC)),
    ]
    owner_store.append(prepare(*records))
    conn = pg_connect()
    rows = conn.execute("SELECT seq, tableoid::regclass::text FROM inferlog.entries ORDER BY seq").fetchall()
    assert rows == [
        (1, "inferlog.entries_2026_01"),
        (2, "inferlog.entries_2026_02"),
        (3, "inferlog.entries_2026_03"),
        (4, "inferlog.entries_2999_05"),
    ]
    (triggers,) = conn.execute(
        "SELECT array_agg(tgname || ':' || tgenabled::text ORDER BY tgname) FROM pg_trigger "
        "WHERE tgrelid = 'inferlog.entries_2999_05'::regclass"
    ).fetchone()  # type: ignore[misc]
    assert triggers == ["entries_append_only:A", "entries_no_truncate:A"]


def test_month_already_in_default_partition_stays_there(
    owner_store: PostgresStore, pg_connect: Connect
) -> None:
    """ensure_partition leaves a month whose rows already sit in the default partition where it is."""
    conn = pg_connect()
    with conn.transaction(force_rollback=True):
        conn.execute(
            "INSERT INTO inferlog.entries_default (seq, id, kind, system, ts, logged_at, leaf, leaf_hash) "
            "VALUES (999, gen_random_uuid(), 'inference', 's', '2400-01-02Z', now(), '', '')"
        )
        (where,) = conn.execute("SELECT inferlog.ensure_partition('2400-01-20')").fetchone()  # type: ignore[misc]
        assert where == "entries_default"
    (made,) = conn.execute("SELECT inferlog.ensure_partition('2400-01-20')").fetchone()  # type: ignore[misc]
    assert made == "entries_2400_01"


def test_dedup_holds_across_partitions(owner_store: PostgresStore, pg_connect: Connect) -> None:
    """The id index, not the partitioned table, dedups: an id dated in another month adds no row to either.

    (That such an id is a conflict is in the contract suite.)
    """
    record = make_record(ts=T0)
    owner_store.append(prepare(record))
    moved = make_record(id=record.id, ts=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    assert owner_store.append(prepare(moved))[0].status == "conflict"
    conn = pg_connect()
    (entries, ids) = conn.execute(
        "SELECT (SELECT count(*) FROM inferlog.entries), (SELECT count(*) FROM inferlog.entry_ids)"
    ).fetchone()  # type: ignore[misc]
    assert (entries, ids) == (1, 1)


def test_entries_postgres_cannot_hold_are_invalid_not_fatal(owner_store: PostgresStore) -> None:
    """A NUL character in an indexed text field refuses that entry alone; the rest of the batch is kept."""
    bad = make_record(request_id="r\x00")
    good = make_record()
    results = owner_store.append(prepare(bad, good))
    assert [(r.status, r.seq) for r in results] == [("invalid", None), ("new", 1)]
    assert "U+0000" in (results[0].reason or "")


# -- migrations ------------------------------------------------------------------------------------

CURRENT = latest()
V2 = (
    CURRENT + 1,
    "checkpoint cosignatures",
    "ALTER TABLE inferlog.checkpoints ADD COLUMN cosigs text; CREATE TABLE inferlog.v2_marker (x int)",
)


def test_migrate_from_empty_is_recorded_and_idempotent(pg_url: str, pg_connect: Connect) -> None:
    """Migrating an empty database records every version; migrating again changes nothing."""
    assert migrate(pg_url) == CURRENT
    assert migrate(pg_url) == CURRENT
    conn = pg_connect()
    assert conn.execute("SELECT version, name FROM inferlog._migrations ORDER BY 1").fetchall() == [
        (version, name) for version, name, _ in MIGRATIONS
    ]
    (partitions,) = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'inferlog.entries'::regclass"
    ).fetchone()  # type: ignore[misc]
    assert partitions == 5  # default + this month + three ahead


def test_upgrade_from_v1_to_an_injected_v2_keeps_data(
    pg_url: str, pg_app_role: str, pg_connect: Connect
) -> None:
    """A current database with entries upgrades in place to an injected next version, keeping every entry."""
    store = PostgresStore(pg_url, app_role=pg_app_role)
    records = [make_record() for _ in range(3)]
    store.append(prepare(*records))
    root = store.tree().root()
    store.close()
    app_url = as_role(pg_url, pg_app_role)
    with pytest.raises(StoreUnavailable, match=f"version {CURRENT}, this inferlog needs {CURRENT + 1}"):
        PostgresStore(app_url, migrations=[*MIGRATIONS, V2])
    store = PostgresStore(pg_url, migrations=[*MIGRATIONS, V2])
    try:
        assert store.schema_version() == CURRENT + 1
        assert store.size() == 3
        assert store.tree().root() == root
        assert store.get(records[1].id) is not None
    finally:
        store.close()
    conn = pg_connect()
    assert [v for (v,) in conn.execute("SELECT version FROM inferlog._migrations ORDER BY 1")] == [
        *range(1, CURRENT + 2)
    ]
    assert conn.execute("SELECT to_regclass('inferlog.v2_marker')::text").fetchone() == (
        "inferlog.v2_marker",
    )
    for known in (MIGRATIONS, [*MIGRATIONS, V2]):  # older code runs on a newer schema; current code too
        store = PostgresStore(app_url, migrations=known)
        try:
            assert store.append(prepare(make_record()))[0].status == "new"
        finally:
            store.close()


def test_only_the_owner_migrates_or_grants(pg_url: str, pg_app_role: str) -> None:
    """The app role cannot create the schema, nor grant itself more."""
    app_url = as_role(pg_url, pg_app_role)
    with pytest.raises(StoreUnavailable, match="cannot migrate"):
        PostgresStore(app_url)
    migrate(pg_url, app_role=pg_app_role)
    with pytest.raises(UsageError, match="does not own"):
        PostgresStore(app_url, app_role=pg_app_role)


# -- URLs and outages ------------------------------------------------------------------------------


def test_urls_schemes_and_options(pg_url: str, pg_app_role: str) -> None:
    """Both postgresql:// and postgres:// open the store; ?app_role= grants that role on open."""
    store = open_store(pg_url.replace("postgresql://", "postgres://", 1) + f"?app_role={pg_app_role}")
    try:
        assert isinstance(store, PostgresStore)
        assert store.append(prepare(make_record()))[0].seq == 1
    finally:
        store.close()
    app = open_store(as_role(pg_url, pg_app_role))
    try:
        assert app.size() == 1
    finally:
        app.close()
    with pytest.raises(UnknownStore, match="postgresql://"):
        open_store("mysql://localhost/x")


def test_unreachable_server_is_store_unavailable() -> None:
    """A server that refuses connections fails the open with StoreUnavailable naming where it looked."""
    with pytest.raises(
        StoreUnavailable, match=r"cannot connect to PostgreSQL at postgresql://me@127\.0\.0\.1:1/x"
    ):
        PostgresStore("postgresql://me:secret@127.0.0.1:1/x", timeout=2)


def test_killed_idle_connections_are_replaced(app_store: PostgresStore, pg_connect: Connect) -> None:
    """After the server kills the store's idle connections, appends go on: once, without a gap."""
    app_store.append(prepare(make_record(), make_record()))
    admin = pg_connect()
    killed = _store_backends(admin)
    assert killed
    admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (killed,))
    batch = prepare(make_record(), make_record())
    try:
        first = app_store.append(batch)
    except StoreUnavailable:
        first = []
    retried = app_store.append(batch)
    assert [r.seq for r in retried] == [3, 4]
    assert {r.status for r in first} <= {"new"}
    assert {r.status for r in retried} == ({"duplicate"} if first else {"new"})
    assert app_store.size() == 4
    assert not set(killed) & set(_store_backends(admin))


def _append_blocked_on_tiles(
    store: PostgresStore, admin: psycopg.Connection[Any], kills: int
) -> dict[str, Any]:
    """Append 300 entries while tiles are locked, killing the store's backend ``kills`` times mid-transaction."""
    outcome: dict[str, Any] = {"batch": prepare(*[make_record() for _ in range(300)])}  # crosses 256: a tile
    locker = psycopg.connect(admin.info.dsn, autocommit=False)
    locker.execute("LOCK TABLE inferlog.tiles IN ACCESS EXCLUSIVE MODE")

    def run() -> None:
        try:
            outcome["results"] = store.append(outcome["batch"])
        except StoreUnavailable as exc:
            outcome["error"] = exc

    def blocked() -> list[int]:
        return _store_backends(admin, waiting_on="INSERT INTO inferlog.tiles")

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(kills):
            pids = wait_for(blocked, "the store's backend to block")
            # Mid-transaction: its rows are COPYed but not committed, so nobody else sees them.
            outcome.setdefault("visible", []).append(
                admin.execute("SELECT count(*) FROM inferlog.entries").fetchone()
            )
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
            wait_for(lambda: not set(pids) & set(_store_backends(admin)), "the backend to end")  # noqa: B023
        if kills == 1:
            outcome["retried_on"] = wait_for(
                blocked, "a fresh backend to block"
            )  # blocked where the first one was
    finally:
        locker.rollback()
        locker.close()
        thread.join(timeout=30)
    return outcome


def test_backend_killed_mid_append_retries_on_a_fresh_connection(
    app_store: PostgresStore, pg_connect: Connect
) -> None:
    """Killing the backend between COPY and commit loses nothing: the retry commits the whole batch once."""
    outcome = _append_blocked_on_tiles(app_store, pg_connect(), kills=1)
    assert "error" not in outcome
    assert outcome["visible"] == [(0,)]
    assert outcome["retried_on"]
    assert [r.seq for r in outcome["results"]] == list(range(1, 301))
    assert app_store.size() == 300
    assert app_store.tree().root() == root_of([p.leaf_hash for p in outcome["batch"]])


def test_backend_killed_twice_raises_and_writes_nothing(
    app_store: PostgresStore, pg_connect: Connect
) -> None:
    """When the retry is killed too, append raises StoreUnavailable, nothing is half-written, a retry lands once."""
    admin = pg_connect()
    outcome = _append_blocked_on_tiles(app_store, admin, kills=2)
    assert isinstance(outcome.get("error"), StoreUnavailable)
    assert outcome["visible"] == [(0,), (0,)]
    assert "terminat" in str(outcome["error"]) or "closed" in str(outcome["error"])
    counts = admin.execute(
        "SELECT (SELECT count(*) FROM inferlog.entries), (SELECT count(*) FROM inferlog.entry_ids), "
        "(SELECT size FROM inferlog.ledger_state), (SELECT count(*) FROM inferlog.tiles)"
    ).fetchone()
    assert counts == (0, 0, 0, 0)
    results = app_store.append(outcome["batch"])
    assert [(r.seq, r.status) for r in results] == [(i, "new") for i in range(1, 301)]
    assert [r.status for r in app_store.append(outcome["batch"])] == ["duplicate"] * 300
    assert app_store.size() == 300
    assert json.loads(present(app_store.get(outcome["batch"][0].entry.id)).body or b"{}")["id"]


def test_the_app_role_may_not_purge(app_store: PostgresStore) -> None:
    """Purging is the owner's: the application role gets one clear line saying so, and nothing changes."""
    record = make_record(ts=T0)
    app_store.append(prepare(record))
    with pytest.raises(StoreError, match="needs the database owner's role"):
        app_store.purge(Purge(before=T0 + dt.timedelta(days=1)))
    assert not present(app_store.get(record.id)).purged


def test_opening_survives_its_session_being_ended_mid_migration(pg_url: str) -> None:
    """A session ended while the store opens (a restart, pg_terminate_backend) is retried once on a new one.

    The extra migration ends its own session the first time it runs (a sequence, which no rollback
    undoes, counts the runs); the open must still succeed, with the schema fully migrated.
    """
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE public.runs")
    killer = (
        latest() + 1,
        "ends its own session on its first run",
        "DO $$ BEGIN IF nextval('public.runs') = 1 THEN "
        "PERFORM pg_terminate_backend(pg_backend_pid()); END IF; END $$;",
    )
    store = PostgresStore(pg_url, migrations=[*MIGRATIONS, killer])
    try:
        assert store.schema_version() == latest() + 1
        record = make_record()
        assert [r.status for r in store.append(prepare(record))] == ["new"]
    finally:
        store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        runs = conn.execute("SELECT last_value FROM public.runs").fetchone()
    assert runs == (2,)
