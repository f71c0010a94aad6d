"""PostgreSQL schema, by version, and the runner that applies it.

Everything lives in the ``inferlog`` schema. The runner is generic: :func:`apply` takes the list of
``(version, name, sql)`` to apply, so a test (or a fork) can inject a longer list and watch an old
database upgrade in place. Applied versions are recorded in ``inferlog._migrations``; the newest one is
mirrored into the schema's comment, which every role can read from the catalog, so an application
role that may not read ``_migrations`` can still tell that its schema is recent enough.

Roles: the migrations run as the connecting role, which becomes (or already is) the owner of every
object. :func:`grant_app_role` gives a separate, non-owner application role exactly what the store
needs (see :data:`APP_GRANTS`) and nothing else: no UPDATE, DELETE or TRUNCATE on log rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

Migration = tuple[int, str, str]

SCHEMA = "inferlog"
LOCK_NAMESPACE = 7_405_106  # first key of every advisory lock inferlog takes (two-int form)
LOCK_MIGRATIONS = 1
LOCK_SEQUENCER = 2
LOCK_PARTITIONS = 3
_COMMENT_PREFIX = "inferlog schema version "

MIGRATIONS: list[Migration] = [
    (
        1,
        "entries partitioned by month, id index, append-only triggers, ledger state, api keys",
        f"""
        -- Refuses any change to a row, and TRUNCATE: for tables that only ever grow.
        CREATE FUNCTION inferlog.refuse_change() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, inferlog AS $$
        BEGIN
            RAISE EXCEPTION 'inferlog.% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;

        CREATE TABLE inferlog.entries (
            seq           bigint NOT NULL,            -- gap-free position in the ledger, from 1; set by the store
            id            uuid NOT NULL,              -- the producer's UUID: the idempotency key (see entry_ids)
            kind          text NOT NULL,
            system        text NOT NULL,
            ts            timestamptz NOT NULL,       -- when the inference started (the partition key)
            logged_at     timestamptz NOT NULL,       -- when the store accepted it
            model_name    text,
            model_version text,
            status        text,
            latency_ms    double precision,
            request_id    text,
            trace_id      text,
            session_id    text,
            subject       text,
            inference_id  text,
            actor         text,
            body          text,                       -- canonical RFC 8785 JSON, verbatim; NULL once purged
            salt          bytea,                      -- keys the leaf's commitment to body; purged with it
            leaf          bytea NOT NULL,             -- the exact bytes the Merkle tree hashes
            leaf_hash     bytea NOT NULL,
            attributes    jsonb,                      -- searchable copy of body's "attributes"; purged with it
            PRIMARY KEY (seq, ts)
        ) PARTITION BY RANGE (ts);
        CREATE TABLE inferlog.entries_default PARTITION OF inferlog.entries DEFAULT;

        CREATE INDEX entries_system_ts ON inferlog.entries (system, ts);
        CREATE INDEX entries_model_ts ON inferlog.entries (model_name, model_version, ts);
        CREATE INDEX entries_ts ON inferlog.entries (ts);
        CREATE INDEX entries_request ON inferlog.entries (request_id) WHERE request_id IS NOT NULL;
        CREATE INDEX entries_trace ON inferlog.entries (trace_id) WHERE trace_id IS NOT NULL;
        CREATE INDEX entries_session ON inferlog.entries (session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX entries_subject ON inferlog.entries (subject) WHERE subject IS NOT NULL;
        CREATE INDEX entries_inference ON inferlog.entries (inference_id) WHERE inference_id IS NOT NULL;
        CREATE INDEX entries_attributes ON inferlog.entries USING gin (attributes jsonb_path_ops)
            WHERE attributes IS NOT NULL;
        -- seq lookups use the primary key (seq, ts), whose leading column is seq.

        -- One row per entry, not partitioned: dedup by id holds across months, and get(id) finds
        -- (seq, ts), i.e. the partition, with one index probe. seq is unique here, which the
        -- partitioned primary key alone cannot promise.
        CREATE TABLE inferlog.entry_ids (
            id  uuid PRIMARY KEY,
            seq bigint NOT NULL UNIQUE,
            ts  timestamptz NOT NULL
        );

        -- Append-only. Only a purge may pass: an UPDATE that sets body and salt to NULL and changes
        -- nothing else (it also clears the attributes copy, which holds the same data).
        CREATE FUNCTION inferlog.entries_append_only() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, inferlog AS $$
        DECLARE
            was record;
            becomes record;
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.body IS NULL AND NEW.salt IS NULL THEN
                was := OLD;
                becomes := NEW;
                was.body := NULL;
                was.salt := NULL;
                was.attributes := NULL;
                becomes.attributes := NULL;
                IF becomes IS NOT DISTINCT FROM was THEN
                    NEW.attributes := NULL;
                    RETURN NEW;
                END IF;
            END IF;
            RAISE EXCEPTION 'inferlog entries are append-only: % refused (only a purge may clear body and salt)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;

        CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON inferlog.entries
            FOR EACH ROW EXECUTE FUNCTION inferlog.entries_append_only();
        CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON inferlog.entries
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();
        -- Statement triggers are not inherited: each partition gets its own (ensure_partition too).
        CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON inferlog.entries_default
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();
        CREATE TRIGGER entry_ids_append_only BEFORE UPDATE OR DELETE ON inferlog.entry_ids
            FOR EACH ROW EXECUTE FUNCTION inferlog.refuse_change();
        CREATE TRIGGER entry_ids_no_truncate BEFORE TRUNCATE ON inferlog.entry_ids
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();

        -- The Merkle tree's compact range after `size` leaves (see inferlog.ledger.merkle).
        CREATE TABLE inferlog.ledger_state (
            id       integer PRIMARY KEY CHECK (id = 1),
            size     bigint NOT NULL,
            frontier bytea NOT NULL
        );
        INSERT INTO inferlog.ledger_state (id, size, frontier) VALUES (1, 0, '\\x0000000000000000');

        -- Hashes of perfect subtrees of 256**k leaves (levels 8, 16, ...), for O(log n) proofs.
        CREATE TABLE inferlog.tiles (
            level integer NOT NULL,
            idx   bigint NOT NULL,
            hash  bytea NOT NULL,
            PRIMARY KEY (level, idx)
        );
        CREATE TRIGGER tiles_append_only BEFORE UPDATE OR DELETE ON inferlog.tiles
            FOR EACH ROW EXECUTE FUNCTION inferlog.refuse_change();
        CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON inferlog.tiles
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();

        -- Signed checkpoints (C2SP signed notes). Copies also go off-box: these alone prove nothing.
        CREATE TABLE inferlog.checkpoints (
            size       bigint PRIMARY KEY,
            root       bytea NOT NULL,
            note       text NOT NULL,
            created_at timestamptz NOT NULL
        );
        CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON inferlog.checkpoints
            FOR EACH ROW EXECUTE FUNCTION inferlog.refuse_change();
        CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON inferlog.checkpoints
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();

        -- API keys: only a SHA-256 of the secret is kept. A key is never deleted or changed, only
        -- revoked, once.
        CREATE TABLE inferlog.api_keys (
            kid         text PRIMARY KEY,
            secret_hash bytea NOT NULL,
            role        text NOT NULL,
            systems     text[] NOT NULL,            -- system names; {{*}} for all
            name        text NOT NULL,
            created_at  timestamptz NOT NULL,
            revoked_at  timestamptz
        );
        CREATE FUNCTION inferlog.api_keys_revoke_only() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, inferlog AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
               AND (NEW.kid, NEW.secret_hash, NEW.role, NEW.systems, NEW.name, NEW.created_at)
                   IS NOT DISTINCT FROM (OLD.kid, OLD.secret_hash, OLD.role, OLD.systems, OLD.name, OLD.created_at)
            THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'inferlog.api_keys are append-only: % refused (a key can only be revoked, once)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE OR DELETE ON inferlog.api_keys
            FOR EACH ROW EXECUTE FUNCTION inferlog.api_keys_revoke_only();
        CREATE TRIGGER api_keys_no_truncate BEFORE TRUNCATE ON inferlog.api_keys
            FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change();

        -- Fire even under session_replication_role = replica (ordinary triggers do not).
        ALTER TABLE inferlog.entries ENABLE ALWAYS TRIGGER entries_append_only;
        ALTER TABLE inferlog.entries ENABLE ALWAYS TRIGGER entries_no_truncate;
        ALTER TABLE inferlog.entries_default ENABLE ALWAYS TRIGGER entries_append_only;
        ALTER TABLE inferlog.entries_default ENABLE ALWAYS TRIGGER entries_no_truncate;
        ALTER TABLE inferlog.entry_ids ENABLE ALWAYS TRIGGER entry_ids_append_only;
        ALTER TABLE inferlog.entry_ids ENABLE ALWAYS TRIGGER entry_ids_no_truncate;
        ALTER TABLE inferlog.tiles ENABLE ALWAYS TRIGGER tiles_append_only;
        ALTER TABLE inferlog.tiles ENABLE ALWAYS TRIGGER tiles_no_truncate;
        ALTER TABLE inferlog.checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
        ALTER TABLE inferlog.checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_truncate;
        ALTER TABLE inferlog.api_keys ENABLE ALWAYS TRIGGER api_keys_revoke_only;
        ALTER TABLE inferlog.api_keys ENABLE ALWAYS TRIGGER api_keys_no_truncate;

        -- The partition for the month of `day` (UTC), made if missing. Runs as its owner, so the
        -- application role needs no CREATE privilege. Returns the partition's name. A month whose
        -- rows already sit in the default partition stays there: moving them out would take a DELETE.
        CREATE FUNCTION inferlog.ensure_partition(day date) RETURNS text
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, inferlog SET "TimeZone" = 'UTC'
        AS $$
        DECLARE
            first_day date := date_trunc('month', day::timestamp)::date;
            low  timestamptz := first_day::timestamp AT TIME ZONE 'UTC';
            high timestamptz := (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC';
            part text := 'entries_' || to_char(first_day, 'YYYY_MM');
        BEGIN
            IF day IS NULL THEN
                RAISE EXCEPTION 'ensure_partition needs a date' USING ERRCODE = 'null_value_not_allowed';
            END IF;
            IF to_regclass(format('inferlog.%I', part)) IS NOT NULL THEN
                RETURN part;
            END IF;
            PERFORM pg_advisory_xact_lock({LOCK_NAMESPACE}, {LOCK_PARTITIONS});
            IF to_regclass(format('inferlog.%I', part)) IS NOT NULL THEN
                RETURN part;  -- made by another session while we waited
            END IF;
            IF EXISTS (SELECT 1 FROM inferlog.entries_default WHERE ts >= low AND ts < high) THEN
                RETURN 'entries_default';
            END IF;
            EXECUTE format(
                'CREATE TABLE inferlog.%I PARTITION OF inferlog.entries FOR VALUES FROM (%L) TO (%L)',
                part, low, high);
            EXECUTE format(
                'CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON inferlog.%I '
                'FOR EACH STATEMENT EXECUTE FUNCTION inferlog.refuse_change()', part);
            EXECUTE format('ALTER TABLE inferlog.%I ENABLE ALWAYS TRIGGER entries_no_truncate', part);
            EXECUTE format('ALTER TABLE inferlog.%I ENABLE ALWAYS TRIGGER entries_append_only', part);
            RETURN part;
        END $$;
        REVOKE ALL ON FUNCTION inferlog.ensure_partition(date) FROM PUBLIC;

        -- This month and the next three, made ahead; later months are made on demand.
        SELECT inferlog.ensure_partition((date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month')::date)
        FROM generate_series(0, 3) AS n;
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        "wrapped data keys of sealed entries",
        """
        -- A sealed entry's data key, wrapped by its epoch's and its subject's keys (see
        -- inferlog.privacy.seal). Kept outside the entry's body: rotation re-wraps it in place and a
        -- purge deletes it, without touching what the Merkle tree commits to.
        CREATE TABLE inferlog.entry_keys (
            id          uuid PRIMARY KEY,
            epoch_ref   text NOT NULL,
            subject_ref text,
            blob        bytea NOT NULL
        );
        -- No index on the refs: only key rotation looks keys up by ref, in one pass in id order.
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        "a purge also clears the identifiers copied from the body",
        """
        -- A purge clears body and salt, and with them every column copied from the body that can name
        -- or trace a person (subject, request, trace and session ids, actor) besides the attributes
        -- copy: an erased subject must not stay searchable. Nothing else may change.
        CREATE OR REPLACE FUNCTION inferlog.entries_append_only() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, inferlog AS $$
        DECLARE
            was record;
            becomes record;
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.body IS NULL AND NEW.salt IS NULL THEN
                was := OLD;
                becomes := NEW;
                was.body := NULL;
                was.salt := NULL;
                was.attributes := NULL;
                becomes.attributes := NULL;
                -- An identifier may be left as it was (the trigger clears it) or cleared, never changed.
                IF NEW.subject IS NULL THEN was.subject := NULL; END IF;
                IF NEW.request_id IS NULL THEN was.request_id := NULL; END IF;
                IF NEW.trace_id IS NULL THEN was.trace_id := NULL; END IF;
                IF NEW.session_id IS NULL THEN was.session_id := NULL; END IF;
                IF NEW.actor IS NULL THEN was.actor := NULL; END IF;
                IF becomes IS NOT DISTINCT FROM was THEN
                    NEW.attributes := NULL;
                    NEW.subject := NULL;
                    NEW.request_id := NULL;
                    NEW.trace_id := NULL;
                    NEW.session_id := NULL;
                    NEW.actor := NULL;
                    RETURN NEW;
                END IF;
            END IF;
            RAISE EXCEPTION 'inferlog entries are append-only: % refused (only a purge may clear body and salt)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        -- Entries purged before this version lose those copies now.
        UPDATE inferlog.entries SET body = NULL, salt = NULL
        WHERE body IS NULL AND (subject IS NOT NULL OR request_id IS NOT NULL OR trace_id IS NOT NULL
                                OR session_id IS NOT NULL OR actor IS NOT NULL);
        """,
    )
)

# What the application role may do, and nothing more (re-applied on every migrate with an app role).
APP_GRANTS = (
    "GRANT USAGE ON SCHEMA inferlog TO {role}",
    "GRANT SELECT, INSERT ON inferlog.entries, inferlog.entry_ids, inferlog.tiles, inferlog.checkpoints TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON inferlog.ledger_state TO {role}",
    "GRANT SELECT, INSERT, UPDATE (revoked_at) ON inferlog.api_keys TO {role}",
    "GRANT EXECUTE ON FUNCTION inferlog.ensure_partition(date) TO {role}",
    # Purging and re-wrapping (retention, erasure, key rotation) are the owner's: run them with its URL.
    "GRANT SELECT, INSERT ON inferlog.entry_keys TO {role}",
    # The monitor's tables are derived data (rebuilt from the log), which the application maintains.
    "GRANT SELECT, INSERT, UPDATE, DELETE ON inferlog.monitor_rollups, inferlog.monitor_values TO {role}",
)
_REVOKES = (
    "REVOKE ALL ON ALL TABLES IN SCHEMA inferlog FROM {role}",
    "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA inferlog FROM {role}",
    "REVOKE ALL ON SCHEMA inferlog FROM {role}",
)


def latest(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The schema version a list of migrations leads to."""
    return max((version for version, _, _ in migrations), default=0)


def installed_version(conn: psycopg.Connection[Any]) -> tuple[int, bool]:
    """``(version, can_migrate)``: the schema's version as its comment says (0 if there is no schema),
    and whether the connected role owns the schema (or may create it)."""
    row = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace'), pg_has_role(nspowner, 'USAGE') "
        "FROM pg_namespace WHERE nspname = %s",
        (SCHEMA,),
    ).fetchone()
    if row is None:
        return 0, True
    comment, owner = row
    text = str(comment or "")
    version = int(text[len(_COMMENT_PREFIX) :]) if text.startswith(_COMMENT_PREFIX) else 0
    return version, bool(owner)


def apply(
    conn: psycopg.Connection[Any],
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    app_role: str | None = None,
) -> int:
    """Apply the migrations this database lacks, in version order, in one transaction; return the version.

    Concurrent callers queue on an advisory lock, so two processes opening a fresh database at once
    cannot both create it. With ``app_role``, (re)grant that role exactly :data:`APP_GRANTS`.
    """
    versions = [version for version, _, _ in migrations]
    if len(set(versions)) != len(versions) or any(v < 1 for v in versions):
        raise ValueError(f"migration versions must be unique and positive, got {versions}")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_MIGRATIONS))
        conn.execute("CREATE SCHEMA IF NOT EXISTS inferlog")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS inferlog._migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM inferlog._migrations")}
        for version, name, script in sorted(migrations):
            if version in done:
                continue
            conn.execute(script.encode("utf-8"))  # no parameters: several statements may run at once
            conn.execute("INSERT INTO inferlog._migrations (version, name) VALUES (%s, %s)", (version, name))
            done.add(version)
        current = max(done, default=0)
        conn.execute(
            sql.SQL("COMMENT ON SCHEMA inferlog IS {}").format(sql.Literal(f"{_COMMENT_PREFIX}{current}"))
        )
        if app_role is not None:
            grant_app_role(conn, app_role)
    return current


def grant_app_role(conn: psycopg.Connection[Any], role: str) -> None:
    """Give ``role`` exactly the privileges the store needs to append and read, revoking any others."""
    ident = sql.Identifier(role)
    for statement in (*_REVOKES, *APP_GRANTS):
        conn.execute(sql.SQL(statement).format(role=ident))


MIGRATIONS.append(
    (
        4,
        "monitoring rollups",
        """
        -- The monitor's aggregates (inferlog.monitor): mergeable sketches per scope and time bucket.
        -- Derived data, not the log: rebuilt from the entries on demand, so rows may change and go.
        CREATE TABLE inferlog.monitor_rollups (
            level    integer NOT NULL,   -- bucket width in seconds: 60, 3600 or 86400
            system   text NOT NULL,
            model    text NOT NULL,
            version  text NOT NULL,
            bucket   bigint NOT NULL,    -- bucket start, seconds since the epoch (UTC)
            payloads bigint NOT NULL,    -- entries whose payload fed this bucket
            data     bytea NOT NULL,
            PRIMARY KEY (level, system, model, version, bucket)
        );
        -- A window of a whole system (no model given) reads by bucket, not the system's every row.
        CREATE INDEX monitor_rollups_by_bucket ON inferlog.monitor_rollups (level, system, bucket);
        -- The fold cursor (name 'state') and what the monitor keeps beside it (reference profiles).
        CREATE TABLE inferlog.monitor_values (
            name  text PRIMARY KEY,
            value bytea NOT NULL
        );
        """,
    )
)
