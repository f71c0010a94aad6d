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

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from fastapi import Request

from inferlog.config import DEFAULT_KSERVE_TIMEOUT
from inferlog.errors import RecordInvalid, StoreError, StoreUnavailable, UsageError
from inferlog.ingest import kserve, seldon
from inferlog.ingest.service import Ingestor
from inferlog.lineage import ModelRegistry
from inferlog.periodic import Periodic
from inferlog.pipeline import body_of
from inferlog.privacy.frames import FrameCipher
from inferlog.record.ids import uuid8
from inferlog.record.model import InferenceRecord, StoredEntry
from inferlog.record.validate import check_entry
from inferlog.server.auth import Principal
from inferlog.store.base import AppendResult
from inferlog.store.forksafe import GATE, gated
from inferlog.store.protocols import EntryReader

log = logging.getLogger("inferlog.server.pending")


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
    """Halves waiting for their partner, kept durably in SQLite; joins and appends through the Ingestor.

    A half is checked when it arrives (it must make a storable record on its own), so nothing kept
    here can make a later sweep fail; should one fail anyway, it is moved to the ``refused`` table and
    logged, and the sweep goes on. A half whose partner was already recorded alone (it came after
    the timeout) is recorded as a *continuation*: an entry of its own, linked to the first one (see
    docs/capture.md).
    """

    @gated
    def __init__(
        self,
        path: str | Path,
        ingestor: Ingestor,
        store: EntryReader,  # the log the Ingestor appends to, read for records already there
        timeout: float = DEFAULT_KSERVE_TIMEOUT,
        cipher: FrameCipher | None = None,
        lineage: ModelRegistry | None = None,
    ) -> None:
        self.path = str(path)
        self.lineage = lineage  # registered models: a record's digest/uri come from it
        self.ingestor = ingestor
        self.store = store
        self.timeout = timeout
        # Under a policy with a key store a half is kept sealed, as the SDK's spool keeps frames: the
        # payload it holds must not sit on disk in clear while it waits for its partner.
        self.cipher = cipher
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA secure_delete=ON")  # a joined half's pages are overwritten, not just freed
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS pending (rid TEXT, half TEXT, system TEXT, event BLOB,"
            " received REAL, PRIMARY KEY (rid, half))"
        )
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(pending)")]
        if "source" not in columns:  # a file from before Seldon: all its halves are KServe's
            self.db.execute("ALTER TABLE pending ADD COLUMN source TEXT NOT NULL DEFAULT 'kserve'")
        # Halves recorded alone after the timeout: a partner arriving later is recorded, linked to them.
        self.db.execute("CREATE TABLE IF NOT EXISTS alone (rid TEXT PRIMARY KEY, half TEXT, recorded REAL)")
        # Halves that could not be recorded after all (kept, never retried: they must not block others).
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS refused (rid TEXT, half TEXT, system TEXT, event BLOB, received REAL,"
            " source TEXT, reason TEXT, refused REAL)"
        )
        every = min(5.0, max(0.5, self.timeout / 4))
        self._sweeper = Periodic("inferlog-pending-sweep", every, self._sweep_quietly, first_now=False)

    def start(self) -> None:
        """Start the background thread that records halves left alone too long."""
        self._sweeper.start()

    def _sweep_quietly(self) -> None:
        try:
            self.sweep()
        except Exception:
            log.warning("sweeping pending halves failed; retried on the next tick", exc_info=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the sweeper (waiting up to ``timeout`` for a sweep in progress), then close the file."""
        self._sweeper.stop(timeout)
        with GATE.inside(), self.lock:
            self.db.close()

    @gated
    def add(self, source: str, rid: str, half: str, event: Any, system: str) -> str:
        """Keep one half (durably), then append the joined record if its partner is there.

        ``source`` names the :data:`JOINERS` entry that encodes and joins it; ``rid`` is the record id
        both halves of one inference share; ``half`` is ``request`` or ``response``. Raises
        :class:`RecordInvalid` (422), keeping nothing, for a half that could not be recorded.
        Answers ``pending``, ``joined``, ``continued`` (its partner was recorded alone before it
        came: recorded as a linked entry) or ``duplicate``.
        """
        joiner = JOINERS[source]
        alone = _alone(joiner, half, event, system)  # refused here if it could never be stored
        with self.lock:
            if self.store.get(rid) is not None:
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return self._late(rid, half, alone)
            self.db.execute(
                "INSERT OR REPLACE INTO pending (rid, half, system, event, received, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (rid, half, system, self._kept(joiner.encode(event)), time.time(), source),
            )
            rows = dict(self.db.execute("SELECT half, event FROM pending WHERE rid = ?", (rid,)).fetchall())
            if "request" in rows and "response" in rows:
                try:
                    record = _checked(
                        joiner.join(
                            joiner.decode(self._opened(rows["request"])),
                            joiner.decode(self._opened(rows["response"])),
                            system,
                        )
                    )
                except RecordInvalid as exc:  # each half is fine alone: the sweeper records them so
                    log.error(
                        "halves of %s do not join (%s); each is recorded alone after the timeout", rid, exc
                    )
                    return "pending"
                self._append(record)
                self.db.execute("DELETE FROM pending WHERE rid = ?", (rid,))
                return "joined"
        return "pending"

    def _append(self, record: InferenceRecord) -> AppendResult:
        """Append one record, its model's digest and URI filled from the registry (KServe and Seldon
        events name a model and version, never the artifact)."""
        if self.lineage is not None:
            model = self.lineage.attach(record.model)
            if model is not record.model:
                record = msgspec.structs.replace(record, model=model)
        (result,) = self.ingestor.append([record])
        return result

    def _kept(self, data: bytes) -> bytes:
        """A half's bytes as the file keeps them: sealed when there is a key store."""
        return self.cipher.seal(data) if self.cipher is not None else data

    def _opened(self, data: bytes) -> bytes:
        """A kept half's bytes in clear (a half kept unsealed, by an earlier run, passes as it is)."""
        return self.cipher.open(data) if self.cipher is not None else data

    def _late(self, rid: str, half: str, alone: InferenceRecord) -> str:
        """A half for an inference already in the log: its partner's late arrival, or a redelivery."""
        found = self.db.execute("SELECT half FROM alone WHERE rid = ?", (rid,)).fetchone()
        recorded_half = found[0] if found is not None else _half_of(self.store.get(rid))
        if recorded_half is None or recorded_half == half:
            return "duplicate"  # joined already, or this very half again
        result = self._append(continuation(alone, rid, half))
        return "continued" if result.status == "new" else "duplicate"

    @gated
    def sweep(self, now: float | None = None) -> int:
        """Record every half older than the timeout on its own; returns how many.

        A half that cannot be recorded is moved to ``refused`` (and logged): it never blocks the halves
        behind it or a later event. A store that is down raises, and the half stays for the next sweep.
        """
        cutoff = (time.time() if now is None else now) - self.timeout
        done = 0
        with self.lock:
            rows = self.db.execute(
                "SELECT rid, half, system, event, source, received FROM pending WHERE received <= ?",
                (cutoff,),
            ).fetchall()
            for rid, half, system, data, source, received in rows:
                try:
                    done += self._record_alone(rid, half, system, data, source)
                except StoreError:
                    raise
                except Exception as exc:  # noqa: BLE001 - about this half only: kept aside, never retried
                    log.error(
                        "pending %s half of %s cannot be recorded; kept in the refused table: %s",
                        half,
                        rid,
                        exc,
                    )
                    self.db.execute(
                        "INSERT INTO refused (rid, half, system, event, received, source, reason, refused)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            rid,
                            half,
                            system,
                            data,
                            received,
                            source,
                            f"{type(exc).__name__}: {exc}",
                            time.time(),
                        ),
                    )
                self.db.execute("DELETE FROM pending WHERE rid = ? AND half = ?", (rid, half))
        return done

    def _record_alone(self, rid: str, half: str, system: str, data: bytes, source: str) -> int:
        joiner = JOINERS[source]
        if self.store.get(rid) is not None:
            return 0
        self._append(_alone(joiner, half, joiner.decode(self._opened(data)), system))
        self.db.execute(
            "INSERT OR REPLACE INTO alone (rid, half, recorded) VALUES (?, ?, ?)", (rid, half, time.time())
        )
        return 1


def sweep_quietly(keeper: PendingHalves) -> None:
    """Sweep after an event was kept: a store that is down fails the sweep, never the event's answer."""
    try:
        keeper.sweep()
    except StoreError as exc:
        log.warning("sweeping pending halves failed (the sweeper retries): %s", exc)


def continuation_id(rid: str, half: str) -> str:
    """The id of the entry that records a late ``half`` of inference ``rid``: a UUIDv8, the same on redelivery."""
    return uuid8("continuation", rid, half)


def continuation(alone: InferenceRecord, rid: str, half: str) -> InferenceRecord:
    """A late half as its own entry, linked to the record its partner made (``attributes.continues``)."""
    return msgspec.structs.replace(
        alone, id=continuation_id(rid, half), attributes={**alone.attributes, "continues": rid}
    )


def _alone(joiner: Joiner, half: str, event: Any, system: str) -> InferenceRecord:
    """The record one half makes on its own, checked to be storable (else RecordInvalid, naming why)."""
    try:
        record = joiner.join(event, None, system) if half == "request" else joiner.join(None, event, system)
    except RecordInvalid:
        raise
    except (ValueError, OverflowError, OSError, RecursionError) as exc:
        raise RecordInvalid(f"this {half} cannot be recorded: {exc}") from None
    return _checked(record)


def _checked(record: InferenceRecord) -> InferenceRecord:
    """The record, if the store could keep it: values within the nesting limit, canonical bytes that exist."""
    check_entry(record)
    body_of(record)  # raises RecordInvalid for what JSON cannot carry (a lone surrogate, a bad key)
    return record


def _half_of(stored: StoredEntry | None) -> str | None:
    """Which half a record already in the log was made of alone (``None``: both, or unknown)."""
    attributes = getattr(stored.entry, "attributes", None) if stored is not None else None
    if not isinstance(attributes, dict):
        return None
    half = attributes.get("kserve_half", attributes.get("seldon_half"))
    return half if half in ("request", "response") else None


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
    protection = app_state.inferlog.protection
    cipher = FrameCipher(protection.keyring) if protection is not None and protection.keyring else None
    state = app_state.inferlog
    keeper = PendingHalves(path, state.ingestor, state.store, timeout, cipher, state.lineage)
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
