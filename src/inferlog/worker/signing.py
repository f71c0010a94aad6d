"""Exactly one signer among the workers: a PostgreSQL session advisory lock elects it.

Every worker started with a signing key is a candidate. The one that holds the lock (on a connection
of its own, kept open) signs checkpoints on the cadence; the others do not. If its session ends (the
process dies, an administrator terminates the backend, the database restarts) the lock is released
and another candidate takes it at its next tick. Before each checkpoint the holder checks that its
session is still alive, so a worker that lost the lock stops signing.

Even in the instant of a hand-over a second root for one size cannot arise: seqs are assigned under
the sequencer lock and never change, so any signer signing size N signs the same root, and each
signer's state refuses a head inconsistent with what it signed before (see integrity/signer.py).
"""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from inferlog.integrity.checkpointer import CheckpointCadence
from inferlog.store.base import StoredCheckpoint
from inferlog.store.migrations.postgres import LOCK_NAMESPACE

log = logging.getLogger("inferlog.worker")

LOCK_SIGNER = 4  # second key of the advisory lock that elects the signing worker
_STORE_OPTIONS = ("app_role",)


class SignerElection:
    """Holds (or tries to take) the signer lock; ``tick()`` signs on the cadence while held."""

    def __init__(self, db_url: str, cadence: CheckpointCadence, *, timeout: float = 5.0) -> None:
        self.conninfo = _conninfo(db_url)
        self.cadence = cadence
        self.timeout = timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.leader = False

    def _still_held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            log.warning("the signer's database session ended: this worker no longer signs checkpoints")
            self._drop()
            return False

    def _try_take(self) -> bool:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=int(self.timeout))
        except psycopg.Error:
            return False
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_SIGNER)
            ).fetchone()
        except psycopg.Error:
            conn.close()
            return False
        if row is None or not row[0]:
            conn.close()
            return False
        self._conn = conn
        log.info("this worker is now the checkpoint signer")
        return True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def tick(self, *, final: bool = False) -> StoredCheckpoint | None:
        """Take or keep the lock, and sign if the cadence says so (``final``: if anything is new)."""
        self.leader = self._still_held() or self._try_take()
        return self.cadence.tick(final=final) if self.leader else None

    def close(self) -> None:
        """Release the lock (closing the session does), so another candidate takes over at once."""
        self._drop()
        self.leader = False


def _conninfo(url: str) -> str:
    """The store URL as psycopg takes it: inferlog's own options (``app_role``) removed."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _STORE_OPTIONS]
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
