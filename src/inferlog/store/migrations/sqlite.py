"""SQLite schema, by version."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "entries, indexes, append-only triggers, ledger state",
        """
        CREATE TABLE entries (
            seq           INTEGER PRIMARY KEY,   -- gap-free position in the ledger, from 1
            id            TEXT NOT NULL UNIQUE,  -- the producer's UUID: the idempotency key
            kind          TEXT NOT NULL,
            system        TEXT NOT NULL,
            ts            INTEGER NOT NULL,      -- microseconds since the Unix epoch, UTC
            logged_at     INTEGER NOT NULL,      -- when the store accepted it, same unit
            model_name    TEXT,
            model_version TEXT,
            status        TEXT,
            latency_ms    REAL,
            request_id    TEXT,
            trace_id      TEXT,
            session_id    TEXT,
            subject       TEXT,
            inference_id  TEXT,
            actor         TEXT,
            body          TEXT,                  -- canonical RFC 8785 JSON, verbatim; NULL once purged
            salt          BLOB,                  -- keys the leaf's commitment to body; purged with it
            leaf          BLOB NOT NULL,         -- the exact bytes the Merkle tree hashes
            leaf_hash     BLOB NOT NULL
        );
        CREATE INDEX entries_system_ts ON entries (system, ts);
        CREATE INDEX entries_model_ts ON entries (model_name, model_version, ts);
        CREATE INDEX entries_ts ON entries (ts);
        CREATE INDEX entries_request ON entries (request_id) WHERE request_id IS NOT NULL;
        CREATE INDEX entries_trace ON entries (trace_id) WHERE trace_id IS NOT NULL;
        CREATE INDEX entries_session ON entries (session_id) WHERE session_id IS NOT NULL;
        CREATE INDEX entries_subject ON entries (subject) WHERE subject IS NOT NULL;
        CREATE INDEX entries_inference ON entries (inference_id) WHERE inference_id IS NOT NULL;

        -- Append-only, as defence in depth (anyone with the file can drop these; the Merkle tree and
        -- signed checkpoints are what make tampering detectable). Only a purge may clear body + salt.
        CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'inferlog entries are append-only'); END;
        CREATE TRIGGER entries_no_rewrite
        BEFORE UPDATE OF seq, id, kind, system, ts, logged_at, model_name, model_version, status,
                         latency_ms, request_id, trace_id, session_id, subject, inference_id, actor,
                         leaf, leaf_hash ON entries
        BEGIN SELECT RAISE(ABORT, 'inferlog entries are append-only'); END;
        CREATE TRIGGER entries_purge_only BEFORE UPDATE OF body, salt ON entries
        WHEN NEW.body IS NOT NULL OR NEW.salt IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'inferlog entries are append-only (only a purge may clear a body)'); END;

        -- The Merkle tree's compact range after `size` leaves (see inferlog.ledger.merkle).
        CREATE TABLE ledger_state (
            id       INTEGER PRIMARY KEY CHECK (id = 1),
            size     INTEGER NOT NULL,
            frontier BLOB NOT NULL
        );
        -- Hashes of perfect subtrees of 256**k leaves (levels 8, 16, ...), for O(log n) proofs.
        CREATE TABLE tiles (
            level INTEGER NOT NULL,
            idx   INTEGER NOT NULL,
            hash  BLOB NOT NULL,
            PRIMARY KEY (level, idx)
        ) WITHOUT ROWID;
        -- Signed checkpoints (C2SP signed notes). Copies also go off-box: these alone prove nothing.
        CREATE TABLE checkpoints (
            size       INTEGER PRIMARY KEY,
            root       BLOB NOT NULL,
            note       TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        2,
        "api keys",
        """
        -- API keys: only a SHA-256 of the secret is kept; the key itself is shown once, at creation.
        CREATE TABLE api_keys (
            kid         TEXT PRIMARY KEY,
            secret_hash BLOB NOT NULL,
            role        TEXT NOT NULL,
            systems     TEXT NOT NULL,      -- JSON array of system names; ["*"] for all
            name        TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            revoked_at  INTEGER
        );
        """,
    )
)

MIGRATIONS.append(
    (
        3,
        "wrapped data keys of sealed entries",
        """
        -- A sealed entry's data key, wrapped by its epoch's and its subject's keys (see
        -- inferlog.privacy.seal). Kept outside the entry's body: rotation re-wraps it in place and a
        -- purge deletes it, without touching what the Merkle tree commits to.
        CREATE TABLE entry_keys (
            id          TEXT PRIMARY KEY,
            epoch_ref   TEXT NOT NULL,
            subject_ref TEXT,
            blob        BLOB NOT NULL
        ) WITHOUT ROWID;
        -- No index on the refs: only key rotation looks keys up by ref, in one pass in id order.
        """,
    )
)

MIGRATIONS.append(
    (
        4,
        "a purge also clears the identifiers copied from the body",
        """
        -- A purge clears body and salt, and with them every column copied from the body that can name
        -- or trace a person (subject, request, trace and session ids, actor): an erased subject must not
        -- stay searchable. Those columns may only be cleared, and only on a purged entry.
        DROP TRIGGER entries_no_rewrite;
        CREATE TRIGGER entries_no_rewrite
        BEFORE UPDATE OF seq, id, kind, system, ts, logged_at, model_name, model_version, status,
                         latency_ms, inference_id, leaf, leaf_hash ON entries
        BEGIN SELECT RAISE(ABORT, 'inferlog entries are append-only'); END;
        CREATE TRIGGER entries_purge_identifiers
        BEFORE UPDATE OF request_id, trace_id, session_id, subject, actor ON entries
        WHEN NEW.body IS NOT NULL OR NEW.salt IS NOT NULL OR NEW.request_id IS NOT NULL
             OR NEW.trace_id IS NOT NULL OR NEW.session_id IS NOT NULL OR NEW.subject IS NOT NULL
             OR NEW.actor IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'inferlog entries are append-only (a purge may only clear identifiers)'); END;
        -- Entries purged before this version lose those copies now.
        UPDATE entries SET request_id = NULL, trace_id = NULL, session_id = NULL, subject = NULL, actor = NULL
        WHERE body IS NULL;
        """,
    )
)

MIGRATIONS.append(
    (
        5,
        "monitoring rollups",
        """
        -- The monitor's aggregates (inferlog.monitor): mergeable sketches per scope and time bucket.
        -- Derived data, not the log: rebuilt from the entries on demand, so rows may change and go.
        CREATE TABLE monitor_rollups (
            level    INTEGER NOT NULL,   -- bucket width in seconds: 60, 3600 or 86400
            system   TEXT NOT NULL,
            model    TEXT NOT NULL,
            version  TEXT NOT NULL,
            bucket   INTEGER NOT NULL,   -- bucket start, seconds since the epoch (UTC)
            payloads INTEGER NOT NULL,   -- entries whose payload fed this bucket
            data     BLOB NOT NULL,
            PRIMARY KEY (level, system, model, version, bucket)
        ) WITHOUT ROWID;
        -- A window of a whole system (no model given) reads by bucket, not the system's every row.
        CREATE INDEX monitor_rollups_by_bucket ON monitor_rollups (level, system, bucket);
        -- The fold cursor (name 'state') and what the monitor keeps beside it (reference profiles).
        CREATE TABLE monitor_values (
            name  TEXT PRIMARY KEY,
            value BLOB NOT NULL
        ) WITHOUT ROWID;
        """,
    )
)
