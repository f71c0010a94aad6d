"""Halves of an inference that arrive apart (KServe's CloudEvents, Seldon's Kafka topics), kept until joined.

The senders do not retry (KServe) or are read once (a Kafka bridge), so each half is written to a
small SQLite file owned by the server before the sink answers. When both halves of an inference (same
record id) are there they become one record; a half left alone longer than the timeout is recorded on
its own. One file and one sweeper thread serve every source; each row names its source, whose
:class:`Joiner` encodes, decodes and joins its halves.

Settings live on ``app.state``: ``kserve_pending_path`` (default beside a SQLite store; a store with
no file needs one, ``inferlog serve --kserve-pending``, and the sinks answer 503 until it has one —
a temporary file would lose halves on restart, silently) and ``kserve_timeout`` (seconds, default 60).
The app's lifespan closes the keeper and its sweeper thread; at start-up it reopens a pending file
left by an earlier run, so old lone halves are recorded even if no new event comes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from inferlog.config import DEFAULT_KSERVE_TIMEOUT
from inferlog.errors import StoreUnavailable, UsageError
from inferlog.ingest import kserve, seldon
from inferlog.ingest.service import Ingestor
from inferlog.record.model import InferenceRecord
from inferlog.server.auth import Principal
from inferlog.store.forksafe import GATE, gated


@dataclass(frozen=True)
class Joiner:
    """How one source's halves are kept (encode/decode) and made into a record (join)."""

    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    join: Callable[[Any, Any, str], InferenceRecord]


JOINERS = {
    "kserve": Joiner(kserve.to_json, kserve.from_json, lambda q, r, system: kserve.join(q, r, system=system)),
    "seldon": Joiner(seldon.to_json, seldon.from_json, lambda q, r, system: seldon.join(q, r, system=system)),
}


class PendingHalves:
    """Halves waiting for their partner, kept durably in SQLite; joins and appends through the Ingestor."""

    @gated
    def __init__(self, path: str | Path, ingestor: Ingestor, timeout: float = DEFAULT_KSERVE_TIMEOUT) -> None:
        self.path = str(path)
        self.ingestor = ingestor
        self.timeout = timeout
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pending (rid TEXT, half TEXT, system TEXT, event BLOB,"
            " received REAL, PRIMARY KEY (rid, half))"
        )
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(pending)")]
        if "source" not in columns:  # a file from before Seldon: all its halves are KServe's
            self.db.execute("ALTER TABLE pending ADD COLUMN source TEXT NOT NULL DEFAULT 'kserve'")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread that records halves left alone too long."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inferlog-pending-sweep", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(min(5.0, max(0.5, self.timeout / 4))):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - a sweep that fails is retried on the next tick
                time.sleep(1.0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the sweeper (waiting up to ``timeout`` for a sweep in progress), then close the file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with GATE.inside(), self.lock:
            self.db.close()

    @gated
    def add(self, source: str, rid: str, half: str, event: Any, system: str) -> str:
        """Keep one half (durably), then append the joined record if its partner is there.

        ``source`` names the :data:`JOINERS` entry that encodes and joins it; ``rid`` is the record id
        both halves of one inference share; ``half`` is ``request`` or ``response``.
        """
        joiner = JOINERS[source]
        with self.lock:
            if self.ingestor.store.get(rid) is not None:  # a redelivery of something already recorded
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return "duplicate"
            self.db.execute(
                "INSERT OR REPLACE INTO pending (rid, half, system, event, received, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rid, half, system, joiner.encode(event), time.time(), source),
            )
            rows = dict(self.db.execute("SELECT half, event FROM pending WHERE rid = ?", (rid,)).fetchall())
            if "request" in rows and "response" in rows:
                record = joiner.join(joiner.decode(rows["request"]), joiner.decode(rows["response"]), system)
                self.ingestor.append([record])
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return "joined"
        return "pending"

    @gated
    def sweep(self, now: float | None = None) -> int:
        """Record every half older than the timeout on its own; returns how many."""
        cutoff = (time.time() if now is None else now) - self.timeout
        done = 0
        with self.lock:
            rows = self.db.execute(
                "SELECT rid, half, system, event, source FROM pending WHERE received <= ?", (cutoff,)
            ).fetchall()
            for rid, half, system, data, source in rows:
                joiner = JOINERS[source]
                event = joiner.decode(data)
                if self.ingestor.store.get(rid) is None:
                    request, response = (event, None) if half == "request" else (None, event)
                    self.ingestor.append([joiner.join(request, response, system)])
                    done += 1
                self.db.execute("DELETE FROM pending WHERE rid = ? AND half = ?", (rid, half))
        return done


_create_lock = threading.Lock()


def pending_path(app_state: Any) -> Path:
    """Where the pending halves live: the configured file, else beside a SQLite store's file."""
    configured = getattr(app_state, "kserve_pending_path", None)
    if configured is not None:
        return Path(configured)
    store_path = getattr(app_state.inferlog.store, "path", None)
    if store_path is None:
        raise StoreUnavailable(
            "the KServe sink has no file to keep pending halves in: start the server with "
            "--kserve-pending PATH (or INFERLOG_KSERVE_PENDING)"
        )
    return Path(f"{store_path}-kserve-pending.db")


def _open(app_state: Any, path: Path) -> PendingHalves:
    path.parent.mkdir(parents=True, exist_ok=True)
    timeout = float(getattr(app_state, "kserve_timeout", DEFAULT_KSERVE_TIMEOUT))
    keeper = PendingHalves(path, app_state.inferlog.ingestor, timeout)
    keeper.start()
    app_state.kserve_pending = keeper
    return keeper


def pending_of(request: Request) -> PendingHalves:
    """The app's pending-halves keeper, made (and its sweeper started) on first use."""
    app_state = request.app.state
    with _create_lock:
        found: PendingHalves | None = getattr(app_state, "kserve_pending", None)
        return found if found is not None else _open(app_state, pending_path(app_state))


def resume_pending(app_state: Any) -> None:
    """At start-up: reopen the pending file if it was configured or an earlier run left one."""
    with _create_lock:
        if getattr(app_state, "kserve_pending", None) is not None:
            return
        try:
            path = pending_path(app_state)
        except StoreUnavailable:
            return  # no file: the sink refuses events until one is configured
        if getattr(app_state, "kserve_pending_path", None) is not None or path.exists():
            _open(app_state, path)


def close_pending(app_state: Any) -> None:
    """At shutdown: stop the sweeper and close the pending file."""
    with _create_lock:
        keeper: PendingHalves | None = getattr(app_state, "kserve_pending", None)
        if keeper is not None:
            keeper.close()
            app_state.kserve_pending = None


def sink_system(who: Principal, system: str | None) -> str:
    """The system a sink's records go to: ``?system=``, else the key's only system; checked against the key."""
    if system is None:
        if len(who.systems) != 1 or who.systems[0] == "*":
            raise UsageError("name the system: add ?system=... to the sink url")
        system = who.systems[0]
    who.require_system(system)
    return system
